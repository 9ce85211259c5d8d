"""Soak: a long replay through two consumers; RSS over time must stay flat, totals exact.

    python -m benchmarks.soak --posts 1000000

A producer process replays tweets (looping, new ids each round) as fast as the consumers take
them; every 5 s the consumers' RSS and the stored count are sampled. At the end every post must
be stored exactly once. Writes a JSON file and a PNG of RSS and stored rows over time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from benchmarks.e2e import (
    DATA_DIR,
    RESULTS_DIR,
    Bench,
    embedded_stack,
    load_tweets,
    machine,
    posts_file,
    query,
    replay_command,
    server_builds,
    start_all,
    stop_all,
)
from common.cli import documented_parser
from inference import DEFAULT_BUNDLE_PATH


def rss_mb(pid: int | None) -> float:
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)  # type: ignore[arg-type]
    except (psutil.Error, TypeError):
        return 0.0


def soak(bench: Bench, posts: int, rate: float | None) -> dict:  # type: ignore[type-arg]
    topic = bench.reset("soak")
    path = posts_file(bench.workdir, "soak", bench.texts)
    consumers = bench.consumers(topic, 2)
    start_all(consumers)
    command = replay_command(bench, topic, path, "--loop", "--limit", str(posts))
    if rate:
        command += ["--rate", str(rate)]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    dsn = bench.endpoints.postgres_dsn
    samples, started = [], time.monotonic()
    while True:
        stored = query(dsn, "SELECT count(*) FROM results")[0][0]
        samples.append(
            {
                "seconds": round(time.monotonic() - started, 1),
                "stored": stored,
                "rss_mb": [rss_mb(c.pid) for c in consumers],
            }
        )
        print(json.dumps(samples[-1]), flush=True)
        if stored >= posts or time.monotonic() - started > 3600:
            break
        time.sleep(5)
    producer.wait(timeout=60)
    stop_all(consumers)
    count, distinct = query(dsn, "SELECT count(*), count(DISTINCT post_id) FROM results")[0]
    rss = [max(s["rss_mb"]) for s in samples if s["stored"] > 0]
    settled = rss[len(rss) // 4 :] or rss
    return {
        "posts": posts,
        "stored": count,
        "distinct": distinct,
        "lost": posts - distinct,
        "duplicated": count - distinct,
        "seconds": samples[-1]["seconds"],
        "posts_per_s": round(count / samples[-1]["seconds"]),
        "rss_mb_first_quarter_end": settled[0],
        "rss_mb_end": settled[-1],
        "rss_mb_peak": max(rss),
        "producer": (producer.stdout.read() if producer.stdout else ""),
        "samples": samples,
    }


def plot(result: dict, path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [s["seconds"] for s in result["samples"]]
    figure, left = plt.subplots(figsize=(8, 4))
    for i in range(len(result["samples"][0]["rss_mb"])):
        left.plot(seconds, [s["rss_mb"][i] for s in result["samples"]], label=f"consumer {i} RSS")
    left.set(xlabel="seconds", ylabel="RSS (MB)", title="Soak: consumer memory over time")
    left.set_ylim(bottom=0)
    right = left.twinx()
    right.plot(seconds, [s["stored"] for s in result["samples"]], "k--", label="stored rows")
    right.set_ylabel("stored rows")
    figure.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.soak", __doc__)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, help="posts/s (default: as fast as possible)")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_PATH)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    texts = load_tweets(args.data, 150_000)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with embedded_stack("soak-") as (stack, workdir):
        result = soak(Bench(stack, workdir, args.bundle, texts), args.posts, args.rate)
        servers = server_builds(stack)
    result["machine"] = machine(args.bundle, servers)
    (args.out / f"soak-{stamp}.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / f"soak-{stamp}.png")
    summary = {k: v for k, v in result.items() if k not in {"samples", "machine"}}
    print(json.dumps(summary, indent=2))
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
