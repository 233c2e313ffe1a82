"""`python -m api` (what `vigil api` and `vigil run` start): the HTTP API on uvicorn."""

import signal
import sys
from types import FrameType

import uvicorn

from api.app import create_app
from api.core.server import uvicorn_config
from vigil.process import run_process
from vigil.settings import Settings


class Server(uvicorn.Server):
    """uvicorn's server, remembering a Ctrl+C: uvicorn re-raises the signal at the end of its
    coroutine, where asyncio.run may or may not turn it into KeyboardInterrupt (it depends on
    whether the task had finished), so the exit status would depend on timing."""

    interrupted = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT:
            self.interrupted = True
        super().handle_exit(sig, frame)


def serve(settings: Settings) -> None:
    server = Server(uvicorn_config(create_app(settings), settings))
    server.run()
    if server.interrupted:
        raise KeyboardInterrupt  # run_process: one line, exit status 130


sys.exit(run_process(serve))
