"""The OpenAPI description of the API (/openapi.json) and its page (/docs).

The routes read their bodies themselves (`await request.body()`, streamed uploads) and build
their replies by hand, so Litestar cannot infer what goes over the wire. Each API route
therefore states it next to its handler: `operation_class=documented(...)` with the request
body, the extra parameters and every response (status, media type, schema), written with
the helpers below. Those replace what Litestar would infer; nothing here changes what a
route does. Operator pages are left out (`include_in_schema=False`).

/docs is Swagger UI from api/static/vendor (pinned npm files, scripts/vendor-assets), started
by api/static/docs.js: no CDN and no inline script, as the pages' CSP (`script-src 'self'`)
requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
    Tag,
)

JSON = "application/json"
TEXT = "text/plain"

# --- Security ------------------------------------------------------------------------------

SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    "senderToken": SecurityScheme(
        type="http",
        scheme="bearer",
        description=(
            "A sender token (`vigil token create NAME`): `Authorization: Bearer TOKEN` (the "
            "scheme `Token` is accepted too), or Basic auth with the token as the password (any "
            'user name; every 401 carries `WWW-Authenticate: Basic realm="vigil"`). Clients '
            "that only take a base URL put the token "
            "in the path instead, in front of the route: `http://HOST:8080/t/TOKEN/metric`; "
            "the prefix becomes this header before routing and never reaches a log. With "
            "`VIGIL_ALLOW_TOKENLESS_LOOPBACK=true`, requests from 127.0.0.1/::1 need none."
        ),
    ),
    "influxToken": SecurityScheme(
        type="apiKey",
        name="Authorization",
        security_scheme_in="header",
        description=(
            "InfluxDB 2.x and Telegraf's `token`: `Authorization: Token TOKEN` (the value is "
            "the scheme `Token`, a space and the sender token)."
        ),
    ),
    "influxBasic": SecurityScheme(
        type="http",
        scheme="basic",
        description="InfluxDB 1.x `username`/`password`: Basic auth with the token as the password "
        "(the user name is ignored).",
    ),
    "influxQuery": SecurityScheme(
        type="apiKey",
        name="p",
        security_scheme_in="query",
        description="InfluxDB 1.x: `?p=TOKEN` (or `?u=NAME&p=TOKEN`). A token in the query string "
        "ends up in the logs of any proxy in front of Vigil.",
    ),
    "operatorSession": SecurityScheme(
        type="apiKey",
        name="vigil_session",  # api.auth.sessions.SESSION_COOKIE (tests/openapi checks)
        security_scheme_in="cookie",
        description="A signed-in operator's session (the web pages' login).",
    ),
}

SENDER: list[SecurityRequirement] = [{"senderToken": []}]
"""The ingest and series routes: a sender token (header or /t/TOKEN/ prefix)."""
INFLUX: list[SecurityRequirement] = [
    {"senderToken": []},
    {"influxToken": []},
    {"influxBasic": []},
    {"influxQuery": []},
]
"""The InfluxDB routes: the sender token, also as Influx clients send it."""
READER: list[SecurityRequirement] = [{"senderToken": []}, {"operatorSession": []}]
"""The uptime reads: a sender token or an operator's session."""

# --- Schemas -------------------------------------------------------------------------------


def string(**kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, **kwargs)


def integer(**kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.INTEGER, **kwargs)


def number(**kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.NUMBER, **kwargs)


def nullable(kind: OpenAPIType, **kwargs: Any) -> Schema:
    """A value of the type, or null."""
    return Schema(type=[kind, OpenAPIType.NULL], **kwargs)


def array(items: Schema, **kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.ARRAY, items=items, **kwargs)


def obj(
    properties: Mapping[str, Schema],
    *,
    required: Sequence[str] | None = None,
    extra: Schema | bool = False,
    **kwargs: Any,
) -> Schema:
    """An object; `required` defaults to every property, `extra` to no other members."""
    return Schema(
        type=OpenAPIType.OBJECT,
        properties=dict(properties),
        required=list(properties) if required is None else list(required),
        additional_properties=extra,
        **kwargs,
    )


def batch_summary(
    title: str, *, accepted: str, rejected: str | None, index: str, errors: str
) -> Schema:
    """The reply to a batch whose valid items are stored: how many were stored and rejected,
    and the first 20 rejections by the item's index."""
    return obj(
        {
            "accepted": integer(minimum=0, description=accepted),
            "rejected": integer(minimum=0, description=rejected),
            "errors": array(
                obj({"index": integer(minimum=0, description=index), "message": string()}),
                max_items=20,
                description=errors,
            ),
        },
        title=title,
    )


def ingest_outcome(
    title: str,
    *,
    accepted: str,
    duplicated: str,
    rejected: str,
    rejected_lines: str,
    max_lines: int = 20,
    more: Mapping[str, Schema] | None = None,
) -> Schema:
    """The reply to a body of lines or entries: how many were stored, already stored and
    rejected (`more` counts follow these), every rejection counted by reason, and the first
    `max_lines` rejected lines (1-based)."""
    return obj(
        {
            "accepted": integer(minimum=0, description=accepted),
            "duplicated": integer(minimum=0, description=duplicated),
            "rejected": integer(minimum=0, description=rejected),
            **(more or {}),
            "reasons": Schema(
                type=OpenAPIType.OBJECT,
                additional_properties=integer(minimum=1),
                description="every rejected line counted by reason",
            ),
            "rejected_lines": array(
                obj({"line": integer(minimum=1), "reason": string()}),
                max_items=max_lines,
                description=rejected_lines,
            ),
        },
        title=title,
    )


# --- Request bodies, parameters, responses ---------------------------------------------------


def body(
    content: Mapping[str, Schema],
    *,
    description: str,
    required: bool = True,
    examples: Mapping[str, Any] | None = None,
) -> RequestBody:
    """A request body: schema per media type; `examples` gives one example per media type."""
    return RequestBody(
        description=description,
        required=required,
        content={
            media: OpenAPIMediaType(schema=schema, example=(examples or {}).get(media))
            for media, schema in content.items()
        },
    )


def query(name: str, schema: Schema, description: str) -> Parameter:
    return Parameter(
        name=name, param_in="query", schema=schema, description=description, required=False
    )


def header(name: str, schema: Schema, description: str) -> Parameter:
    return Parameter(
        name=name, param_in="header", schema=schema, description=description, required=False
    )


def path(name: str, schema: Schema, description: str) -> Parameter:
    return Parameter(
        name=name, param_in="path", schema=schema, description=description, required=True
    )


def reply(
    description: str,
    schema: Schema | None = None,
    *,
    media_type: str = JSON,
    examples: Mapping[str, Any] | None = None,
    alternatives: Mapping[str, Schema] | None = None,
) -> OpenAPIResponse:
    """A response: its body's schema in one media type (none: no body), plus alternatives."""
    if schema is None:
        return OpenAPIResponse(description=description)
    named: dict[str, Example | Reference] = {
        key: Example(summary=key, value=value) for key, value in (examples or {}).items()
    }
    content = {media_type: OpenAPIMediaType(schema=schema, examples=named or None)}
    for media, other in (alternatives or {}).items():
        content[media] = OpenAPIMediaType(schema=other)
    return OpenAPIResponse(description=description, content=content)


def text_error_schema(status: int) -> Schema:
    return string(
        pattern=f"^{status} ",
        description=f"One line: `{status}`, a space and the reason, then a newline.",
    )


def text_error(status: int, when: str, *examples: str) -> OpenAPIResponse:
    """One of Vigil's own errors: `text/plain`, one line, status first, for a sender's log."""
    return reply(
        when,
        text_error_schema(status),
        media_type=TEXT,
        examples={example.split("\n")[0]: example for example in examples},
    )


UNAUTHORIZED = text_error(
    401,
    "No token, or an unknown or revoked one (a revocation applies within 5 s).",
    "401 missing API token: send 'Authorization: Bearer TOKEN' or post to /t/TOKEN/<route>; "
    "create one with `vigil token create NAME`\n",
    "401 invalid or revoked API token\n",
)
TOO_LARGE = text_error(
    413,
    "The body is over `VIGIL_MAX_BODY_BYTES` (default 4 MiB).",
    "413 Request Entity Too Large\n",
)
NOT_FOUND_TEXT = text_error_schema(404)
"""The router's `404 Not Found` for a path that matches no route, e.g. a path parameter that
holds a `/` (sent as `%2F`)."""
UNAVAILABLE = text_error(
    503,
    "The database cannot be reached; retry later.",
    "503 database unavailable, retry later\n",
)
REFUSED_BY_DATABASE = (
    "Also any value PostgreSQL refuses (SQLSTATE class 22/23), as the same one line of text."
)
VIGIL_ERRORS: dict[int, OpenAPIResponse] = {401: UNAUTHORIZED, 413: TOO_LARGE, 503: UNAVAILABLE}


def vigil_errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    """Vigil's own errors that a route can give, by status: 401 (token), 413 (body too
    large), 503 (database down); each one line of `text/plain`."""
    return {status: VIGIL_ERRORS[status] for status in statuses}


@dataclass
class DocumentedOperation(Operation):
    """The base of the `operation_class` that `documented` makes for a route handler."""


def documented(
    *,
    responses: Mapping[int, OpenAPIResponse],
    request_body: RequestBody | None = None,
    parameters: Sequence[Parameter] = (),
) -> type[DocumentedOperation]:
    """An `operation_class` for a route handler: the given request body, parameters (added to
    the path parameters Litestar finds, or replacing one of the same name) and responses
    (all of them: the statuses a client can get) replace what Litestar would infer."""
    replies = {str(status): response for status, response in sorted(responses.items())}
    extra = list(parameters)
    names = {(p.name, p.param_in) for p in extra}

    @dataclass
    class Documented(DocumentedOperation):
        def __post_init__(self) -> None:
            self.responses = dict(replies)
            if request_body is not None:
                self.request_body = request_body
            found = [
                p
                for p in self.parameters or []
                if not (isinstance(p, Parameter) and (p.name, p.param_in) in names)
            ]
            self.parameters = [*found, *extra] or None

    return Documented


# --- The document and its page -------------------------------------------------------------

DESCRIPTION = """\
Every request Vigil accepts from senders, and what it answers; docs/compatibility.md in the
repository says the same with examples for each sender.

**Tokens.** Every route except `/ping`, `/ready` and `/health` needs a sender token
(`vigil token create NAME`): `Authorization: Bearer TOKEN`, Basic auth with the token as the
password, or a path prefix in front of the
route for clients that only take a base URL: `http://HOST:8080/t/TOKEN/metric`. The InfluxDB
routes also take the token as Influx clients send it (`Token`, Basic, `?p=`). `/v1/services`
also answers a signed-in operator.

**Errors of Vigil's own** (no token, a body too large, a body unusable as a whole, the
database down) are one line of `text/plain`, status first, for a sender's log:
`401 invalid or revoked API token`. Routes whose clients expect JSON errors answer in their
own format. Bad input gets a `4xx` with a reason, never a `5xx`; `503` means the database is
down: retry.
"""

TAGS = [
    Tag(name="heartbeats", description="`POST /metric`: pings and disk usage (metrics-sender)"),
    Tag(name="journal", description="journald entries: metrics-sender, journalctl, "
        "systemd-journal-upload"),
    Tag(name="series", description="Numeric series: the metrics-server API and batches"),
    Tag(name="influx", description="InfluxDB 1.x / 2.x line protocol (Telegraf, client "
        "libraries)"),
    Tag(name="uptime", description="The go-service-healthcheck API"),
    Tag(name="requests", description="Web access logs: common, combined, nginx JSON"),
    Tag(name="status", description="Liveness and health"),
]  # fmt: skip

DOCS_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/vendor/swagger-ui.css">
<link rel="stylesheet" href="/static/docs.css">
</head>
<body>
<div id="swagger-ui" data-spec-url="/openapi.json"></div>
<script src="/static/vendor/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


class SwaggerPage(OpenAPIRenderPlugin):
    """/docs: Swagger UI from the local static files, pointed at /openapi.json by docs.js."""

    def __init__(self, path: str = "/") -> None:
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return DOCS_PAGE


@get("/openapi.json", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI document (also at /docs/openapi.json)."""
    return request.app.openapi_schema.to_schema()


ROUTES = [openapi_json]


def openapi_config(version: str) -> OpenAPIConfig:
    """The OpenAPI document of the API routes, and /docs (its router: /docs, /docs/openapi.json)."""
    return OpenAPIConfig(
        title="Vigil",
        version=version,
        description=DESCRIPTION,
        tags=TAGS,
        components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        path="/docs",
        render_plugins=[SwaggerPage()],
    )
