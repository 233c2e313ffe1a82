"""Senders for the failover tests: threads that POST heartbeats (/metric) and batches of
series points (/v1/metrics/batch) as fast as the API answers, and record every outcome.

Every write is unique and can be found again: a heartbeat is the metric
(host "failover", name "hb-S-N"), a batch the POINTS values N*100+j of the series
("failover", {"sender": "S"}), where S is the sender and N its request number.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import psycopg

POINTS = 10
HOST = "failover"
SERIES = "failover"


@dataclass(frozen=True)
class Outcome:
    kind: str  # "heartbeat" | "batch"
    sender: int
    number: int
    sent: float  # time.monotonic()
    answered: float
    status: int | str  # the HTTP status, or the name of the transport error

    @property
    def acknowledged(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300


@dataclass
class Senders:
    base_url: str
    token: str
    threads: int = 6
    outcomes: list[Outcome] = field(default_factory=list)
    bodies: dict[int | str, str] = field(default_factory=dict)
    """One response body per unexpected status, for the assertion messages."""
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Senders:
        for sender in range(self.threads):
            worker = threading.Thread(target=self._send, args=(sender,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=90)

    def _send(self, sender: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        # The API holds a request up to its pool timeout (30 s) while no member takes writes.
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60) as client:
            number = 0
            while not self.stop.is_set():
                number += 1
                kind = "heartbeat" if number % 2 else "batch"
                sent = time.monotonic()
                try:
                    if kind == "heartbeat":
                        report = {
                            "host": HOST,
                            "name": f"hb-{sender}-{number}",
                            "type": "disk",
                            "value": "1",
                        }
                        response = client.post("/metric", json=report)
                    else:
                        at = time.time()  # a time per point: one series holds one per time
                        points = [
                            {
                                "name": SERIES,
                                "value": number * 100 + j,
                                "labels": {"sender": str(sender)},
                                "timestamp": round(at - j / 1000, 6),
                            }
                            for j in range(POINTS)
                        ]
                        response = client.post("/v1/metrics/batch", json=points)
                    status: int | str = response.status_code
                    ok = status != 200 or (
                        response.text == "ok"
                        if kind == "heartbeat"
                        else response.json()["accepted"] == POINTS
                    )
                    if not ok:
                        status = f"200 but {response.text[:200]}"
                    elif status not in (200, 503):
                        self.bodies.setdefault(status, response.text[:300])
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with self._lock:
                    self.outcomes.append(
                        Outcome(kind, sender, number, sent, time.monotonic(), status)
                    )

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def first_ack_after(self, moment: float) -> float | None:
        """When the first request answered 2xx after `moment` was answered."""
        times = [o.answered for o in self.snapshot() if o.acknowledged and o.answered > moment]
        return min(times) if times else None

    def statuses(self) -> Counter[int | str]:
        return Counter(o.status for o in self.snapshot())


def missing_writes(
    conn: psycopg.Connection[tuple[object, ...]], outcomes: list[Outcome]
) -> list[str]:
    """The acknowledged writes that `conn`'s database does not have (should be none), and
    a check that the counts add up."""
    heartbeats = {
        str(name)
        for (name,) in conn.execute("select name from vigil.metrics where host = %s", (HOST,))
    }
    points = {
        (str(sender), float(str(value)))
        for sender, value in conn.execute(
            "select s.labels->>'sender', p.value from vigil.points p "
            "join vigil.series s on s.id = p.series_id where s.name = %s",
            (SERIES,),
        )
    }
    missing = []
    for o in outcomes:
        if not o.acknowledged:
            continue
        if o.kind == "heartbeat":
            if f"hb-{o.sender}-{o.number}" not in heartbeats:
                missing.append(f"heartbeat hb-{o.sender}-{o.number}")
        else:
            lost = [
                j for j in range(POINTS) if (str(o.sender), float(o.number * 100 + j)) not in points
            ]
            if lost:
                missing.append(f"batch {o.sender}-{o.number}: {len(lost)} of {POINTS} points")
    return missing
