"""POST /loki/api/v1/push: Loki's push API (Grafana Alloy and Promtail, Vector's loki sink,
python-logging-loki, winston-loki, Docker's loki driver) into the journal.

The body is JSON (optionally gzip or deflate `Content-Encoding`), or a snappy-compressed
protobuf PushRequest: by `Content-Type: application/x-protobuf`, with or without
`Content-Encoding: snappy` (winston-loki sends none), or a body without a content type that is
not a JSON object. Parsing is api/loki/decode.py; storage
is the journal's (api/journal/routes.py: dedupe, retention). 204 when every entry was stored
(or was already); 400 with the reasons when some were rejected, the valid ones stored; 503
while the database is unavailable.
Auth: `Authorization: Bearer TOKEN`, Basic auth with the token as the password (the user name
is ignored, e.g. a Grafana Cloud-style tenant id), or the /t/TOKEN/ path prefix.
"""

from __future__ import annotations

import zlib
from typing import Any

from litestar import MediaType, Request, Response, post
from litestar.openapi.spec import OpenAPIType, Schema, SecurityRequirement

from api.auth.senders import sender_guard
from api.core import openapi as oa
from api.journal.formats.journald import Batch
from api.journal.routes import Outcome, store
from api.loki.decode import BodyError, parse_json, parse_protobuf
from api.promwrite.decode import BodyError as SnappyError
from api.promwrite.decode import unsnappy
from vigil.settings import Settings

MAX_INFLATE_FACTOR = 16  # a decompressed body: at most this many times VIGIL_MAX_BODY_BYTES
PROTOBUF = "application/x-protobuf"
REASONS_SHOWN = 5
SECURITY: list[SecurityRequirement] = [{"senderToken": []}, {"influxBasic": []}]
INFLATE_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
UNTYPED = ("", "application/octet-stream")


def _text(status: int, reason: str) -> Response[str]:
    return Response(f"{status} {reason}\n", status_code=status, media_type=MediaType.TEXT)


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=wbits)
    try:
        data = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise BodyError(f"invalid compressed body: {exc}") from None
    if inflater.unconsumed_tail:
        raise BodyError(f"body inflates to more than {limit} bytes")
    if not inflater.eof:
        raise BodyError("invalid compressed body: truncated")
    return data


class UnsupportedEncoding(ValueError):
    pass


def read_entries(body: bytes, content_type: str, encoding: str, limit: int) -> Batch:
    """The journal Batch of a push body, by its content type and encoding (BodyError when it
    cannot be read, UnsupportedEncoding for an encoding other than gzip, deflate, snappy)."""
    content_type = content_type.split(";")[0].strip().lower()
    encoding = encoding.strip().lower()
    if encoding not in ("", "identity", "snappy", *INFLATE_WBITS):
        raise UnsupportedEncoding(encoding)
    try:
        if (
            content_type == PROTOBUF
            or (encoding == "snappy" and "json" not in content_type)
            or (content_type in UNTYPED and body.lstrip()[:1] not in (b"{", b""))
        ):  # no type and not a JSON object: the protobuf form
            return parse_protobuf(unsnappy(body, limit))
        if encoding == "snappy":
            body = unsnappy(body, limit)
        elif encoding in INFLATE_WBITS:
            body = _inflate(body, INFLATE_WBITS[encoding], limit)
    except SnappyError as exc:
        raise BodyError(str(exc)) from None
    return parse_json(body)


STREAM = oa.obj(
    {
        "stream": Schema(
            type=OpenAPIType.OBJECT,
            additional_properties=oa.string(),
            description="the stream's labels",
        ),
        "values": oa.array(
            Schema(
                type=OpenAPIType.ARRAY,
                prefix_items=[
                    oa.string(pattern="^[0-9]+$", description="nanoseconds since 1970"),
                    oa.string(description="the line"),
                    Schema(
                        type=OpenAPIType.OBJECT,
                        additional_properties=oa.string(),
                        description="structured metadata (optional)",
                    ),
                ],
                min_items=2,
                max_items=3,
            ),
        ),
    },
    title="LokiStream",
)
PUSH = oa.obj({"streams": oa.array(STREAM)}, title="LokiPush")
PUSH_PROTOBUF = oa.string(
    format="binary",
    title="LokiPushRequest",
    description="A protobuf `logproto.PushRequest` (Loki's pkg/push/push.proto) compressed "
    "with snappy's block format",
)
PUSH_EXAMPLE = {
    "streams": [
        {
            "stream": {"job": "api", "host": "web-1", "level": "error"},
            "values": [["1763805600000000000", "disk almost full", {"trace_id": "0af7651916"}]],
        }
    ]
}


@post(
    "/loki/api/v1/push",
    guards=[sender_guard],
    tags=["journal"],
    security=SECURITY,
    status_code=200,  # the reply says: 204, 400 or 415
    operation_id="lokiPush",
    summary="Loki push (Alloy, Promtail, Vector, Loki logging handlers)",
    description="Each entry becomes a journal line: `host`/`hostname` fill the host, "
    "`unit`/`systemd_unit`/`service_name` the unit, `container`/`container_name` the "
    "container, `level`/`severity`/`priority`/`detected_level` the syslog priority; every "
    "label and every structured metadata pair is kept in the line's fields. Timestamps keep "
    "microseconds. An entry pushed twice is stored once.",
    operation_class=oa.documented(
        request_body=oa.body(
            {oa.JSON: PUSH, PROTOBUF: PUSH_PROTOBUF},
            description="JSON streams, or a snappy-compressed protobuf PushRequest",
            required=False,
            examples={oa.JSON: PUSH_EXAMPLE},
        ),
        parameters=[
            oa.header(
                "Content-Encoding",
                oa.string(enum=["gzip", "deflate", "snappy", "identity"]),
                "JSON may be gzip- or deflate-compressed (up to 16 times "
                "`VIGIL_MAX_BODY_BYTES` inflated); protobuf is snappy with or without the "
                "header.",
            ),
        ],
        responses={
            204: oa.reply("Every entry was stored, or was stored before."),
            400: oa.text_error(
                400,
                "The body cannot be read as a whole (malformed JSON, not snappy, not a "
                "PushRequest), or some entries were rejected (a bad timestamp, labels that "
                "are not a label set, older than the journal's retention...): the valid "
                "entries are stored.",
                "400 1 of 3 entries rejected (2 stored): the timestamp must be a string of "
                "nanoseconds since 1970 (1)\n",
            ),
            415: oa.text_error(
                415,
                "A `Content-Encoding` other than gzip, deflate or snappy.",
                "415 Content-Encoding 'br' is not supported: send gzip, deflate or snappy\n",
            ),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
)
async def push(request: Request[Any, Any, Any]) -> Response[Any]:
    settings: Settings = request.app.state.settings
    headers = request.headers
    try:
        batch = read_entries(
            await request.body(),
            headers.get("content-type", ""),
            headers.get("content-encoding", ""),
            settings.max_body_bytes * MAX_INFLATE_FACTOR,
        )
    except BodyError as exc:
        return _text(400, str(exc))
    except UnsupportedEncoding as exc:
        return _text(
            415,
            f"Content-Encoding {str(exc)[:40]!r} is not supported: send gzip, deflate or snappy",
        )
    outcome = Outcome()
    await store(request, batch, outcome)
    if outcome.rejected:
        total = outcome.accepted + outcome.duplicated + outcome.rejected
        reasons = "; ".join(
            f"{reason} ({n})" for reason, n in list(outcome.reasons.items())[:REASONS_SHOWN]
        )
        return _text(
            400,
            f"{outcome.rejected} of {total} entries rejected ({outcome.accepted} stored): "
            + reasons,
        )
    return Response(None, status_code=204)


ROUTES = [push]
