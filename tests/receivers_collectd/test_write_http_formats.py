"""collectd write_http bodies (JSON and PUTVAL lines) to points: names, labels, times, values,
and the rejection of bad value lists with the others kept. Pure: no database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.collectd.formats.write_http import (
    TYPES,
    parse_command,
    parse_json,
    series_name,
    split_fields,
)
from api.series.formats.points import Batch, PointError

NOW = 1_763_805_600_000_000  # 2025-11-22T10:00:00Z in microseconds


def rows(batch: Batch) -> list[tuple[str, str, int, float]]:
    keys = list(batch.keys)
    return [
        (*keys[i], at, value)
        for i, at, value in zip(batch.series, batch.unix_at_us(), batch.values, strict=True)
    ]


def value_list(**over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "values": [1901474177],
        "dstypes": ["derive"],
        "dsnames": ["value"],
        "time": 1763805600.123,
        "interval": 10.0,
        "host": "web-1",
        "plugin": "cpu",
        "plugin_instance": "0",
        "type": "cpu",
        "type_instance": "idle",
    }
    item.update(over)
    return item


HOST = '{"host":"web-1"}'


def test_series_names_follow_the_documented_mapping() -> None:
    assert series_name("cpu", "0", "cpu", "idle", "value") == "cpu_0_cpu_idle"
    assert series_name("load", "", "load", "", "shortterm") == "load_load_shortterm"
    assert series_name("memory", "", "memory", "used", "value") == "memory_memory_used"
    assert series_name("interface", "eth0", "if_octets", "", "rx") == "interface_eth0_if_octets_rx"
    with pytest.raises(PointError, match="name must be 1 to 255"):
        series_name("p" * 300, "", "t", "", "value")


def test_json_value_lists_become_points() -> None:
    body = json.dumps(
        [
            value_list(),
            value_list(
                values=[0.25, 0.3, None],
                dstypes=["gauge"] * 3,
                dsnames=["shortterm", "midterm", "longterm"],
                plugin="load",
                plugin_instance="",
                type="load",
                type_instance="",
                time=1763805601,
            ),
        ]
    ).encode()
    batch = parse_json(body, NOW)
    assert rows(batch) == [
        ("cpu_0_cpu_idle", HOST, 1763805600123000, 1901474177.0),
        ("load_load_shortterm", HOST, 1763805601000000, 0.25),
        ("load_load_midterm", HOST, 1763805601000000, 0.3),
    ]  # null (unknown) skipped; a derive stored as sent
    assert (batch.accepted, batch.rejected) == (3, 0)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("text", "Expected `object`, got `str`"),
        (value_list(values=[]), '"values" must hold 1 to 64 values'),
        (value_list(values=[1, 2]), "must be of the same length"),
        (value_list(dstypes=["gauge", "gauge"]), "must be of the same length"),
        (value_list(values=["1"]), "Expected `float | null`, got `str` - at `$.values[0]`"),
        (value_list(values=[True]), "Expected `float | null`, got `bool`"),
        (value_list(dsnames=[""]), '"dsnames" must be non-empty strings'),
        (value_list(dsnames=None), "Expected `array`, got `null` - at `$.dsnames`"),
        (value_list(time="now"), "Expected `float`, got `str` - at `$.time`"),
        (value_list(time=-5), "before 1970"),
        (value_list(time=4102444800), "more than 10 minutes in the future"),
        (value_list(host=7), "Expected `str`, got `int` - at `$.host`"),
        (value_list(plugin=""), "plugin must not be empty"),
        (value_list(type=""), "type must not be empty"),
        (value_list(type_instance=None), "Expected `str`, got `null`"),
        (value_list(host="a\x00b"), "NUL"),
        (value_list(values=["1e309"]), "Number out of range"),  # sent as the number 1e309
        (
            value_list(values=["9" * 400]),
            "Number out of range - at `$.values[0]`",
        ),  # an integer, unquoted
        (value_list(time="9" * 400), "Number out of range - at `$.time`"),
    ],
)
def test_bad_json_value_lists_are_rejected_the_others_kept(item: Any, reason: str) -> None:
    body = json.dumps([value_list(), item, value_list(type_instance="user")]).encode()
    body = body.replace(b'"1e309"', b"1e309").replace(b'"' + b"9" * 400 + b'"', b"9" * 400)
    batch = parse_json(body, NOW)
    assert [name for name, *_ in rows(batch)] == ["cpu_0_cpu_idle", "cpu_0_cpu_user"]
    assert batch.rejected == 1 and batch.errors[0][0] == 1
    assert reason in batch.errors[0][1], batch.errors


def test_json_body_that_is_not_an_array_is_an_error() -> None:
    for body in (b"{", b'{"values": [1]}', b"\xff"):
        with pytest.raises(PointError, match="not a JSON array of collectd value lists"):
            parse_json(body, NOW)
    assert parse_json(b"  ", NOW).accepted == 0
    assert parse_json(b"[]", NOW).accepted == 0


def test_putval_lines_as_write_http_sends_them() -> None:
    body = (
        b"PUTVAL web-1/load/load interval=1.000 1763805600.220:0.5:0.25:U\r\n"
        b"PUTVAL web-1/cpu-0/cpu-idle interval=1.000 1763805600.220:14086\r\n"
        b'PUTVAL "web 2/df-root/df_complex-used" interval=10 1763805600:1024\r\n'
        b"PUTVAL web-1/interface-eth0/if_octets 1763805600:10:20 1763805601:11:21\r\n"
        b"PUTVAL web-1/exec-x/mytype N:1:2\r\n"
        b"PUTVAL web-1/memory/memory-free N:nan\r\n"
        b"\r\n"
    )
    batch = parse_command(body, NOW)
    web2 = '{"host":"web 2"}'
    assert rows(batch) == [
        ("load_load_shortterm", HOST, 1763805600220000, 0.5),
        ("load_load_midterm", HOST, 1763805600220000, 0.25),
        ("cpu_0_cpu_idle", HOST, 1763805600220000, 14086.0),
        ("df_root_df_complex_used", web2, 1763805600000000, 1024.0),
        ("interface_eth0_if_octets_rx", HOST, 1763805600000000, 10.0),
        ("interface_eth0_if_octets_tx", HOST, 1763805600000000, 20.0),
        ("interface_eth0_if_octets_rx", HOST, 1763805601000000, 11.0),
        ("interface_eth0_if_octets_tx", HOST, 1763805601000000, 21.0),
        ("exec_x_mytype_0", HOST, NOW, 1.0),  # a type not in types.db: values 0, 1, ...
        ("exec_x_mytype_1", HOST, NOW, 2.0),
    ]
    assert batch.rejected == 0


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("PUTVALX web-1/cpu/cpu N:1", "unknown command"),
        ("GETVAL web-1/cpu/cpu", "only PUTVAL"),
        ("PUTVAL web-1/cpu/cpu", "needs an identifier and at least one"),
        ("PUTVAL web-1/cpu/cpu interval=10 x=1", "at least one time:value"),
        ("PUTVAL web-1-cpu-idle N:1", "is not host/plugin[-instance]/type[-instance]"),
        ("PUTVAL web-1//cpu N:1", "plugin must not be empty"),
        ("PUTVAL web-1/cpu/ N:1", "type must not be empty"),
        ("PUTVAL web-1/cpu/cpu N", "is not time:value"),
        ("PUTVAL web-1/cpu/cpu N:x", "value 'x' is not a number"),
        ("PUTVAL web-1/cpu/cpu U:1", "must be N (now) or seconds"),
        ("PUTVAL web-1/cpu/cpu inf:1", "finite number of seconds"),
        ("PUTVAL web-1/cpu/cpu 4102444800:1", "more than 10 minutes in the future"),
        ("PUTVAL web-1/cpu/cpu N:inf", "finite"),
        ("PUTVAL web-1/load/load N:1:2", "type 'load' has 3 values, not 2"),
        ('PUTVAL "web-1/cpu/cpu N:1', "unterminated quoted field"),
    ],
)
def test_bad_putval_lines_are_rejected_the_others_kept(line: str, reason: str) -> None:
    body = f"PUTVAL h/cpu-0/cpu-idle N:1\n{line}\nPUTVAL h/cpu-0/cpu-user N:2\n".encode()
    batch = parse_command(body, NOW)
    assert [value for *_, value in rows(batch)] == [1.0, 2.0]
    assert batch.rejected == 1
    index, message = batch.errors[0]
    assert index == 1 and message.startswith("line 2: ") and reason in message, message


def test_putval_body_that_is_not_utf8_is_an_error() -> None:
    with pytest.raises(PointError, match="not UTF-8"):
        parse_command(b"PUTVAL h/cpu/cpu N:1 \xff\n", NOW)


def test_quoted_fields_unescape_like_collectd() -> None:
    assert split_fields(r'PUTVAL "a \"b\"/c d/e" N:1') == ["PUTVAL", 'a "b"/c d/e', "N:1"]
    assert split_fields("  PUTVAL\tx  y ") == ["PUTVAL", "x", "y"]


def test_types_match_collectds_types_db() -> None:
    """The built-in data source names are those of the installed collectd's types.db (the
    Debian package collectd-core, which make test installs): every type not in TYPES has the
    single data source `value`."""
    types_db = Path("/usr/share/collectd/types.db")
    assert types_db.exists(), "install collectd-core: scripts/ensure-system-deps test"
    named: dict[str, tuple[str, ...]] = {}
    for line in types_db.read_text().splitlines():
        fields = line.replace(",", " ").split()  # data sources: blank- or comma-separated
        if fields and not fields[0].startswith("#"):
            named[fields[0]] = tuple(spec.split(":")[0] for spec in fields[1:])
    assert {t: ds for t, ds in named.items() if ds != ("value",)} == TYPES
