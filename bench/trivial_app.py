"""The framework ceiling: a trivial Litestar POST handler served like Vigil's API
(same uvicorn settings, one worker), reading the body and answering `ok`."""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, MediaType, Request, post


@post("/metric", media_type=MediaType.TEXT, status_code=200)
async def trivial(request: Request[object, object, object]) -> str:  # type: ignore[type-var]
    await request.body()
    return "ok"


app = Litestar(route_handlers=[trivial], openapi_config=None)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=False,
        log_level="warning",
        server_header=False,
    )
