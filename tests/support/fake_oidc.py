"""A local OpenID Connect provider standing in for Google in tests.

It serves a discovery document, a JWKS with an RSA key, an authorization endpoint that
"signs in" the configured user at once (redirecting back with a code) and a token endpoint
that checks what Google checks: client id and secret, one use per code, the redirect URI
and the PKCE S256 verifier; then it issues an RS256-signed ID token. Tests set the next
user's claims (`email`, `email_verified`) or break one claim on purpose (`overrides`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    challenge_method: str
    claims: dict[str, Any]
    used: bool = False


@dataclass
class FakeOidc:
    client_id: str = "vigil-test.apps.example"
    client_secret: str = "test-secret"
    email: str = "ann@example.com"
    email_verified: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"}
        )
    )

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._send(200, fake.discovery())
                elif parts.path == "/jwks":
                    self._send(200, {"keys": [fake.key.as_dict(private=False)]})
                elif parts.path == "/authorize":
                    status, location = fake.authorize(query)
                    self._send(
                        status,
                        None if location else {"error": "invalid_request"},
                        {"Location": location} if location else None,
                    )
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self._send(404, {"error": "not found"})
                    return
                status, body = fake.token(form, self.headers.get("authorization", ""))
                self._send(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, str | None]:
        """The user consents at once: a code for the configured user, back to redirect_uri."""
        self.authorize_requests.append(query)
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, None
        code = secrets.token_urlsafe(16)
        claims = {"email": self.email, "email_verified": self.email_verified}
        with self._lock:
            self.grants[code] = Grant(
                client_id=query["client_id"],
                redirect_uri=query.get("redirect_uri", ""),
                nonce=query.get("nonce", ""),
                challenge=query.get("code_challenge", ""),
                challenge_method=query.get("code_challenge_method", ""),
                claims=claims,
            )
        back = (
            query.get("redirect_uri", "")
            + "?"
            + urlencode(
                {"code": code, "state": query.get("state", ""), "scope": query.get("scope", "")}
            )
        )
        return 302, back

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        scheme, _, encoded = authorization.partition(" ")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if scheme.lower() == "basic":
            client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self.grants.get(form.get("code", ""))
            if grant is None or grant.used:
                return 400, {"error": "invalid_grant", "error_description": "code used or unknown"}
            grant.used = True
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if grant.challenge_method != "S256" or digest.rstrip(b"=").decode() != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "1234567890",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 3600,
            "nonce": grant.nonce,
            **grant.claims,
            **self.overrides,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid email",
            "id_token": id_token,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
