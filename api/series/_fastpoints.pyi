"""Types of the compiled fast path of the series batch endpoint (api/_fastpoints.c)."""

ROW_SIZE: int

def decode(
    body: bytes, ndjson: bool, now_pg_us: int, low_pg_us: int, high_pg_us: int, /
) -> tuple[list[tuple[str, bytes]], bytearray] | None: ...
def decode_lines(
    body: bytes, now_pg_us: int, multiplier: int, divisor: int, low_pg_us: int, high_pg_us: int, /
) -> tuple[list[tuple[str, bytes]], bytearray] | None: ...
def set_series_ids(rows: bytearray, ids: list[int], /) -> None: ...
