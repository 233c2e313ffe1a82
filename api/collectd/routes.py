"""POST /collectd: collectd's write_http plugin, `Format "JSON"` or `Format "Command"` (PUTVAL
lines) by Content-Type; the value lists become numeric series (formats/write_http.py for the
names) written by the series batch path. docs/senders.md has the collectd configuration.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, post
from litestar.openapi.spec import OpenAPIType, Schema

from api.auth.senders import sender_guard
from api.collectd.formats.write_http import parse_command, parse_json
from api.core import openapi as oa
from api.series.formats.points import PointError
from api.series.routes import store

JSON_TYPES = ("application/json",)
COMMAND_TYPES = ("text/plain",)
WRONG_TYPE = (
    'Content-Type must be application/json (write_http Format "JSON") or text/plain '
    '(Format "Command", PUTVAL lines)'
)

# --- OpenAPI (api/core/openapi.py) ---

VALUE_LIST = oa.obj(
    {
        "values": oa.array(
            oa.nullable(OpenAPIType.NUMBER),
            min_items=1,
            max_items=64,
            description="`null`: unknown (skipped)",
        ),
        "dstypes": oa.array(
            oa.string(enum=["gauge", "derive", "counter", "absolute"]),
            description="stored as sent: no rates are computed",
        ),
        "dsnames": oa.array(oa.string(min_length=1)),
        "time": oa.number(description="seconds since 1970"),
        "interval": oa.number(description="ignored"),
        "host": oa.string(description="the label `host`"),
        "plugin": oa.string(min_length=1),
        "plugin_instance": oa.string(),
        "type": oa.string(min_length=1),
        "type_instance": oa.string(),
    },
    required=["values", "dsnames", "time", "host", "plugin", "type"],
    extra=True,
    title="CollectdValueList",
    description="One value list; each value is stored as the series "
    "`plugin_plugininstance_type_typeinstance_dsname` (empty parts and the data source name "
    "`value` left out), labelled `host`.",
)
PUTVAL = oa.string(
    title="PutvalLines",
    description="`PUTVAL host/plugin[-instance]/type[-instance] [interval=N] time:v1[:v2...]` "
    "lines; time `N` is now, a value `U` is unknown (skipped). Data source names come from "
    "collectd's types.db",
)
SUMMARY = oa.batch_summary(
    "CollectdSummary",
    accepted="values stored",
    rejected="value lists (JSON) or lines rejected",
    index="the value list's position in the array, or the line's index (from 0; the message "
    "gives the line number)",
    errors="the first 20 rejections",
)
MESSAGE = oa.obj({"message": oa.string()}, title="CollectdMessage")
JSON_EXAMPLE = [
    {
        "values": [1901474177],
        "dstypes": ["derive"],
        "dsnames": ["value"],
        "time": 1763805600.123,
        "interval": 10.0,
        "host": "web-1",
        "plugin": "cpu",
        "plugin_instance": "0",
        "type": "cpu",
        "type_instance": "idle",
    }
]
PUTVAL_EXAMPLE = "PUTVAL web-1/load/load interval=10.000 1763805600.123:0.25:0.3:0.2\n"


@post(
    "/collectd",
    guards=[sender_guard],
    tags=["series"],
    security=oa.SENDER,
    status_code=200,
    operation_id="postCollectd",
    summary="collectd write_http: JSON or PUTVAL lines",
    description="The format follows the Content-Type: `application/json` for write_http's "
    '`Format "JSON"`, `text/plain` for `Format "Command"`. Valid value lists are stored even '
    "when others are rejected. collectd sends its `User`/`Password` only after a `401` "
    'with `WWW-Authenticate: Basic realm="vigil"`, which every sender 401 carries: give it '
    "any user and the token as the password.",
    operation_class=oa.documented(
        request_body=oa.body(
            {oa.JSON: oa.array(VALUE_LIST), oa.TEXT: PUTVAL},
            description="collectd value lists",
            required=False,
            examples={oa.JSON: JSON_EXAMPLE, oa.TEXT: PUTVAL_EXAMPLE},
        ),
        responses={
            200: oa.reply(
                "The counts and the first 20 errors; the valid value lists are stored.",
                SUMMARY,
                examples={"all stored": {"accepted": 3, "rejected": 0, "errors": []}},
            ),
            400: oa.reply(
                "Every value list was rejected (the same summary), the body is not a JSON "
                "array or not UTF-8, or PostgreSQL refused a name (nothing stored).",
                Schema(one_of=[SUMMARY, MESSAGE]),
                examples={
                    "malformed": {
                        "message": "not a JSON array of collectd value lists: Input data was "
                        "truncated"
                    }
                },
            ),
            415: oa.reply(
                "Another content type.", MESSAGE, examples={"wrong type": {"message": WRONG_TYPE}}
            ),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
)
async def post_collectd(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type not in JSON_TYPES + COMMAND_TYPES:
        return Response({"message": WRONG_TYPE}, status_code=415, media_type=MediaType.JSON)
    body = await request.body()
    try:
        batch = parse_json(body) if content_type in JSON_TYPES else parse_command(body)
    except PointError as exc:
        return Response({"message": str(exc)}, status_code=400)
    refused = await store(request, batch)
    if refused is not None:
        return Response({"message": f"nothing stored: {refused}"}, status_code=400)
    status = 400 if batch.rejected and not batch.accepted else 200
    return Response(batch.summary(), status_code=status)


ROUTES = [post_collectd]
