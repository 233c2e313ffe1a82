"""The real access log (../shared/data/access/, 5,000 combined lines) or, in a clone without
the shared data, 5,000 generated lines of the same shape from a fixed seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tests.support.datasets import shared_data_dir

ACCESS_LOG = "access/apache_combined_5k.log"
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0 "
    "Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/",
)
PATHS = ("/", "/blog/tags/puppet?flav=rss20", "/presentations/x/images/a.png", "/robots.txt")


def access_lines() -> list[bytes]:
    path = shared_data_dir() / ACCESS_LOG
    if path.exists():
        return path.read_bytes().splitlines()
    rng = random.Random(16)
    at = datetime(2015, 5, 17, 10, 5, tzinfo=UTC)
    lines = []
    for _ in range(5000):
        at += timedelta(seconds=rng.randint(0, 60))
        ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        status = rng.choice((200, 200, 200, 304, 404, 500))
        lines.append(
            f'{ip} - - [{at:%d/%b/%Y:%H:%M:%S} +0000] "GET {rng.choice(PATHS)} HTTP/1.1" '
            f'{status} {rng.randint(0, 200000)} "-" "{rng.choice(AGENTS)}"'.encode()
        )
    return lines
