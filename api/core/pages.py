"""Page rendering: the Jinja2 environment of the operator pages (templates/, autoescaped),
its filters, and `render`, which gives every page the operator, CSRF token and nav state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from vigil import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def reltime(value: datetime | None, now: datetime | None = None) -> str:
    """'42 s ago', '5 min ago', '3 h ago', '2 d ago', 'in 4 min' (future)."""
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    delta = now - value
    future = delta < timedelta(0)
    seconds = abs(int(delta.total_seconds()))
    if seconds < 90:
        text = f"{seconds} s"
    elif seconds < 90 * 60:
        text = f"{seconds // 60} min"
    elif seconds < 36 * 3600:
        text = f"{seconds // 3600} h"
    else:
        text = f"{seconds // 86400} d"
    return f"in {text}" if future else f"{text} ago"


def exacttime(value: datetime | None) -> str:
    """The exact time in UTC, for a title attribute."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["reltime"] = reltime
    env.filters["exacttime"] = exacttime
    env.filters["duration"] = duration
    return env


def template_config() -> TemplateConfig[Any]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


@dataclass(frozen=True)
class Operator:
    """The signed-in person of a page request."""

    email: str
    csrf_token: str
    time_zone: str = ""  # IANA zone chosen in Settings; "" = the browser's zone


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A page: the template with the operator (or None), CSRF token and nav in context."""
    operator = request.scope.get("state", {}).get("vigil_operator")
    operator = operator if isinstance(operator, Operator) else None
    base = {
        "operator": operator,
        "csrf_token": operator.csrf_token if operator else "",
        "path": request.url.path,
        "settings": request.app.state.settings,
    }
    return Template(
        template_name=template,
        context={**base, **context},
        status_code=status_code,
        cookies=cookies,
        headers=headers,
    )
