"""The deny and allow lists in SQL (sql/77_blocklist.sql), in both database lanes (``db``):
add, add again, remove, expiry (never enforced nor exported after it, pruned later), the
three export formats, the allow list, and the rule action - a series with an `ip` label
over its threshold blocks that address and the firing message says so, unless it is
allow-listed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.sql import T0

Conn = psycopg.Connection[tuple[object, ...]]
HOUR = timedelta(hours=1)


@pytest.fixture
def blk(db: Conn) -> Conn:
    return db


def one(conn: Conn, query: str, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def add(conn: Conn, network: str, for_: timedelta | None = None, reason: str | None = None,
        at: Any = T0) -> tuple[Any, ...]:  # fmt: skip
    row = conn.execute(
        "select network::text, reason, added_by, added_at, expires_at"
        " from vigil.block_add(%s, %s, %s, 'ops@example.com', %s)",
        (network, for_, reason, at),
    ).fetchone()
    assert row is not None
    return tuple(row)


def refusal(conn: Conn, query: str, *params: object) -> str:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        conn.execute(query, params)
    return str(exc.value.diag.message_primary)


def export(conn: Conn, fmt: str, at: Any = T0) -> str:
    return str(one(conn, "select vigil.block_export(%s, %s)", fmt, at))


def test_add_export_expire_prune_and_remove(blk: Conn) -> None:
    assert add(blk, "203.0.113.7", HOUR, "scanner") == (
        "203.0.113.7/32", "scanner", "ops@example.com", T0, T0 + HOUR,
    )  # fmt: skip
    add(blk, "198.51.100.0/24")  # until removed
    add(blk, "2001:db8::/48", HOUR)
    assert export(blk, "nginx") == (
        "deny 198.51.100.0/24;\ndeny 203.0.113.7;\ndeny 2001:db8::/48;\n"
    )
    assert export(blk, "cidr") == "198.51.100.0/24\n203.0.113.7/32\n2001:db8::/48\n"
    assert export(blk, "ipset") == (
        "create vigil-deny hash:net -exist\nflush vigil-deny\n"
        "add vigil-deny 198.51.100.0/24 -exist\nadd vigil-deny 203.0.113.7 -exist\n"
        "create vigil-deny6 hash:net family inet6 -exist\nflush vigil-deny6\n"
        "add vigil-deny6 2001:db8::/48 -exist\n"
    )
    blocked = "select vigil.is_blocked(%s::inet, %s)"
    assert one(blk, blocked, "203.0.113.7", T0 + timedelta(minutes=59))
    assert one(blk, blocked, "198.51.100.200", T0)
    assert one(blk, blocked, "2001:db8::1", T0)
    assert not one(blk, blocked, "203.0.113.8", T0)
    # Expired: neither enforced nor exported; the permanent entry stays.
    later = T0 + HOUR
    assert not one(blk, blocked, "203.0.113.7", later)
    assert export(blk, "nginx", later) == "deny 198.51.100.0/24;\n"
    assert export(blk, "ipset", later) == (
        "create vigil-deny hash:net -exist\nflush vigil-deny\n"
        "add vigil-deny 198.51.100.0/24 -exist\n"
    )
    # Removal: true for an entry in force, false for none; an expired one goes too.
    assert one(blk, "select vigil.block_remove(%s, %s)", "198.51.100.0/24", later)
    assert not one(blk, "select vigil.block_remove(%s, %s)", "198.51.100.0/24", later)
    assert not one(blk, "select vigil.block_remove(%s, %s)", "203.0.113.7", later)
    assert export(blk, "cidr", later) == ""
    assert one(blk, "select count(*) from vigil.blocked_networks") == 1  # the IPv6 one
    blk.execute("delete from vigil.blocked_networks")
    # The prune job deletes entries that expired more than config.keep ago.
    add(blk, "203.0.113.101", HOUR, at=T0)
    add(blk, "203.0.113.102", timedelta(days=3), at=T0)
    add(blk, "203.0.113.103", at=T0)
    prune = "select vigil.prune_blocked_networks(%s, %s)"
    assert one(blk, prune, T0 + timedelta(days=7), Jsonb({"keep": "7 days"})) == 0
    assert one(blk, prune, T0 + timedelta(days=8), Jsonb({})) == 1
    assert one(blk, prune, T0 + timedelta(days=10), Jsonb({"keep": "1 day"})) == 1
    assert one(blk, "select array_agg(network::text) from vigil.blocked_networks") == [
        "203.0.113.103/32"
    ]
    # Registered: a portable job, or a TimescaleDB job of its wrapper procedure.
    calls = "select array_agg(call) from vigil.jobs where call like 'vigil.prune_blocked%%'"
    assert one(blk, calls) in (
        ["vigil.prune_blocked_networks"],
        ["vigil.prune_blocked_networks_job"],
    )


def test_adding_again_replaces_a_rule_only_extends_and_refusals_say_why(blk: Conn) -> None:
    add(blk, "203.0.113.7", HOUR, "first", T0)
    # An operator replaces the expiry (shorter here) and the reason; the start is kept.
    row = add(blk, "203.0.113.7", timedelta(minutes=10), "second", T0 + timedelta(minutes=5))
    assert row[1:] == ("second", "ops@example.com", T0, T0 + timedelta(minutes=15))
    # Without a duration: until removed.
    assert add(blk, "203.0.113.7", None, "forever")[4] is None
    # A rule never shortens an active block.
    rule = one(blk, "insert into vigil.alert_rules (name, source, match_name, op, threshold)"
                    " values ('r', 'series', 'x', '>', 1) returning id")  # fmt: skip
    blk.execute(
        "select vigil.block_add('203.0.113.7', '1 minute', 'rule', 'rule:r', %s, %s)",
        (T0, rule),
    )
    assert one(blk, "select expires_at from vigil.blocked_networks") is None
    # An expired entry added again is a new block (a new start).
    add(blk, "192.0.2.1", HOUR, at=T0)
    row = add(blk, "192.0.2.1", HOUR, at=T0 + 2 * HOUR)
    assert (row[3], row[4]) == (T0 + 2 * HOUR, T0 + 3 * HOUR)
    # Refused, with the reason.
    query = "select vigil.block_add(%s, %s)"
    assert refusal(blk, query, "nonsense", None) == '"nonsense" is not an IP address or network'
    assert (
        refusal(blk, query, "10.0.0.1/8", None) == '"10.0.0.1/8" has bits set right of its /8 mask'
    )
    assert refusal(blk, query, "0.0.0.0/0", None) == 'the network "0.0.0.0/0" is every address'
    assert refusal(blk, query, "192.0.2.1", timedelta(0)).startswith("a block must last longer")
    assert refusal(blk, "select vigil.block_export('apache')") == 'unknown export format "apache"'


def test_allow_list_is_never_blocked(blk: Conn) -> None:
    assert one(blk, "select vigil.allow_add('192.0.2.0/24', 'office', 'ops')") == 0
    message = refusal(blk, "select vigil.block_add('192.0.2.77')")
    assert message == (
        "192.0.2.77 overlaps the allow list entry 192.0.2.0/24 (office): it is never blocked"
    )
    # A wider network that holds an allowed one is refused too.
    assert "overlaps the allow list" in refusal(blk, "select vigil.block_add('192.0.0.0/16')")
    # Allowing lifts the blocks inside; a wider block holding it is refused.
    add(blk, "198.51.100.7", HOUR, at=T0)
    add(blk, "198.51.100.8", at=T0)
    assert one(blk, "select vigil.allow_add('198.51.100.0/28', null, 'ops', %s)", T0) == 2
    assert export(blk, "cidr") == ""
    add(blk, "203.0.113.0/24", at=T0)
    assert refusal(blk, "select vigil.allow_add('203.0.113.9')") == (
        "203.0.113.9 is inside the blocked network 203.0.113.0/24 (no reason)"
    )
    assert one(blk, "select vigil.allow_remove('192.0.2.0/24')")
    assert not one(blk, "select vigil.allow_remove('192.0.2.0/24')")
    add(blk, "192.0.2.77")  # no longer allowed: blocked


def rule(conn: Conn, name: str, block_for: str | None = "1 hour", label: str = "ip") -> None:
    conn.execute(
        "insert into vigil.alert_rules (name, source, match_name, agg, op, threshold, group_wait,"
        " block_for, block_label) values (%s, 'series', 'http_4xx_by_ip', 'last', '>', 19,"
        " '0', %s::interval, %s)",
        (name, block_for, label),
    )


def point(conn: Conn, value: float, at: Any, **labels: str) -> None:
    conn.execute("select vigil.add_point('http_4xx_by_ip', %s, %s, %s)", (value, at, Jsonb(labels)))


def test_a_firing_rule_blocks_the_address_and_says_so(blk: Conn) -> None:
    rule(blk, "noisy-ip")
    blk.execute("select vigil.allow_add('192.0.2.0/24', 'office')")
    point(blk, 34, T0, ip="203.0.113.7")  # over 19: blocked
    point(blk, 25, T0, ip="192.0.2.10")  # over 19, allow-listed: not blocked
    point(blk, 7, T0, ip="198.51.100.3")  # under: nothing
    point(blk, 40, T0, ip="not-an-ip")
    blk.execute("select vigil.evaluate_rules(%s)", (T0 + timedelta(seconds=1),))
    texts = [str(r[0]) for r in blk.execute("select text from vigil.outbox order by text")]
    assert texts == [
        'Alert: noisy-ip - http_4xx_by_ip{ip="192.0.2.10"} Value: 25\n'
        "Not blocked: 192.0.2.10 is on the allow list (192.0.2.0/24: office).",
        'Alert: noisy-ip - http_4xx_by_ip{ip="203.0.113.7"} Value: 34\n'
        "Blocked 203.0.113.7 for 1h (until 2026-11-22 11:00:01 UTC).",
        'Alert: noisy-ip - http_4xx_by_ip{ip="not-an-ip"} Value: 40\n'
        'Not blocked: ip="not-an-ip" is not an IP address.',
    ]
    row = blk.execute(
        "select network::text, reason, added_by, rule_name, expires_at - added_at"
        " from vigil.blocked_networks"
    ).fetchall()
    assert row == [
        ("203.0.113.7/32", "rule noisy-ip: http_4xx_by_ip = 34", "rule:noisy-ip", "noisy-ip", HOUR)
    ]
    # The instance's message (vigil.alerts) is the same text.
    assert (
        one(blk, "select count(*) from vigil.alert_instances where message like '%%Blocked%%'") == 1
    )


def test_rule_without_the_label_and_rule_without_the_action(blk: Conn) -> None:
    rule(blk, "by-host", label="client")
    rule(blk, "plain", block_for=None)
    point(blk, 30, T0, host="web-1")
    blk.execute("select vigil.evaluate_rules(%s)", (T0 + timedelta(seconds=1),))
    texts = sorted(str(r[0]) for r in blk.execute("select text from vigil.outbox"))
    assert texts == [
        'Alert: by-host - http_4xx_by_ip{host="web-1"} Value: 30\n'
        'Not blocked: the instance has no label "client".',
        'Alert: plain - http_4xx_by_ip{host="web-1"} Value: 30',
    ]
    assert one(blk, "select count(*) from vigil.blocked_networks") == 0
    with pytest.raises(psycopg.errors.CheckViolation):
        blk.execute("update vigil.alert_rules set block_for = '0' where name = 'plain'")
