"""HEAD wherever GET is served: a HEAD request is answered as the GET of the same URL
would be (status and headers, Content-Length included), without the body (RFC 9110 9.3.2).

Litestar answers 405 to HEAD on a GET route, and uptime monitors and load balancers probe
with HEAD (`curl -I`); this ASGI wrapper around the app turns the request into
a GET and drops the body of its response. A path with a HEAD handler of its own (Influx's
`HEAD /ping`, answered 204) keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def own_head_paths(app: Litestar) -> frozenset[str]:
    """The path templates (`/ping/{a:str}`) whose routes answer HEAD themselves."""
    return frozenset(route.path for route in app.routes if "HEAD" in route.methods)


def _template_pattern(template: str) -> str:
    """A Litestar path template as a regular expression: `{x:path}` any rest, `{x:T}` one
    segment."""
    parts = re.split(r"(\{[^}]*\})", template)
    return "".join(
        (".*" if p.endswith(":path}") else "[^/]+") if p.startswith("{") else re.escape(p)
        for p in parts
    )


def _route_path(path: str) -> str:
    """The path the app routes: without a `/t/TOKEN` prefix (api/auth/senders.py)."""
    if path.startswith("/t/"):
        parts = path.split("/", 3)
        return "/" + parts[3] if len(parts) == 4 else "/"
    return path


class HeadAsGet:
    def __init__(self, app: ASGIApp, own_head: Iterable[str] = ()) -> None:
        self.app = app
        patterns = [_template_pattern(t) for t in own_head]
        self.own_head = re.compile("|".join(patterns) if patterns else r"(?!)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope.get("method") != "HEAD"
            or self.own_head.fullmatch(_route_path(scope["path"])) is not None
        ):
            await self.app(scope, receive, send)
            return

        done = False

        async def send_headers_only(message: Message) -> None:
            # The response ends at its first body part: a streamed one (the live journal
            # tail) then sees the client as gone and stops, instead of streaming unseen.
            nonlocal done
            if message["type"] == "http.response.body":
                if done:
                    return
                done = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
