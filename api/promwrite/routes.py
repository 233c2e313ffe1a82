"""POST /api/v1/write: Prometheus remote_write 1.0 (Prometheus, Grafana Agent/Alloy,
vmagent, OpenTelemetry's prometheusremotewrite exporter).

Prometheus drops a batch on any 4xx and retries on 5xx and 429, so: 204 when every sample was
stored or skipped on purpose (api/promwrite/decode.py); 400 only for what a retry cannot fix
(a body that is not snappy protobuf, invalid names or labels), with the reason in the body and
the valid samples of the request stored; 503 while the database is unavailable (nothing of
the request stored: it is one transaction, so the retry stores it once).
Auth: `Authorization: Bearer TOKEN`, Basic auth with the token as the password, or the
/t/TOKEN/ path prefix (api/auth/senders.py).
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, post
from litestar.openapi.spec import SecurityRequirement

from api.auth.senders import sender_guard
from api.core import openapi as oa
from api.promwrite.decode import BodyError, decode_write_request, unsnappy
from api.series.routes import store
from vigil.settings import Settings

MAX_INFLATE_FACTOR = 16  # the decompressed body: at most this many times VIGIL_MAX_BODY_BYTES
PROTOBUF = "application/x-protobuf"
V2_PROTO = "io.prometheus.write.v2.request"
ERRORS_SHOWN = 5
SECURITY: list[SecurityRequirement] = [{"senderToken": []}, {"influxBasic": []}]


def _text(status: int, reason: str) -> Response[str]:
    """One line of text, status first, as Vigil's other errors (Prometheus logs it)."""
    return Response(f"{status} {reason}\n", status_code=status, media_type=MediaType.TEXT)


WRITE_REQUEST = oa.string(
    format="binary",
    title="WriteRequest",
    description="A protobuf `prometheus.WriteRequest` (remote_write 1.0, prompb/remote.proto) "
    "compressed with snappy's block format",
)
BAD_BODY = (
    "Nothing could be read (not snappy, not a WriteRequest), or some samples were refused: "
    "a series without `__name__`, a name over 255 characters, more than 32 labels, a label "
    "value over 255 characters, a timestamp before 1970 or more than 10 minutes ahead. The "
    "valid samples of the request are stored. Prometheus does not retry a 4xx."
)


@post(
    "/api/v1/write",
    guards=[sender_guard],
    tags=["series"],
    security=SECURITY,
    status_code=200,  # the reply says: 204, 400 or 415
    operation_id="prometheusRemoteWrite",
    summary="Prometheus remote_write 1.0",
    description="`__name__` is the series name and the other labels its labels; samples are "
    "stored at their millisecond timestamps. NaN (stale markers) and infinite samples are "
    "skipped, as are native histograms; metadata-only requests are answered `204`.",
    operation_class=oa.documented(
        request_body=oa.body(
            {PROTOBUF: WRITE_REQUEST},
            description="A snappy-compressed WriteRequest",
            required=False,
        ),
        parameters=[
            oa.header(
                "Content-Encoding",
                oa.string(enum=["snappy"]),
                "`snappy` (the block format), as remote_write sends it; the body is read as "
                "snappy whether the header is there or not.",
            ),
            oa.header(
                "X-Prometheus-Remote-Write-Version",
                oa.string(),
                "`0.1.0` from Prometheus; 1.0 is the version read.",
            ),
        ],
        responses={
            204: oa.reply("Every sample was stored or skipped on purpose."),
            400: oa.text_error(
                400,
                BAD_BODY,
                "400 body is not snappy-compressed (block format): snappy: corrupt input "
                "(invalid header)\n",
                "400 1 of 501 samples rejected (500 stored): series 3: no __name__ label\n",
            ),
            415: oa.text_error(
                415,
                "remote_write 2.0 (`proto=io.prometheus.write.v2.Request`) or a `Content-"
                "Encoding` other than snappy.",
                "415 remote_write 2.0 is not supported: send remote_write 1.0 "
                "(protobuf_message: prometheus.WriteRequest)\n",
            ),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
)
async def remote_write(request: Request[Any, Any, Any]) -> Response[Any]:
    if V2_PROTO in request.headers.get("content-type", "").lower():
        return _text(
            415,
            "remote_write 2.0 is not supported: send remote_write 1.0 "
            "(protobuf_message: prometheus.WriteRequest)",
        )
    encoding = request.headers.get("content-encoding", "snappy").strip().lower()
    if encoding not in ("snappy", ""):
        return _text(415, f"Content-Encoding {encoding[:40]!r}: remote_write bodies are snappy")
    settings: Settings = request.app.state.settings
    try:
        body = unsnappy(await request.body(), settings.max_body_bytes * MAX_INFLATE_FACTOR)
        decoded = decode_write_request(body)
    except BodyError as exc:
        return _text(400, str(exc))
    batch = decoded.batch
    refused = await store(request, batch)
    if refused is not None:
        return _text(400, f"nothing stored: {refused}")
    if batch.rejected:
        total = batch.rejected + batch.accepted
        reasons = "; ".join(message for _, message in batch.errors[:ERRORS_SHOWN])
        return _text(
            400,
            f"{batch.rejected} of {total} samples rejected ({batch.accepted} stored): {reasons}",
        )
    return Response(None, status_code=204)


ROUTES = [remote_write]
