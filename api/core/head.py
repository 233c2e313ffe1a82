"""HEAD wherever GET is served: a HEAD request is answered as the GET of the same URL
would be (status and headers, Content-Length included), without the body (RFC 9110 9.3.2).

Litestar answers 405 to HEAD on a GET route, and uptime monitors and load balancers probe
with HEAD (`curl -I`); this ASGI wrapper around the app turns the request into
a GET and drops the body of its response.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "HEAD":
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
