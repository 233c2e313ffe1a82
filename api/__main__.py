"""`python -m api` (what `vigil api` and `vigil run` start): the HTTP API on uvicorn."""

import sys

import uvicorn

from api.app import create_app
from vigil.process import run_process
from vigil.settings import Settings


def serve(settings: Settings) -> None:
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="info",
        server_header=False,
    )


sys.exit(run_process(serve))
