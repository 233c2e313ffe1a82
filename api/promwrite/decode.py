"""A Prometheus remote_write 1.0 body -> a series Batch (api/series/formats/points.py).
Pure (no I/O), but for a cache of series keys.

The body is a snappy block-format (not framed) protobuf `WriteRequest` (proto/remote.proto).
Each TimeSeries is one series: the `__name__` label is its name, the other labels (those with
a value: Prometheus treats an empty value as an absent label) its labels; each sample is a
point at its millisecond timestamp. Samples that are NaN (Prometheus' stale markers,
0x7ff0000000000002, and any other NaN) or infinite are skipped: Vigil keeps finite values.
Native histograms are skipped and counted; exemplars and metadata are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cramjam
from google.protobuf.message import DecodeError

from api.promwrite.proto.remote_pb2 import WriteRequest
from api.series.formats.points import (
    MAX_FUTURE_US,
    MIN_AT_US,
    Batch,
    PointError,
    check_at,
    check_name,
    labels_key,
    now_us,
)

NAME_LABEL = "__name__"


class BodyError(ValueError):
    """The body as a whole cannot be read; retrying it cannot help (a 400)."""


@dataclass
class Decoded:
    """What one WriteRequest held: its accepted and rejected samples (batch) and what was
    skipped on purpose."""

    batch: Batch = field(default_factory=Batch)
    series: int = 0
    skipped: int = 0  # NaN (stale markers) and infinite samples
    histograms: int = 0  # native histogram samples (not stored)
    metadata: int = 0  # metric metadata entries (not stored)


def unsnappy(body: bytes, limit: int) -> bytes:
    """A snappy block-format body decompressed, at most `limit` bytes (BodyError otherwise).
    An empty body is an empty message."""
    if not body:
        return b""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
        if size > limit:
            raise BodyError(f"body decompresses to {size} bytes, more than {limit}")
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise BodyError(f"body is not snappy-compressed (block format): {exc}") from None


def _reject(batch: Batch, index: int, name: str | None, samples: int, reason: str) -> None:
    """Rejects the samples of series `index` (the position in the request) for `reason`."""
    what = f"series {index}" + (f" ({name[:80]!r})" if name else "")
    batch.reject(index, f"{what}: {reason}")
    batch.rejected += max(samples, 1) - 1


Labels = tuple[tuple[str, str], ...]


def series_key(labels: Labels) -> tuple[str | None, str, str | None]:
    """(name, canonical label JSON, None) of a series' labels as sent, or (name or None, "",
    why it is refused)."""
    name: str | None = None
    rest: dict[str, str] = {}
    for key, value in labels:
        if key == NAME_LABEL:
            name = value
        elif value:
            rest[key] = value
    try:
        if name is None:
            raise PointError("no __name__ label")
        text = labels_key(rest)
        check_name(name)
    except PointError as exc:
        return name, "", str(exc)
    return name, text, None


# Series keys by labels as sent: a Prometheus sends the same series every scrape, so each is
# checked and made canonical once (about half of the decoding time). Cleared when full:
# KEY_CACHE_SIZE label sets (about 20 node_exporter hosts) take ~17 MB.
_keys: dict[Labels, tuple[str | None, str, str | None]] = {}
KEY_CACHE_SIZE = 20_000


def decode_write_request(data: bytes, now: int | None = None) -> Decoded:
    """The samples of a decompressed WriteRequest; `now` in Unix microseconds bounds the
    timestamps (at most 10 minutes ahead). BodyError when it is not a WriteRequest."""
    request = WriteRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise BodyError(f"body is not a remote_write WriteRequest (protobuf): {exc}") from None
    now = now_us() if now is None else now
    out = Decoded(series=len(request.timeseries), metadata=len(request.metadata))
    batch = out.batch
    keys = batch.keys
    series_of, at_us, values = batch.series, batch.at_us, batch.values
    cache = _keys
    if len(cache) > KEY_CACHE_SIZE:
        cache.clear()
    isfinite = math.isfinite
    low, high = MIN_AT_US, now + MAX_FUTURE_US  # check_at's bounds, inlined
    for index, series in enumerate(request.timeseries):
        samples = series.samples
        if not samples:
            out.histograms += len(series.histograms)  # a native histogram series
            continue
        labels = tuple([(label.name, label.value) for label in series.labels])
        known = cache.get(labels)
        if known is None:
            known = cache[labels] = series_key(labels)
        name, text, refused = known
        if refused is not None or name is None:
            _reject(batch, index, name, len(samples), refused or "no __name__ label")
            continue
        key = (name, text)
        position = keys.get(key)
        if position is None:
            position = keys[key] = len(keys)
        for sample in samples:
            value = sample.value
            if not isfinite(value):
                out.skipped += 1
                continue
            at = sample.timestamp * 1000
            if not low <= at <= high:
                try:
                    check_at(at, now)
                except PointError as exc:
                    _reject(batch, index, name, 1, f"timestamp {sample.timestamp} ms: {exc}")
                    continue
            series_of.append(position)
            at_us.append(at)
            values.append(value)
    return out
