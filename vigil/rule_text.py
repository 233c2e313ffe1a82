"""Alert rules in words, for `vigil rules` (vigil/cli/alerting/rules.py) and the rule pages
(api/alerts/pages.py). Each states the firing condition in its own notation (`avg(5m) > 90`
on the command line, `avg 5m > 90` on the pages); what follows it is read from the rule's
columns here, the same way for both."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vigil.durations import format_duration


def condition_tail(
    rule: Mapping[str, Any], number: Callable[[float | None], str], no_data: str = "no data"
) -> str:
    """What follows a rule's firing condition: its recovery condition (`, recover < 80`)
    and, when its source falling silent changes the state (--no-data alert or ok; built-in
    rules are judged where their signal arrives), after how long and to what: `, no data
    5m: alert` (no_data_after, else the window). `number` writes the threshold, `no_data`
    is the phrase before the duration."""
    text = ""
    if rule["recover_op"] is not None:
        text += f", recover {rule['recover_op']} {number(rule['recover_threshold'])}"
    if rule["no_data"] != "keep" and not rule["builtin"]:
        after = format_duration(rule["no_data_after"] or rule["agg_window"])
        text += f", {no_data} {after}: {rule['no_data']}"
    return text
