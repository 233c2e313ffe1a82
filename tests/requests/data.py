"""The real access log (../shared/data/access/, 5,000 combined lines) or, in a clone without
the shared data, 5,000 generated lines of the same shape from a fixed seed: the same format and
time span, statuses in about the same proportions, paths with numeric ids, dates, UUIDs, hashes
and addresses (for route normalisation), a crawler from 66.249.0.0/16 (with the two 5xx), one
noisy client with NOISY_DENIED 404s (the next has at most 7) and one hostile line (markup and a
bidi control in its path and user agent)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from tests.support.datasets import shared_data_dir

ACCESS_LOG = "access/apache_combined_5k.log"
LINES = 5000
NOISY_IP = "185.53.44.210"  # the generated log's noisy client (the real one: 208.91.156.11)
NOISY_DENIED = 31
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/32.0.1700.77 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:24.0) Gecko/20100101 Firefox/24.0",
    "UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/",
    "Tiny Tiny RSS/1.11 (http://tt-rss.org/)",
)
STATIC = (
    "/",
    "/style2.css",
    "/reset.css",
    "/favicon.ico",
    "/robots.txt",
    "/images/jordan-80.png",
    "/images/web/2009/banner.png",
    "/blog/tags/puppet?flav=rss20",
    "/presentations/x/images/a.png",
    "/projects/xdotool/",
    "/projects/xdotool/xdotool.xhtml",
)
STATIC_WEIGHTS = list(accumulate(1 / (k + 1) for k in range(len(STATIC))))
WORDS = (
    "puppet", "xdotool", "keynav", "fex", "pmbackup", "monorama", "scale", "kibana", "redis",
    "grok", "jquery", "freebsd", "ports", "sorting", "captcha", "ruby", "java", "monolithic",
    "oscon", "dashboard", "search", "tiered", "input", "output", "banner", "sysadmin",
)  # fmt: skip
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return "-".join(_hex(rng, n) for n in (8, 4, 4, 4, 12))


def _path(rng: random.Random) -> str:
    """A path: a common one (a few much more than others), one of many rarer pages, or one
    with ids of some kind (and a query at times). As in the real log, only a few routes have
    more than 60 requests."""
    roll = rng.random()
    if roll < 0.25:
        return rng.choices(STATIC, cum_weights=STATIC_WEIGHTS)[0]
    if roll < 0.9:
        slug, word = rng.choice(WORDS), rng.choice(WORDS)
        return rng.choice(
            (
                f"/presentations/logstash-{slug}/images/{word}.png",
                f"/blog/geekery/{slug}-{word}.html",
                f"/projects/{slug}/{word}",
                f"/blog/tags/{word}",
            )
        )
    kind = rng.randrange(10)
    n = rng.randint(1, 400)
    if kind == 0:
        return f"/orders/{n}"
    if kind == 1:
        return f"/orders/{n}/items/{rng.randint(1, 9)}"
    if kind == 2:
        return f"/blog/{rng.randint(2005, 2014)}/{rng.choice(MONTHS)}/{rng.randint(1, 28)}"
    if kind == 3:
        return f"/files/blogposts/2007{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}/xdo.c"
    if kind == 4:
        return f"/blog/geekery/{n}.html"
    if kind == 5:
        return f"/api/v2/users/{_uuid(rng)}/avatar"
    if kind == 6:
        return f"/git/commit/{_hex(rng, 40)}"
    if kind == 7:
        return f"/assets/app.{_hex(rng, 16)}.js"
    if kind == 8:
        return f"/reports/2015-05-{rng.randint(1, 19):02d}/summary"
    return f"/api/jobs/{n}?request_id={_hex(rng, 32)}"


def generated_access_lines() -> list[bytes]:
    rng = random.Random("vigil access log")
    at = datetime(2015, 5, 17, 10, 5, 3, tzinfo=UTC)
    clients = [".".join(str(rng.randint(1, 223)) for _ in range(4)) for _ in range(700)]
    weights = list(
        accumulate(1 / (k + 1) for k in range(len(clients)))
    )  # a few busy clients, many rare ones
    google = [f"66.249.73.{rng.randint(1, 254)}" for _ in range(6)]
    noisy = set(rng.sample(range(100, LINES - 100), NOISY_DENIED))
    server_errors = set(rng.sample(range(LINES), 2))
    hostile = rng.randrange(LINES)
    lines = []
    for i in range(LINES):
        at += timedelta(seconds=rng.randint(0, 60))
        stamp = f"{at:%d/%b/%Y:%H:%M:%S} +0000"
        if i in noisy:
            lines.append(
                f'{NOISY_IP} - - [{stamp}] "GET /files/logstash/logstash-1.3.2-monolithic.jar '
                f'HTTP/1.1" 404 324 "-" "Chef Client/10.18.2 (ruby-1.9.3-p327; x86_64-linux)"'
            )
            continue
        if i == hostile:
            lines.append(
                f'203.0.113.66 - - [{stamp}] "GET /<svg/onload=alert(1)>/\u202egnp.exe '
                'HTTP/1.1" 400 0 "-" "<b>bold</b>"'
            )
            continue
        bot = i in server_errors or rng.random() < 0.06
        ip = rng.choice(google) if bot else rng.choices(clients, cum_weights=weights)[0]
        agent = GOOGLEBOT if bot else "-" if rng.random() < 0.01 else rng.choice(AGENTS)
        path = "/misc/Title.php.txt" if i in server_errors else _path(rng)
        roll = rng.random()
        status, size = (200, str(rng.randint(100, 200000)))
        if i in server_errors:
            status, size = 500, "-"
        elif roll < 0.06:
            status, size = 304, "-"
        elif roll < 0.085:
            status, size = 301, str(rng.randint(200, 400))
        elif roll < 0.1:
            status, size = 404, str(rng.randint(200, 400))
            if not bot:  # from anyone (no client gets more than a few of these)
                ip = rng.choice(clients)
        elif roll < 0.104:
            status = 206
        method = "HEAD" if rng.random() < 0.004 else "GET"
        referrer = "-" if rng.random() < 0.5 else "http://semicomplete.com/"
        lines.append(
            f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "{referrer}" "{agent}"'
        )
    out = [line.encode() for line in lines]
    assert len(set(out)) == LINES
    return out


def access_lines_are_real() -> bool:
    return (shared_data_dir() / ACCESS_LOG).exists()


def access_lines() -> list[bytes]:
    """The real log's lines when ../shared/data has it, else the generated ones."""
    path = shared_data_dir() / ACCESS_LOG
    if path.exists():
        return path.read_bytes().splitlines()
    return generated_access_lines()
