"""GET /v1/block/export: the deny list in force, as text for the front proxy's cron job (nginx
`deny` lines for `include`, an `ipset restore` script, or one CIDR per line)."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar import MediaType, Request, Response, get
from litestar.exceptions import ClientException

from api.auth.senders import sender_guard
from api.block import QUERIES
from api.core import openapi as oa
from api.core.db import http_error, pool_of

FORMATS = ("nginx", "ipset", "cidr")
EXAMPLES = {
    "nginx": "deny 203.0.113.7;\ndeny 198.51.100.0/24;\n",
    "ipset": "create vigil-deny hash:net -exist\nflush vigil-deny\n"
    "add vigil-deny 203.0.113.7 -exist\nadd vigil-deny 198.51.100.0/24 -exist\n",
    "cidr": "203.0.113.7/32\n198.51.100.0/24\n",
}


@get(
    "/v1/block/export",
    guards=[sender_guard],
    tags=["block"],
    security=oa.SENDER,
    operation_id="exportDenyList",
    summary="The deny list in force, for nginx, ipset or any tool that reads CIDRs",
    operation_class=oa.documented(
        parameters=[
            oa.query(
                "format",
                oa.string(enum=list(FORMATS), default="nginx"),
                "nginx: `deny ADDRESS;` lines (for `include`); ipset: an `ipset restore` "
                "script for the set vigil-deny (IPv6: vigil-deny6); cidr: one network per line.",
            )
        ],
        responses={
            200: oa.reply(
                "The entries in force now (expired ones never); an empty list is an empty body "
                "(nginx, cidr).",
                oa.string(),
                media_type=oa.TEXT,
                examples=EXAMPLES,
            ),
            400: oa.text_error(
                400,
                "An unknown format.",
                "400 format must be nginx, ipset or cidr\n",
            ),
            403: oa.text_error(
                403,
                "The client's address is on the deny list (every sender route).",
                "403 blocked: 203.0.113.7 is on this server's deny list (203.0.113.7/32: "
                "scanner; until 2026-11-30 13:00:00 UTC)\n",
            ),
            **oa.vigil_errors(401, 503),
        },
    ),
)
async def export_blocks(request: Request[Any, Any, Any]) -> Response[bytes]:
    fmt = str(request.query_params.get("format") or "nginx")
    if fmt not in FORMATS:
        raise ClientException(detail="format must be nginx, ipset or cidr")
    try:
        async with pool_of(request.app).connection() as conn:
            row = await (await conn.execute(QUERIES["block_export"], (fmt,))).fetchone()
    except psycopg.Error as exc:
        raise http_error(exc) from None
    text = str(row[0]) if row and row[0] is not None else ""
    return Response(
        text.encode(),
        media_type=MediaType.TEXT,
        status_code=200,
        headers={"Cache-Control": "no-store"},
    )


ROUTES = [export_blocks]
