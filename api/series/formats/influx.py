"""InfluxDB line protocol, as Telegraf and the Influx clients write it (routes: /write,
/api/v2/write in api/series/routes.py). Pure parsing, no I/O.

Series naming: every numeric field becomes the series `<measurement>_<field>` (Telegraf's
and Prometheus' convention, e.g. cpu,host=a usage_idle=99 -> cpu_usage_idle {host: a}); tags
become labels. Integers and floats are stored, booleans as 1/0; string fields are ignored
(Vigil keeps numeric series). A malformed line is rejected as a whole; the others are stored.
"""

from __future__ import annotations

from math import isfinite

from api.series.formats.points import (
    NUL_REFUSED,
    Batch,
    PointError,
    check_at,
    check_value,
    decode_lines_compiled,
    labels_key,
    now_us,
)

# precision -> multiplier/divisor to microseconds
PRECISIONS: dict[str, tuple[int, int]] = {
    "": (1, 1000),
    "n": (1, 1000),
    "ns": (1, 1000),
    "u": (1, 1),
    "us": (1, 1),
    "ms": (1000, 1),
    "s": (1_000_000, 1),
    "m": (60_000_000, 1),
    "h": (3_600_000_000, 1),
}
BOOLS = {
    "t": 1.0, "T": 1.0, "true": 1.0, "True": 1.0, "TRUE": 1.0,
    "f": 0.0, "F": 0.0, "false": 0.0, "False": 0.0, "FALSE": 0.0,
}  # fmt: skip


class LineError(ValueError):
    pass


def _field_value(text: str) -> float | None:
    """Numeric value of a field, None for a string field."""
    if not text:
        raise LineError("field without a value")
    if text[0] == '"':
        return None
    last = text[-1]
    try:
        if last in "iu":
            return float(int(text[:-1]))
        if text in BOOLS:
            return BOOLS[text]
        return float(text)
    except ValueError:
        raise LineError(f"invalid field value {text[:40]!r}") from None


def _scan(line: str, pos: int, stops: str) -> tuple[str, int]:
    """Reads an escaped token from pos up to an unescaped stop character."""
    out: list[str] = []
    n = len(line)
    while pos < n:
        c = line[pos]
        if c == "\\" and pos + 1 < n:
            out.append(line[pos + 1])
            pos += 2
            continue
        if c in stops:
            break
        out.append(c)
        pos += 1
    return "".join(out), pos


def _scan_string(line: str, pos: int) -> int:
    """Skips a double-quoted field value starting at pos; returns the position after it."""
    pos += 1
    n = len(line)
    while pos < n:
        c = line[pos]
        if c == "\\":
            pos += 2
            continue
        if c == '"':
            return pos + 1
        pos += 1
    raise LineError("unterminated string field")


def _parse_slow(line: str) -> tuple[str, dict[str, str], list[tuple[str, str]], str]:
    measurement, pos = _scan(line, 0, ", ")
    tags: dict[str, str] = {}
    while pos < len(line) and line[pos] == ",":
        key, pos = _scan(line, pos + 1, "=")
        if pos >= len(line):
            raise LineError("tag without a value")
        value, pos = _scan(line, pos + 1, ", ")
        tags[key] = value
    if pos >= len(line) or line[pos] != " ":
        raise LineError("missing fields")
    pos += 1
    fields: list[tuple[str, str]] = []
    while True:
        key, pos = _scan(line, pos, "=")
        if pos >= len(line):
            raise LineError("field without a value")
        pos += 1
        if pos < len(line) and line[pos] == '"':
            end = _scan_string(line, pos)
            fields.append((key, line[pos:end]))
            pos = end
        else:
            value, pos = _scan(line, pos, ", ")
            fields.append((key, value))
        if pos < len(line) and line[pos] == ",":
            pos += 1
            continue
        break
    timestamp = line[pos + 1 :].strip() if pos < len(line) else ""
    return measurement, tags, fields, timestamp


def parse_tags(tag_parts: list[str]) -> dict[str, str]:
    """The "key=value" tags of a line without escapes (the last of a repeated key wins)."""
    tags = {}
    for tag in tag_parts:
        key, sep, value = tag.partition("=")
        if not sep or not key or not value:
            raise LineError(f"invalid tag {tag[:40]!r}")
        tags[key] = value
    return tags


def parse_line(line: str) -> tuple[str, dict[str, str], list[tuple[str, str]], str]:
    """(measurement, tags, [(field, raw value)], raw timestamp) of one line."""
    if "\\" in line or '"' in line:
        measurement, tags, fields, timestamp = _parse_slow(line)
    else:
        parts = line.split(" ")
        if len(parts) not in (2, 3):
            raise LineError("expected 'measurement[,tags] fields [timestamp]'")
        head, field_text = parts[0], parts[1]
        timestamp = parts[2] if len(parts) == 3 else ""
        measurement, *tag_parts = head.split(",")
        tags = parse_tags(tag_parts)
        fields = []
        for field in field_text.split(","):
            key, sep, value = field.partition("=")
            if not sep or not key:
                raise LineError(f"invalid field {field[:40]!r}")
            fields.append((key, value))
    if not measurement:
        raise LineError("missing measurement")
    if not fields:
        raise LineError("missing fields")
    return measurement, tags, fields, timestamp


def parse_lines(body: str, precision: str) -> Batch:
    if precision not in PRECISIONS:
        raise PointError(f"precision must be one of ns, us, ms, s, m, h, not {precision!r}")
    mul, div = PRECISIONS[precision]
    batch = Batch()
    now = now_us()
    # Per distinct "measurement,tags" text of simple lines (no escapes, no quotes): the
    # measurement and the label key; per measurement and field: the series name. Each is
    # computed once per request (a dict of tags and json.dumps per line were the largest
    # costs); the fields of a line with a known head are split as parse_line() does.
    heads: dict[str, tuple[str, str]] = {}
    names: dict[tuple[str, str], str] = {}
    series_keys, series, ats, values = batch.keys, batch.series, batch.at_us, batch.values
    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        try:
            simple = "\\" not in line and '"' not in line
            parts = line.split(" ") if simple else []
            known = heads.get(parts[0]) if len(parts) in (2, 3) else None
            if known is not None:
                measurement, labels = known
                fields = []
                for field in parts[1].split(","):
                    key, sep, text = field.partition("=")
                    if not sep or not key:
                        raise LineError(f"invalid field {field[:40]!r}")
                    fields.append((key, text))
                timestamp = parts[2] if len(parts) == 3 else ""
                at = now if not timestamp else check_at(int(timestamp) * mul // div, now)
            else:
                measurement, tags, fields, timestamp = parse_line(line)
                at = now if not timestamp else check_at(int(timestamp) * mul // div, now)
                labels = labels_key(tags)
                if simple:
                    heads[parts[0]] = (measurement, labels)
            numbers: list[tuple[str, float | None]] = []
            for key, text in fields:
                try:
                    # float() parses no text that _field_value reads otherwise (no float
                    # literal ends in i or u, and booleans and strings are not floats).
                    numbers.append((key, float(text)))
                except ValueError:
                    numbers.append((key, _field_value(text)))
            for key, value in numbers:
                if value is not None:
                    name = names.get((measurement, key))
                    if name is None:
                        name = f"{measurement}_{key}"
                        if len(name) > 255:
                            raise LineError("measurement_field is longer than 255 characters")
                        if "\x00" in name:
                            raise LineError(NUL_REFUSED)
                        names[(measurement, key)] = name
                    if not isfinite(value):
                        check_value(value)  # raises
                    # batch.add(name, labels, at, value), inline
                    index = series_keys.get((name, labels))
                    if index is None:
                        index = series_keys[(name, labels)] = len(series_keys)
                    series.append(index)
                    ats.append(at)
                    values.append(value)
        except (LineError, PointError) as exc:
            batch.reject(number, f"line {number}: {exc}")
        except ValueError:
            batch.reject(number, f"line {number}: invalid timestamp")
    return batch


# Tag text as sent -> canonical labels JSON, for the whole process: a pure function of the
# text, so always valid; agents send the same few tag sets in every batch. Bounded.
TAG_KEYS: dict[bytes, str] = {}
TAG_KEYS_MAX = 300_000


def compiled_lines(body: bytes, precision: str) -> Batch | None:
    """The batch of a body whose lines are all valid and in the common form the compiled
    decoder takes (api/series/_fastpoints.c), None otherwise: parse_lines then decides."""
    if precision not in PRECISIONS:
        return None
    decoded = decode_lines_compiled(body, now_us(), *PRECISIONS[precision])
    if decoded is None:
        return None
    raw_keys, rows = decoded
    batch = Batch()
    keys = batch.keys
    labels: dict[bytes, str] = {}
    try:
        for _, text in raw_keys:
            if text not in labels:
                key = TAG_KEYS.get(text)
                if key is None:
                    key = labels_key(parse_tags(text.decode().split(",")) if text else {})
                    if len(TAG_KEYS) >= TAG_KEYS_MAX:
                        TAG_KEYS.clear()
                    TAG_KEYS[text] = key
                labels[text] = key
    except (LineError, PointError):
        return None
    batch.rows = rows
    batch.raw_keys = [keys.setdefault((name, labels[text]), len(keys)) for name, text in raw_keys]
    return batch


def utf8(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise PointError("body is not UTF-8") from None


def parse_body(body: bytes, precision: str) -> Batch:
    """The batch of a line protocol body: compiled when it can be, else parse_lines."""
    batch = compiled_lines(body, precision)
    return batch if batch is not None else parse_lines(utf8(body), precision)
