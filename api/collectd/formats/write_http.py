"""collectd's write_http plugin: its `Format "JSON"` and `Format "Command"` (PUTVAL lines).

Pure parsing, no I/O: a body becomes a Batch of points (api/series/formats/points.py) and the
rejected value lists with their positions (from 0: the JSON array's index, or the line's
index; the message gives the line number).

Every value of a value list is one point:

- series name: plugin, plugin instance, type, type instance and data source name, the empty
  ones left out, joined by `_`; the data source name `value` (that of every single-value
  type) is left out too: `cpu/0/cpu/idle/value` is `cpu_0_cpu_idle`, `load//load//shortterm`
  is `load_load_shortterm`, `interface/eth0/if_octets//rx` is `interface_eth0_if_octets_rx`.
- labels: `host` (the value list's host).
- time: the value list's (`N` in a PUTVAL line: now), in microseconds.
- value: as sent, whatever its data source type; counters and derives are not turned into
  rates (collectd does that itself with write_http's `StoreRates true`). Unknown values
  (`null` in JSON, `U` in PUTVAL) are skipped.

PUTVAL lines carry no data source names: they come from collectd's types.db (TYPES); a type
not there names its values `value` (one value) or `0`, `1`, ... (several).
"""

from __future__ import annotations

import math

import msgspec

from api.core.decoding import MALFORMED
from api.series.formats.points import (
    Batch,
    PointError,
    check_at,
    check_name,
    check_value,
    labels_key,
    now_us,
)

TYPES: dict[str, tuple[str, ...]] = {
    "arc_counts": ("demand_data", "demand_metadata", "prefetch_data", "prefetch_metadata"),
    "arc_l2_bytes": ("read", "write"),
    "arc_size": ("current", "target", "minlimit", "maxlimit"),
    "compression": ("uncompressed", "compressed"),
    "df": ("used", "free"),
    "disk_io_time": ("io_time", "weighted_io_time"),
    "disk_latency": ("read", "write"),
    "disk_merged": ("read", "write"),
    "disk_octets": ("read", "write"),
    "disk_ops": ("read", "write"),
    "disk_time": ("read", "write"),
    "dns_octets": ("queries", "responses"),
    "domain_state": ("state", "reason"),
    "duration": ("seconds",),
    "ib_octets": ("rx", "tx"),
    "ib_packets": ("rx", "tx"),
    "if_dropped": ("rx", "tx"),
    "if_errors": ("rx", "tx"),
    "if_octets": ("rx", "tx"),
    "if_packets": ("rx", "tx"),
    "io_octets": ("rx", "tx"),
    "io_ops": ("read", "write"),
    "io_packets": ("rx", "tx"),
    "load": ("shortterm", "midterm", "longterm"),
    "memcached_octets": ("rx", "tx"),
    "mysql_octets": ("rx", "tx"),
    "mysql_qcache": ("hits", "inserts", "not_cached", "lowmem_prunes", "queries_in_cache"),
    "mysql_threads": ("running", "connected", "cached", "created"),
    "node_octets": ("rx", "tx"),
    "ps_count": ("processes", "threads"),
    "ps_cputime": ("user", "syst"),
    "ps_disk_octets": ("read", "write"),
    "ps_disk_ops": ("read", "write"),
    "ps_pagefaults": ("minflt", "majflt"),
    "serial_octets": ("rx", "tx"),
    "smart_attribute": ("current", "worst", "threshold", "pretty"),
    "vf_broadcast": ("vf_value",),
    "vf_bytes": ("vf_rx", "vf_tx"),
    "vf_dropped": ("vf_rx", "vf_tx"),
    "vf_link_info": ("vf_value",),
    "vf_multicast": ("vf_value",),
    "vf_packets": ("vf_rx", "vf_tx"),
    "vmpage_faults": ("minflt", "majflt"),
    "vmpage_io": ("in", "out"),
    "voltage_threshold": ("value", "threshold"),
}
"""The data source names of collectd 5.12's types.db, for the types whose names are not the
single `value` of every other type (a PUTVAL line names none)."""

MAX_VALUES = 64
"""Values per value list (types.db's largest type has 5)."""


class ValueListIn(msgspec.Struct, gc=False):
    """One value list of `Format "JSON"` (`interval` and `meta` are ignored)."""

    values: list[float | None]
    dsnames: list[str]
    time: float
    host: str
    plugin: str
    type: str
    plugin_instance: str = ""
    type_instance: str = ""
    dstypes: list[str] | None = None


_value_lists = msgspec.json.Decoder(list[ValueListIn])
_value_list = msgspec.json.Decoder(ValueListIn)
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def series_name(
    plugin: str, plugin_instance: str, type_: str, type_instance: str, dsname: str
) -> str:
    """The series name of one value (the module's mapping); PointError when it is not valid."""
    parts = [plugin, plugin_instance, type_, type_instance]
    if dsname != "value":
        parts.append(dsname)
    return check_name("_".join(part for part in parts if part))


Identity = tuple[str, str, str, str, str]
"""host, plugin, plugin instance, type, type instance."""


class Points:
    """A Batch being filled from value lists; the checked series names and label texts are
    cached, as a body repeats the same few series."""

    def __init__(self, now: int) -> None:
        self.batch = Batch()
        self.now = now
        self._labels: dict[str, str] = {}
        self._names: dict[tuple[Identity, tuple[str, ...]], tuple[str, list[str]]] = {}

    def add(
        self, identity: Identity, dsnames: tuple[str, ...], values: list[float | None], at_us: int
    ) -> None:
        """Adds the known values of one value list (None: unknown, skipped); all or nothing.
        PointError says what is wrong."""
        cached = self._names.get((identity, dsnames))
        if cached is None:
            cached = self._names[(identity, dsnames)] = self._check(identity, dsnames)
        labels, names = cached
        check_at(at_us, self.now)
        for value in values:
            if value is not None:
                check_value(value)
        add = self.batch.add
        for name, value in zip(names, values, strict=True):
            if value is not None:
                add(name, labels, at_us, value)

    def _check(self, identity: Identity, dsnames: tuple[str, ...]) -> tuple[str, list[str]]:
        host, plugin, plugin_instance, type_, type_instance = identity
        if not plugin:
            raise PointError("plugin must not be empty")
        if not type_:
            raise PointError("type must not be empty")
        if not all(dsnames):
            raise PointError('"dsnames" must be non-empty strings')
        labels = self._labels.get(host)
        if labels is None:
            labels = self._labels[host] = labels_key({"host": host} if host else None)
        names = [series_name(plugin, plugin_instance, type_, type_instance, ds) for ds in dsnames]
        return labels, names


def _epoch_us(seconds: float) -> int:
    if not math.isfinite(seconds):
        raise PointError("time must be a finite number of seconds since 1970")
    return round(seconds * 1_000_000)


def _json_value_list(item: ValueListIn, points: Points) -> None:
    values, dstypes = item.values, item.dstypes
    if not values or len(values) > MAX_VALUES:
        raise PointError(f'"values" must hold 1 to {MAX_VALUES} values')
    if len(item.dsnames) != len(values) or (dstypes is not None and len(dstypes) != len(values)):
        raise PointError('"values", "dstypes" and "dsnames" must be of the same length')
    identity = (item.host, item.plugin, item.plugin_instance, item.type, item.type_instance)
    points.add(identity, tuple(item.dsnames), values, _epoch_us(item.time))


def parse_json(body: bytes, now: int | None = None) -> Batch:
    """`Format "JSON"`: an array of value lists. PointError when the body is not a JSON array
    (nothing can be read); a value list that is not valid is rejected, the others kept."""
    points = Points(now_us() if now is None else now)
    if not body.strip():
        return points.batch
    try:  # the common case: every element is a well-formed value list
        items = _value_lists.decode(body)
    except MALFORMED:
        items = None
    if items is None:  # each element on its own, to say which one is wrong and why
        try:
            raws = _raw_list.decode(body)
        except MALFORMED as exc:
            raise PointError(f"not a JSON array of collectd value lists: {exc}") from None
    for index in range(len(raws) if items is None else len(items)):
        try:
            if items is not None:
                item = items[index]
            else:
                try:
                    item = _value_list.decode(raws[index])
                except MALFORMED as exc:
                    raise PointError(str(exc)) from None  # e.g. "... - at `$.values[0]`"
            _json_value_list(item, points)
        except PointError as exc:
            points.batch.reject(index, str(exc))
    return points.batch


def split_fields(line: str) -> list[str]:
    """A command line's fields: separated by blanks, a field may be double-quoted with
    backslash escapes (as collectd writes an identifier that holds a blank)."""
    fields: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in " \t":
            i += 1
            continue
        if line[i] == '"':
            i += 1
            field: list[str] = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                field.append(line[i])
                i += 1
            if i >= n:
                raise PointError("unterminated quoted field")
            i += 1
            fields.append("".join(field))
        else:
            start = i
            while i < n and line[i] not in " \t":
                i += 1
            fields.append(line[start:i])
    return fields


def parse_identifier(identifier: str) -> Identity:
    """`host/plugin[-instance]/type[-instance]`, split as collectd does."""
    host, sep, rest = identifier.partition("/")
    plugin, sep2, type_ = rest.partition("/")
    if not sep or not sep2:
        raise PointError(f"identifier {identifier!r} is not host/plugin[-instance]/type[-instance]")
    plugin, _, plugin_instance = plugin.partition("-")
    type_, _, type_instance = type_.partition("-")
    return host, plugin, plugin_instance, type_, type_instance


def _number(text: str) -> float | None:
    """A value field: None for unknown (`U`, or `nan` as collectd prints an unknown gauge)."""
    try:
        value = float(text)
    except ValueError:
        if text == "U":
            return None
        raise PointError(f"value {text!r} is not a number (or U: unknown)") from None
    return None if value != value else value  # NaN: unknown


def _dsnames(type_: str, count: int) -> tuple[str, ...]:
    if type_ in TYPES:
        dsnames = TYPES[type_]
        if len(dsnames) != count:
            raise PointError(f"type {type_!r} has {len(dsnames)} values, not {count}")
        return dsnames
    return ("value",) if count == 1 else tuple(str(i) for i in range(count))


def parse_putval(fields: list[str], points: Points) -> None:
    """One PUTVAL command: identifier, options (`interval=N`; others ignored) and value
    fields `time:v1[:v2...]` (time `N` = now)."""
    if len(fields) < 3:
        raise PointError("PUTVAL needs an identifier and at least one time:value field")
    identity = parse_identifier(fields[1])
    stamps = [field for field in fields[2:] if "=" not in field]
    if not stamps:
        raise PointError("PUTVAL needs at least one time:value field")
    for stamp in stamps:
        at_text, _, rest = stamp.partition(":")
        parts = rest.split(":") if rest else []
        if not parts or len(parts) > MAX_VALUES:
            raise PointError(f"{stamp!r} is not time:value[:value...]")
        dsnames = _dsnames(identity[3], len(parts))
        if at_text == "N":
            at_us = points.now
        else:
            seconds = _number(at_text)
            if seconds is None:
                raise PointError(f"time {at_text!r} must be N (now) or seconds since 1970")
            at_us = _epoch_us(seconds)
        points.add(identity, dsnames, [_number(part) for part in parts], at_us)


def parse_command(body: bytes, now: int | None = None) -> Batch:
    """`Format "Command"`: PUTVAL lines. PointError when the body is not UTF-8; a line that is
    not a valid PUTVAL is rejected, the others kept. Blank lines are skipped."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise PointError("the body is not UTF-8 text") from None
    points = Points(now_us() if now is None else now)
    for index, line in enumerate(text.splitlines()):
        try:
            fields = split_fields(line) if '"' in line else line.split()
            if not fields:
                continue
            if fields[0].upper() != "PUTVAL":
                raise PointError(f"unknown command {fields[0][:20]!r}: only PUTVAL is accepted")
            parse_putval(fields, points)
        except PointError as exc:
            points.batch.reject(index, f"line {index + 1}: {exc}")
    return points.batch
