"""Web access log lines -> typed request records (pure functions, standard library only).

Shared by the server (api/requests) and the collector (`vigil send file --format ...`), so
it imports nothing of either. Formats:

- `common` and `combined`: Apache's and nginx's defaults
  (`%h %l %u %t "%r" %>s %b` and the same with `"%{Referer}i" "%{User-agent}i"`), also with
  a virtual host in front (Apache's `vhost_combined`, `%v:%p %h ...`) and with fields
  appended after them: `key=value` pairs (`rt=`/`request_time=`, `urt=`/
  `upstream_response_time=`, `request_id=`, `traceparent=`, `trace_id=`, `host=`/`vhost=`),
  a bare 32-hex token (nginx's `$request_id`) or a bare number with a dot (nginx's
  `$request_time`); any other appended text is ignored.
- `nginx-json`: one JSON object per line, as `log_format ... escape=json '{...}'` writes
  it, with nginx's variable names (`remote_addr`, `time_iso8601` or `time_local` or
  `msec`, `request` or `request_method` + `request_uri`, `status`, `body_bytes_sent`,
  `http_referer`, `http_user_agent`, `request_time`, `upstream_response_time`, `host`,
  `request_id`, `http_x_request_id`, `http_traceparent`, ...).

Text in a line that is not UTF-8 is kept visible as `\\xNN`; the escapes Apache and nginx
write (`\\"`, `\\\\`, `\\xNN`) are decoded when the result is valid UTF-8. A line that cannot
be read raises `LineError`, whose message is the reason.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

FORMATS = ("auto", "combined", "common", "nginx-json")
MAX_LINE = 64 * 1024
"""Longer lines are not request records (they are kept as journal lines)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
)}  # fmt: skip

# "%r", "%{Referer}i", ...: a quoted string in which \" and \\ are escapes
_Q = rb'"((?:[^"\\]|\\.)*)"'
_CLF = re.compile(
    rb"(?:(?P<vhost>\S+) )?(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+|\"[^\"]*\") "
    rb"\[(?P<time>[^\]]{20,40})\] "
    + _Q.replace(b"(", b"(?P<request>", 1)
    + rb" (?P<status>\d{3}) (?P<bytes>\d{1,19}|-)"
    + rb"(?: "
    + _Q.replace(b"(", b"(?P<referrer>", 1)
    + rb" "
    + _Q.replace(b"(", b"(?P<agent>", 1)
    + rb")?(?P<rest>(?: .*)?)"
)
_CLF_TIME = re.compile(
    r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))? ([+-]\d{4})"
)
_REQUEST = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,31}) (\S+) (HTTP/\d(?:\.\d)?)")
_REQUEST_09 = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,31}) (\S+)")
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_TAIL = re.compile(rb'(\w[\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)|"((?:[^"\\]|\\.)*)"|(\S+)')
_HEX32 = re.compile(r"[0-9a-f]{32}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_NUMBER = re.compile(r"\d{1,9}(?:\.\d{1,9})?")
_MSEC = re.compile(r"(\d{1,12})(?:\.(\d{1,6}))?")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)")

REQUEST_TIME_KEYS = ("rt", "request_time")
UPSTREAM_TIME_KEYS = ("urt", "upstream_response_time", "upstream_time")
REQUEST_ID_KEYS = ("request_id", "http_x_request_id", "x_request_id", "rid", "req_id")
TRACEPARENT_KEYS = ("traceparent", "http_traceparent")
TRACE_ID_KEYS = ("trace_id", "traceid", "http_x_trace_id", "x_trace_id")
VHOST_KEYS = ("vhost", "host", "server_name", "http_host")
MAX_TEXT = 8192
"""A field longer than this (a huge path or user agent) is cut, ending with `...`."""


class LineError(ValueError):
    """A line that is not a request record; the message is the reason."""


@dataclass(frozen=True, slots=True)
class Record:
    """One request as a web server logged it."""

    us: int  # request time: microseconds since the Unix epoch (UTC)
    ip: str  # client address (IPv4 or IPv6, as text PostgreSQL's inet reads)
    method: str | None  # null when the request line is not `METHOD target HTTP/x`
    path: str | None
    query: str | None  # after `?`, without it; null when there is no `?`
    protocol: str | None
    status: int
    bytes: int | None  # body bytes sent; null for `-`
    referrer: str | None = None
    user_agent: str | None = None
    user: str | None = None  # the authenticated user (%u), null for `-`
    request: str | None = None  # the request line as logged when it did not split
    request_time: float | None = None  # seconds
    upstream_time: float | None = None  # seconds, summed over upstreams tried
    vhost: str | None = None
    request_id: str | None = None
    trace_id: str | None = None  # 32 lowercase hex digits (W3C trace context)

    @property
    def at(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.us)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _text(raw: bytes, cut: bool = True) -> str:
    """Bytes as text; bytes that are not UTF-8 as visible `\\xNN`, NUL as `\\x00`."""
    text = raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    return _cut(text) if cut else text


def _unescape(raw: bytes, cut: bool = True) -> str:
    """A quoted field with Apache's and nginx's escapes (`\\"`, `\\\\`, `\\xNN`) decoded,
    unless that makes invalid UTF-8 or a NUL (then the escapes stay as written)."""
    if b"\\" not in raw:
        return _text(raw, cut)

    def one(m: re.Match[bytes]) -> bytes:
        e = m.group(1)
        if e[:1] == b"x" and len(e) == 3:
            return bytes([int(e[1:], 16)])
        return {b"n": b"\n", b"t": b"\t", b"r": b"\r"}.get(e, e)

    decoded = _ESCAPE.sub(one, raw)
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return _text(raw, cut)
    if "\x00" in text:
        return _text(raw, cut)
    return _cut(text) if cut else text


def _status(text: str) -> int:
    if not 100 <= int(text) <= 999:
        raise LineError("the status is not between 100 and 999")
    return int(text)


def clean(text: str) -> str:
    """Text PostgreSQL can store: NUL as `\\x00`, lone surrogates (from JSON escapes such as
    `\\ud800`) as `\\udNNN`."""
    text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode()
    return text


def _dash(text: str) -> str | None:
    return None if text in ("", "-") else text


def _ip(text: str) -> str:
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if "%" in candidate:  # an IPv6 zone (fe80::1%eth0) is no client address for inet
        candidate = candidate.split("%")[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        raise LineError("the client address is not an IP address") from None


def clf_time(text: str) -> int:
    """`10/Oct/2000:13:55:36 -0700` (also with a fraction of a second) in microseconds."""
    m = _CLF_TIME.fullmatch(text)
    if not m or m.group(2) not in MONTHS:
        raise LineError("the time is not like 10/Oct/2000:13:55:36 -0700")
    day, mon, year, hh, mm, ss, frac, zone = m.groups()
    try:
        local = datetime(int(year), MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
    except ValueError:
        raise LineError("the time is not a valid date") from None
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    at = local - offset if zone[0] == "+" else local + offset
    micros = int((frac or "0")[:6].ljust(6, "0"))
    return (at - EPOCH) // timedelta(microseconds=1) + micros


def _iso_time(text: str) -> int:
    if not _ISO.fullmatch(text):
        raise LineError("the time is not ISO 8601 with a zone")
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LineError("the time is not a valid date") from None
    return (at - EPOCH) // timedelta(microseconds=1)


def _seconds(text: str | None) -> float | None:
    """`0.123`; nginx's `0.010, 0.002` or `0.010 : 0.002` (several upstreams) summed;
    `-` or anything else: null."""
    if text is None:
        return None
    total = 0.0
    seen = False
    for part in re.split(r"[,:]", text):
        part = part.strip()
        if _NUMBER.fullmatch(part):
            total += float(part)
            seen = True
    return round(total, 6) if seen else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), or of a bare
    32-hex id; null for anything else or the all-zero id."""
    if not traceparent:
        return None
    value = traceparent.strip().lower()
    m = _TRACEPARENT.fullmatch(value)
    trace = m.group(1) if m else (value if _HEX32.fullmatch(value) else None)
    return None if trace is None or trace == "0" * 32 else trace


def split_request(request: str) -> tuple[str | None, str | None, str | None, str | None]:
    """`GET /a?b=1 HTTP/1.1` -> method, path, query, protocol (all null when it does not
    look like a request line, e.g. `-` or the bytes of a TLS handshake)."""
    m = _REQUEST.fullmatch(request) or _REQUEST_09.fullmatch(request)
    if not m:
        return None, None, None, None
    method, target = m.group(1), m.group(2)
    protocol = m.group(3) if m.re is _REQUEST else None
    path, sep, query = target.partition("?")
    return method.upper(), _cut(path), (_cut(query) if sep else None), protocol


def _short(value: str | None, limit: int = 200) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:limit] or None


def parse_clf(line: bytes) -> Record:
    """A `common` or `combined` line (also with a virtual host in front, or fields after)."""
    if len(line) > MAX_LINE:
        raise LineError(f"longer than {MAX_LINE} bytes")
    line = line.rstrip(b"\r\n")
    m = _CLF.fullmatch(line)
    if not m:
        if not line.strip():
            raise LineError("empty line")
        if b"[" not in line or b'"' not in line:
            raise LineError("not a common or combined log line")
        raise LineError("not a common or combined log line (no quoted request and status)")
    vhost = m.group("vhost")
    ip_text = _text(m.group("ip"))
    try:
        ip = _ip(ip_text)
    except LineError:
        if vhost is None:
            raise
        ip = _ip(_text(vhost))  # an optional field matched wrongly: no vhost after all
        vhost = None
    vhost_text = None
    if vhost is not None:
        vhost_text = _text(vhost)
        host, sep, port = vhost_text.rpartition(":")
        if sep and port.isdigit() and host:
            vhost_text = host  # Apache's %v:%p
    request = _unescape(m.group("request"), cut=False)
    method, path, query, protocol = split_request(request)
    size = m.group("bytes")
    user = _dash(_text(m.group("user").strip(b'"')))
    fields: dict[str, Any] = {
        "us": clf_time(m.group("time").decode("ascii", "replace")),
        "ip": ip,
        "method": method,
        "path": path,
        "query": query,
        "protocol": protocol,
        "status": _status(m.group("status").decode()),
        "bytes": None if size == b"-" or int(size) >= 2**63 else int(size),
        "user": user,
        "request": None if method else _dash(_cut(request)),
        "vhost": vhost_text,
    }
    if m.group("referrer") is not None:
        fields["referrer"] = _dash(_unescape(m.group("referrer")))
        fields["user_agent"] = _dash(_unescape(m.group("agent")))
    rest = m.group("rest")
    if rest:
        _tail(rest, fields)
    return Record(**fields)


def _tail(rest: bytes, fields: dict[str, Any]) -> None:
    """Fields appended after the combined format's."""
    for key_b, value_b, quoted, bare in _TAIL.findall(rest):
        if key_b:
            key = key_b.decode("ascii", "replace").lower().replace("-", "_")
            raw = value_b[1:-1] if value_b[:1] == b'"' and len(value_b) >= 2 else value_b
            value = _dash(_unescape(raw))
            if value is None:
                continue
            _known(key, value, fields)
        else:
            token = _unescape(quoted or bare)
            if fields.get("request_id") is None and _HEX32.fullmatch(token):
                fields["request_id"] = token
            elif fields.get("request_time") is None and "." in token and _NUMBER.fullmatch(token):
                fields["request_time"] = float(token)
            elif fields.get("trace_id") is None and (trace := trace_id_of(token)) and "-" in token:
                fields["trace_id"] = trace


def _known(key: str, value: str, fields: dict[str, Any]) -> None:
    if key in REQUEST_TIME_KEYS:
        fields["request_time"] = _seconds(value)
    elif key in UPSTREAM_TIME_KEYS:
        fields["upstream_time"] = _seconds(value)
    elif key in REQUEST_ID_KEYS:
        if fields.get("request_id") is None or key in ("http_x_request_id", "x_request_id"):
            fields["request_id"] = _short(value)
    elif key in TRACEPARENT_KEYS or key in TRACE_ID_KEYS:
        if trace := trace_id_of(value):
            fields["trace_id"] = trace
    elif key in VHOST_KEYS and fields.get("vhost") is None:
        fields["vhost"] = _short(value, 255)


def _str(obj: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str):
            value = clean(value)
            if value not in ("", "-"):
                return _cut(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def parse_json(line: bytes) -> Record:
    """An nginx JSON access log line (nginx's variable names; see the module doc)."""
    if len(line) > MAX_LINE:
        raise LineError(f"longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line.decode("utf-8", "backslashreplace"))
    except (ValueError, RecursionError):
        raise LineError("not valid JSON") from None
    if not isinstance(obj, dict):
        raise LineError("not a JSON object")
    return record_of(obj)


def record_of(obj: dict[str, Any]) -> Record:
    """A request record from an nginx JSON object (already decoded)."""
    ip_text = _str(obj, "remote_addr", "client_ip", "ip", "realip_remote_addr")
    if ip_text is None:
        raise LineError("no remote_addr")
    ip = _ip(ip_text.split(",")[0])
    iso = _str(obj, "time_iso8601", "@timestamp", "timestamp")
    local = _str(obj, "time_local")
    msec = _str(obj, "msec")
    if iso is not None:
        us = _iso_time(iso)
    elif msec is not None and (m := _MSEC.fullmatch(msec)):
        us = int(m.group(1)) * 1_000_000 + int((m.group(2) or "").ljust(6, "0"))
        if us > 253_402_300_799_999_999:
            raise LineError("msec is after the year 9999")
    elif local is not None:
        us = clf_time(local)
    else:
        raise LineError("no time_iso8601, msec or time_local")
    status_text = _str(obj, "status")
    if status_text is None or not status_text.isdigit() or len(status_text) != 3:
        raise LineError("no 3-digit status")
    status = _status(status_text)
    request = _str(obj, "request")
    method = path = query = protocol = None
    if request is not None:
        method, path, query, protocol = split_request(request)
    if method is None and (given := _str(obj, "request_method")):
        method = given.upper()[:32]
        uri = _str(obj, "request_uri") or _str(obj, "uri")
        if uri is not None:
            path, sep, q = uri.partition("?")
            query = q if sep else _str(obj, "args", "query_string")
        protocol = _str(obj, "server_protocol")
    size_text = _str(obj, "body_bytes_sent", "bytes_sent", "bytes")
    size = int(size_text) if size_text is not None and size_text.isdigit() else None
    request_id = _short(_str(obj, "http_x_request_id", "request_id", "x_request_id"))
    trace_id = trace_id_of(_str(obj, "http_traceparent", "traceparent")) or trace_id_of(
        _str(obj, "trace_id", "http_x_trace_id")
    )
    return Record(
        us=us,
        ip=ip,
        method=method,
        path=path,
        query=query,
        protocol=protocol,
        status=status,
        bytes=size if size is None or size < 2**63 else None,
        referrer=_str(obj, "http_referer", "http_referrer", "referrer"),
        user_agent=_str(obj, "http_user_agent", "user_agent"),
        user=_str(obj, "remote_user"),
        request=None if method else request,
        request_time=_seconds(_str(obj, "request_time")),
        upstream_time=_seconds(_str(obj, "upstream_response_time", "upstream_time")),
        vhost=_short(_str(obj, "host", "server_name", "http_host", "vhost"), 255),
        request_id=request_id,
        trace_id=trace_id,
    )


def parse_line(line: bytes, fmt: str = "auto") -> Record:
    """One line in `fmt` (`auto`: JSON object lines as nginx-json, others as combined)."""
    if fmt == "nginx-json" or (fmt == "auto" and line.lstrip()[:1] == b"{"):
        return parse_json(line)
    if fmt in ("auto", "combined", "common"):
        return parse_clf(line)
    raise LineError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
