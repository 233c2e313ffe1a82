"""The journal wire-format parsers as pure functions: the fast path must give exactly what
the general path gives (fields = every member but a string MESSAGE)."""

from __future__ import annotations

import json

import pytest

from api.journal.formats.journald import EntryError, export_entries, parse_json_line

TS = '"__REALTIME_TIMESTAMP":"1700000000000000"'


@pytest.mark.parametrize(
    "raw",
    [
        "{" + TS + ',"MESSAGE":"a \\"q\\" ,\\"MESSAGE\\":x","_HOSTNAME":"h"}',
        '{"MESSAGE":"first",' + TS + "}",
        "{" + TS + ',"MESSAGE":"last"}',
        "{" + TS + ',\n "MESSAGE"\t:\t"blanks" , "X":"y" }',
        "{" + TS + ',"MESSAGE":[104,105,255]}',
        "{" + TS + ',"A":"x\\\\","MESSAGE":"after an escaped backslash"}',
        "{" + TS + ',"X":"\\"MESSAGE","MESSAGE":"key-like text in a value"}',
        "{" + TS + ',"MESSAGE":"one","MESSAGE":"repeated key: the last wins"}',
        "{" + TS + ',"MESSAGE":"nul \\u0000 inside"}',
        "{" + TS + ',"_HOSTNAME":["h1","h2"],"PRIORITY":"3","MESSAGE":"arrays"}',
    ],
)
def test_fields_are_every_member_but_a_string_message(raw: str) -> None:
    entry = parse_json_line(raw.encode())
    obj = json.loads(raw)
    message = obj.get("MESSAGE")
    expected = {k: v for k, v in obj.items() if not (k == "MESSAGE" and isinstance(v, str))}
    if isinstance(message, str):
        assert entry.message == message.replace("\x00", "\\x00")
    expected = json.loads(json.dumps(expected).replace("\\u0000", "\\\\x00"))
    assert json.loads(entry.fields) == expected
    assert entry.at.year == 2023


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("nope", "not valid JSON"),
        ("[1]", "not a JSON object"),
        ('{"MESSAGE":"x"}', "no integer __REALTIME_TIMESTAMP"),
        ('{"__REALTIME_TIMESTAMP":"1.5","MESSAGE":"x"}', "no integer __REALTIME_TIMESTAMP"),
        ('{"__REALTIME_TIMESTAMP":"99999999999999999999"}', "__REALTIME_TIMESTAMP out of range"),
        ('{"__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE":"\\ud800"}', "not valid JSON"),
    ],
)
def test_rejected_lines(raw: str, reason: str) -> None:
    with pytest.raises(EntryError, match=reason):
        parse_json_line(raw.encode())


def test_export_format_text_binary_and_repeated_fields() -> None:
    body = (
        b"__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE\n"
        + (4).to_bytes(8, "little")
        + b"a\nb\xff\n"
        + b"TAG=1\nTAG=2\n\n"
    )
    batch = export_entries(body + body, 1 << 20)
    assert len(batch.entries) == 1
    assert batch.duplicated == 1
    entry = batch.entries[0]
    assert entry.message == "a\nb\\xff"
    assert json.loads(entry.fields) == {
        "__REALTIME_TIMESTAMP": "1700000000000000",
        "MESSAGE": [97, 10, 98, 255],
        "TAG": ["1", "2"],
    }
