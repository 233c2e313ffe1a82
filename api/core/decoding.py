"""What decoding a client's body may raise, in one place: every parser treats these as
"malformed" (a 400 with a reason, or one rejected item of a batch), never as a crash."""

from __future__ import annotations

import msgspec

MALFORMED = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""Malformed JSON (msgspec's ValidationError included), a string that is not UTF-8, and
nesting deeper than the decoder's recursion limit."""
