"""/openapi.json documents every API route of api/app.py (and no page), with every response a
client can get; /docs renders it from local files only; replies of the documented examples
and of a populated database match the document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from litestar.handlers import HTTPRouteHandler

from api.app import FEATURE_ROUTES
from api.auth.sessions import SESSION_COOKIE
from api.core.openapi import DocumentedOperation
from tests.conftest import ApiServer
from tests.openapi import openapi_document
from tests.support.sql import T0
from tests.support.uptime import add

Conn = psycopg.Connection[tuple[object, ...]]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def handlers() -> Iterator[HTTPRouteHandler]:
    for routes in FEATURE_ROUTES:
        for handler in routes:
            assert isinstance(handler, HTTPRouteHandler)
            yield handler


def openapi_path(path: str) -> str:
    """A Litestar path as OpenAPI writes it: `{name:str}` -> `{name}`."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def routes(*, pages: bool) -> set[tuple[str, str]]:
    """(path, method) of every API route (pages=False) or every page (pages=True)."""
    found = set()
    for handler in handlers():
        if (handler.include_in_schema is False) is pages:
            for path in handler.paths:
                for method in handler.http_methods:
                    found.add((openapi_path(path), method.lower()))
    return found


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


@pytest.fixture
def document(api: ApiServer) -> dict[str, Any]:
    r = httpx.get(api.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = r.json()
    return doc


def test_every_api_route_is_documented_and_no_page(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert document == openapi_document()  # what schemathesis runs on (test_schemathesis.py)
    documented = {(path, method) for path, method, _ in operations(document)}
    api_routes = routes(pages=False)
    assert documented == api_routes  # nothing missing, nothing else (no page, /docs, /static)
    assert not documented & routes(pages=True)
    # The API routes known today: a new route fails here until it is listed (and documented).
    assert {path for path, _ in api_routes} >= {
        "/health", "/ping", "/metric", "/journal", "/upload", "/v1/metrics",
        "/v1/metrics/batch", "/v1/metrics/{name}/{granularity}/{start_date}/{end_date}",
        "/write", "/api/v2/write", "/query", "/v1/services", "/v1/services/{service_id}/events",
    }  # fmt: skip
    for handler in handlers():
        if handler.include_in_schema is not False:
            # Its request body and every response are written out (api/core/openapi.py),
            # not left to what Litestar infers from `request` and `Response[dict]`.
            assert issubclass(handler.operation_class, DocumentedOperation), handler.paths


def test_every_operation_documents_its_errors(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {
        "senderToken", "influxToken", "influxBasic", "influxQuery", "operatorSession",
    }  # fmt: skip
    assert "/t/TOKEN/" in schemes["senderToken"]["description"]
    assert schemes["operatorSession"]["name"] == SESSION_COOKIE
    for path, method, operation in operations(document):
        label = f"{method.upper()} {path}"
        assert operation["operationId"] and operation["summary"], label
        responses = operation["responses"]
        for status, response in responses.items():
            assert response["description"], (label, status)
            for media, content in response.get("content", {}).items():
                assert "schema" in content, (label, status, media)
        if path != "/ping":
            assert "503" in responses, label
        if operation.get("security"):
            error = responses["401"]["content"]["text/plain"]["schema"]
            assert error["pattern"] == "^401 ", label
        else:
            assert path in ("/health", "/ping", "/ready"), label


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = True
            if values.get("src"):
                self.urls.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_docs_page_uses_local_assets_only(api: ApiServer) -> None:
    r = httpx.get(api.url + "/docs", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'data-spec-url="/openapi.json"' in r.text
    assets = Assets()
    assets.feed(r.text)
    assert assets.inline_scripts == 0  # the CSP would block them
    assert sorted(assets.urls) == [
        "/static/docs.css",
        "/static/docs.js",
        "/static/vendor/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui.css",
        "data:,",  # no favicon to fetch
    ]
    for url in assets.urls:
        if url.startswith("data:"):
            continue
        asset = httpx.get(api.url + url, timeout=10)
        assert asset.status_code == 200, url
        kind = "css" if url.endswith(".css") else "javascript"
        assert kind in asset.headers["content-type"], url
        assert asset.content.strip(), url
    assert httpx.get(api.url + "/docs/openapi.json", timeout=10).json() == (
        httpx.get(api.url + "/openapi.json", timeout=10).json()
    )


@pytest.mark.browser
def test_docs_page_renders_in_chromium(api: ApiServer, page: Any, document: dict[str, Any]) -> None:
    """Swagger UI runs under the page's CSP, fetches nothing from elsewhere, shows every
    operation."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "request",
        lambda req: None if req.url.startswith(api.url) else problems.append(req.url),
    )
    page.goto(api.url + "/docs")
    page.wait_for_selector(".opblock-summary", timeout=20_000)
    page.wait_for_load_state("networkidle")
    shown = page.locator(".opblock").count()
    assert shown == len(list(operations(document)))
    assert problems == []


# --- Replies of a populated database match the document -------------------------------------


def checked(
    schema: schemathesis.BaseSchema, path: str, method: str, response: httpx.Response
) -> httpx.Response:
    """The response, after checking it is documented: status, media type, body schema."""
    operation = schema[path][method]
    responses = operation.definition.raw["responses"]
    assert str(response.status_code) in responses, (path, method, response.status_code)
    media = response.headers.get("content-type", "").split(";")[0]
    content = responses[str(response.status_code)].get("content")
    if content:
        assert media in content, (path, method, response.status_code, media)
    operation.validate_response(response)
    return response


def test_populated_replies_match_the_document(
    api: ApiServer, token: str, conn: Conn, document: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_dict(document)
    auth = {"Authorization": f"Bearer {token}"}

    def call(method: str, path: str, route: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**auth, **kwargs.pop("headers", {})}
        r = httpx.request(method, api.url + path, headers=headers, timeout=10, **kwargs)
        return checked(schema, route or path.partition("?")[0], method, r)

    row = conn.execute("select now()").fetchone()
    assert row is not None and isinstance(row[0], datetime)
    now = row[0]
    us = int(now.timestamp() * 1_000_000)
    line = f'{{"__REALTIME_TIMESTAMP":"{us}","_HOSTNAME":"web-1","MESSAGE":"hello"}}'
    journal = f'{line}\n{line}\nnot json\n{{"__REALTIME_TIMESTAMP":"1","MESSAGE":"old"}}\n'
    outcome = call("POST", "/journal", content=journal.encode()).json()
    assert (outcome["accepted"], outcome["duplicated"], outcome["rejected"]) == (1, 1, 2)
    export = f"__REALTIME_TIMESTAMP={us + 1}\nMESSAGE=exported\n\n".encode()
    upload = call("POST", "/upload", content=export,
                  headers={"Content-Type": "application/vnd.fdo.journal"})  # fmt: skip
    assert upload.json()["accepted"] == 1
    assert call("POST", "/upload", content=export).status_code == 400  # content type

    report = {"host": "h", "name": "n", "type": "ping"}
    assert call("POST", "/metric", json=report).text == "ok"
    assert call("POST", "/metric", json={**report, "type": "pong"}).status_code == 400
    assert call("POST", "/metric", content=b" " * (4 * 1024 * 1024 + 1)).status_code == 413

    assert call("POST", "/v1/metrics", json={"name": "temp", "value": 21.5}).status_code == 201
    assert call("POST", "/v1/metrics", json={"name": "temp"}).status_code == 400
    points = [{"name": "temp", "value": 22, "labels": {"room": "a"}}, {"name": "t", "value": "x"}]
    summary = call("POST", "/v1/metrics/batch", json=points).json()
    assert (summary["accepted"], summary["rejected"], summary["errors"][0]["index"]) == (1, 1, 1)
    assert call("POST", "/v1/metrics/batch", json=[{"value": 1}]).status_code == 400
    assert call("POST", "/v1/metrics/batch", content=b"[{").status_code == 400
    assert call("GET", "/v1/metrics").json() == ["temp"]
    day = now.date().isoformat()
    averages = "/v1/metrics/{name}/{granularity}/{start_date}/{end_date}"
    data = call("GET", f"/v1/metrics/temp/day/{day}/{day}", averages).json()["data"]
    assert data and data[0]["avg"] > 0
    assert call("GET", f"/v1/metrics/temp/week/{day}/{day}", averages).status_code == 400
    assert call("GET", f"/v1/metrics/a%2Fb/hour/{day}/{day}", averages).status_code == 404

    assert call("POST", "/write?precision=s", content=b"cpu,host=a idle=99.5\n").status_code == 204
    assert call("POST", "/write", content=b"cpu idle=1\ncpu idle=\n").status_code == 400
    assert call("POST", "/api/v2/write?precision=x", content=b"cpu idle=1").status_code == 400
    assert call("POST", "/query?q=CREATE+DATABASE+telegraf").status_code == 200

    sid = add(conn, "shop", "https://shop.example/health")
    add(conn, "new", "https://new.example/")
    for i, status in enumerate((200, 500, None, 200)):
        conn.execute(
            "select vigil.record_check(%s, %s, %s, %s, %s, null)",
            (sid, T0 + timedelta(seconds=15 * i), status, 20.0 if status else None,
             None if status else "timeout"),
        )  # fmt: skip
    services = call("GET", "/v1/services").json()["data"]["services"]["data"]
    assert [s["current_status"] for s in services] == ["up", "unknown"]
    events_route = "/v1/services/{service_id}/events"
    page = call("GET", f"/v1/services/{sid}/events?limit=1", events_route).json()
    assert page["data"]["events"]["next_before"] is not None
    assert call("GET", "/v1/services/999/events", events_route).status_code == 404
    assert call("GET", "/v1/services/x/events", events_route).status_code == 400
    trace_route = "/v1/trace/{trace_id}"
    assert call("GET", "/v1/trace/nope", trace_route).json() == {"id": "nope", "items": []}
    assert call("GET", "/v1/trace/" + "x" * 201, trace_route).status_code == 400

    for path, method, operation in operations(document):
        if operation.get("security"):  # no token: the plain-text 401
            concrete = path.format(
                name="temp",
                granularity="hour",
                start_date=day,
                end_date=day,
                service_id=sid,
                trace_id="nope",
            )
            r = call(method.upper(), concrete, path, headers={"Authorization": ""})
            assert r.status_code == 401, path

    health = call("GET", "/health").json()
    assert health["status"] == "up"
    assert call("GET", "/ping").json() == {"status": "up"}
