"""Google sign-in: OpenID Connect authorization-code flow with state, nonce and PKCE (S256).

GET /auth/google stores (state, nonce, PKCE verifier) server-side in vigil.oauth_flows under
the hash of a random id that only this browser holds (cookie `vigil_oauth`, 10 minutes) and
redirects to Google. GET /auth/google/callback consumes that flow (one use), checks state,
exchanges the code with authlib's OAuth2 client (code_verifier, client secret), verifies the
ID token's signature against the provider's JWKS and its issuer, audience, expiry and nonce
(authlib's CodeIDToken), requires `email_verified`, and starts a session only when the email
is in vigil.users. Everything else ends on the login page without a session.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException

from api.auth import QUERIES
from api.auth.sessions import clear_cookie, make_cookie, safe_next, settings_of, start_session
from api.core.db import pool_of
from api.core.pages import render
from vigil.settings import Settings
from vigil.tokens import secret_hash

log = logging.getLogger("vigil.oidc")

FLOW_COOKIE = "vigil_oauth"
FLOW_SECONDS = 600
METADATA_SECONDS = 3600.0
HTTP_TIMEOUT = 10.0
LEEWAY_SECONDS = 60
ALGORITHMS = ["RS256", "ES256"]


class SignInError(Exception):
    """The sign-in failed; the message is safe to show."""


class _FormPoster:
    """The `session` authlib's OAuth2Client posts the token request through (httpx)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post(
        self, url: str, data: dict[str, str], headers: dict[str, str], auth: Any, **_: Any
    ) -> httpx.Response:
        body = urlencode(data)
        url, headers, body = auth.prepare("POST", url, dict(headers), body)
        return self.client.post(url, content=body, headers=headers)


@dataclass
class Provider:
    """Discovery document and keys of the OpenID provider, cached for an hour."""

    discovery_url: str
    metadata: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    fetched_at: float = 0.0

    async def load(self, force: bool = False) -> dict[str, Any]:
        if not force and self.metadata and time.monotonic() - self.fetched_at < METADATA_SECONDS:
            return self.metadata
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            meta = (await client.get(self.discovery_url)).raise_for_status().json()
            keys = (await client.get(meta["jwks_uri"])).raise_for_status().json()
        self.metadata, self.keys, self.fetched_at = dict(meta), dict(keys), time.monotonic()
        return self.metadata


def _client(settings: Settings, session: Any = None) -> OAuth2Client:
    return OAuth2Client(
        session,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        scope="openid email",
        redirect_uri=settings.google_callback_url,
        code_challenge_method="S256",
    )


def _provider(request: Request[Any, Any, Any]) -> Provider:
    settings = settings_of(request)
    if not settings.google_configured:
        raise NotFoundException(detail="Google sign-in is not configured (GOOGLE_CLIENT_ID)")
    state = request.app.state
    provider = state.get("oidc_provider")
    if not isinstance(provider, Provider):
        provider = Provider(settings.google_discovery_url)
        state["oidc_provider"] = provider
    return provider


@get("/auth/google", include_in_schema=False)
async def google_start(request: Request[Any, Any, Any]) -> Response[Any]:
    provider = _provider(request)
    settings = settings_of(request)
    try:
        meta = await provider.load()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning("OpenID discovery failed: %s", type(exc).__name__)
        return _failed(request, "Google sign-in is unavailable right now; try again.", 503)
    flow_id = secrets.token_urlsafe(32)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    url, _ = _client(settings).create_authorization_url(
        meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
    )
    async with pool_of(request.app).connection() as conn:
        await conn.execute(
            QUERIES["oauth_flow_start"],
            (
                secret_hash(flow_id),
                state,
                nonce,
                verifier,
                safe_next(request.query_params.get("next")),
                timedelta(seconds=FLOW_SECONDS),
            ),
        )
    return Response(
        "",
        status_code=303,
        headers={"Location": url},
        cookies=[make_cookie(request, FLOW_COOKIE, flow_id, FLOW_SECONDS)],
    )


def _failed(request: Request[Any, Any, Any], message: str, status: int = 403) -> Response[Any]:
    return render(
        request,
        "auth/login.html",
        status_code=status,
        error=message,
        google=settings_of(request).google_configured,
        next_path="/",
        cookies=[clear_cookie(request, FLOW_COOKIE)],
    )


async def _take_flow(request: Request[Any, Any, Any]) -> tuple[str, str, str, str]:
    flow_id = request.cookies.get(FLOW_COOKIE)
    if not flow_id or len(flow_id) > 200:
        raise SignInError("This sign-in was not started in this browser; start again.")
    async with pool_of(request.app).connection() as conn:
        row = await (
            await conn.execute(QUERIES["oauth_flow_take"], (secret_hash(flow_id),))
        ).fetchone()
    if row is None or row[3] is None:
        raise SignInError("This sign-in has expired or was used already; start again.")
    return str(row[0]), str(row[1]), str(row[2]), str(row[3])


def _exchange(settings: Settings, token_endpoint: str, code: str, verifier: str) -> Any:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        client = _client(settings, _FormPoster(http))
        return client.fetch_token(
            token_endpoint, grant_type="authorization_code", code=code, code_verifier=verifier
        )


async def _verified_claims(
    provider: Provider, settings: Settings, id_token: str, nonce: str, access_token: str | None
) -> CodeIDToken:
    meta = provider.metadata
    for attempt in (1, 2):
        try:
            token = jwt.decode(
                id_token, KeySet.import_key_set(cast(Any, provider.keys)), algorithms=ALGORITHMS
            )
            break
        except (JoseError, ValueError) as exc:
            if attempt == 2:
                raise SignInError("The ID token's signature is not valid.") from exc
            await provider.load(force=True)  # keys may have rotated
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": meta["issuer"]},
            "aud": {"essential": True, "value": settings.google_client_id or ""},
        },
        params={"nonce": nonce, "access_token": access_token},
    )
    try:
        claims.validate(now=int(time.time()), leeway=LEEWAY_SECONDS)
    except JoseError as exc:
        raise SignInError(f"The ID token is not valid: {exc.description or exc.error}.") from exc
    return claims


@get("/auth/google/callback", include_in_schema=False)
async def google_callback(request: Request[Any, Any, Any]) -> Response[Any]:
    provider = _provider(request)
    settings = settings_of(request)
    params = request.query_params
    try:
        sent_state, nonce, verifier, next_path = await _take_flow(request)
        if params.get("error"):
            raise SignInError(f"Google refused the sign-in ({params.get('error')}).")
        state, code = params.get("state") or "", params.get("code") or ""
        if not code or not hmac.compare_digest(state.encode(), sent_state.encode()):
            raise SignInError("The sign-in answer does not match this browser (state).")
        meta = await provider.load()
        try:
            token = await asyncio.to_thread(
                _exchange, settings, meta["token_endpoint"], code, verifier
            )
        except Exception as exc:  # authlib raises OAuth2Error, httpx errors, ValueError
            log.warning("OpenID token exchange failed: %s", type(exc).__name__)
            raise SignInError("Google did not accept the sign-in code; start again.") from exc
        if "id_token" not in token:
            raise SignInError("Google sent no ID token.")
        claims = await _verified_claims(
            provider, settings, token["id_token"], nonce, token.get("access_token")
        )
        if claims.get("email_verified") not in (True, "true"):
            raise SignInError("Your Google address is not verified.")
        email = str(claims.get("email") or "").lower()
        session = await start_session(request, email) if email else None
        if session is None:
            raise SignInError(f"{email or 'This account'} is not allowed to use this Vigil.")
    except SignInError as exc:
        return _failed(request, str(exc))
    return Response(
        "",
        status_code=303,
        headers={"Location": next_path},
        cookies=[session, clear_cookie(request, FLOW_COOKIE)],
    )


ROUTES = [google_start, google_callback]
