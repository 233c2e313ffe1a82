"""`python -m api` (what `vigil api` and `vigil run` start): the HTTP API on uvicorn."""

import sys

import uvicorn

from api.app import create_app
from api.core.server import uvicorn_config
from vigil.process import run_process
from vigil.settings import Settings


def serve(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()


sys.exit(run_process(serve))
