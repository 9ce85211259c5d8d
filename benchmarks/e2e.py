"""End-to-end benchmark on the embedded stack: produce → consumer(s) → stored row.

    python -m benchmarks.e2e                  # full run (~5 min), JSON + PNG + a Markdown table
    python -m benchmarks.e2e --quick          # smaller volumes, for a smoke check

Scenarios, each on a fresh topic with the results table and Redis emptied first:
- model_only: the same bundle in this process, one onnxruntime thread, on the same tweets in
  batches of the consumers' size (clean + model, and model alone), as the reference for the
  ratios;
- saturation with 1 and 2 consumer processes, each with and without the inference thread: the
  topic is filled first, then drained; sustained rate = middle 80% of rows / the time they
  took to be stored; busy rate = the consumers' rates while all of them had posts left
  (benchmarks/busy.py), which the ratios and the targets use;
- offered load: a producer process at a fixed rate; produce-to-stored latency percentiles;
- cache: 0%, 30% and 90% of posts repeat an earlier text;
- batch sweep: batch size × wait at a fixed offered rate.
Every run records the machine (with how much two busy processes get done compared with one),
the bundle version and the settings.
"""

from __future__ import annotations

import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg2
import redis
from kafka import KafkaProducer

from benchmarks.busy import Batch, busy_rate
from benchmarks.targets import run_targets, saturation_rate, targets_table
from common.cli import documented_parser
from consumer.processes import ConsumerProcess, service_env
from consumer.settings import ConsumerSettings
from devstack import EmbeddedStack, StackConfig
from devstack.config import SERVICES
from inference import DEFAULT_BUNDLE_PATH, ModelBundle, SentimentModel
from producer.sources import read_rows
from textclean import clean_text

DATA_DIR = Path("../shared/data/sentiment140")
RESULTS_DIR = Path(__file__).with_name("results")
PARTITIONS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_stack(prefix: str) -> Iterator[tuple[EmbeddedStack, Path]]:
    """A throw-away embedded stack on free ports, and a work folder beside it."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        config = StackConfig(
            state_dir=workdir / "stack",
            kafka_port=free_port(),
            redis_port=free_port(),
            postgres_port=free_port(),
        )
        stack = EmbeddedStack(config)
        with stack:
            yield stack, workdir


def load_tweets(data_dir: Path, limit: int) -> list[str]:
    texts: list[str] = []
    for path in sorted(data_dir.glob("*.csv*")):
        texts.extend(row.text for row in read_rows(path) if row.text.strip())
        if len(texts) >= limit:
            break
    random.Random(7).shuffle(texts)
    return texts[:limit]


def with_repeats(texts: list[str], count: int, repeat_share: float, seed: int = 1) -> list[str]:
    """`count` texts of which `repeat_share` repeat one of the first 1,000 used."""
    rng = random.Random(seed)
    fresh = iter(texts)
    chosen: list[str] = []
    for _ in range(count):
        if chosen and rng.random() < repeat_share:
            chosen.append(chosen[rng.randrange(min(len(chosen), 1000))])
        else:
            chosen.append(next(fresh))
    return chosen


def posts_file(directory: Path, name: str, texts: list[str]) -> Path:
    path = directory / f"{name}.jsonl"
    with path.open("w") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"post_id": f"{name}-{i}", "text": text[:5000]}) + "\n")
    return path


@dataclass
class Bench:
    stack: EmbeddedStack
    workdir: Path
    bundle: Path
    texts: list[str]
    records: list[dict] = field(default_factory=list)  # type: ignore[type-arg]

    @property
    def endpoints(self):  # type: ignore[no-untyped-def]
        return self.stack.endpoints

    def reset(self, name: str) -> str:
        dsn = self.endpoints.postgres_dsn
        with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute("TRUNCATE results, dead_letters")
        connection.close()
        redis.Redis.from_url(self.endpoints.redis_url).flushdb()
        topic = f"bench-{name}-{int(time.time())}"
        self.stack.create_topics({topic: PARTITIONS})
        return topic

    def preload(self, topic: str, name: str, texts: list[str]) -> float:
        producer = KafkaProducer(
            bootstrap_servers=self.endpoints.kafka_bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
        )
        started = time.perf_counter()
        for i, text in enumerate(texts):
            value = json.dumps({"post_id": f"{name}-{i}", "text": text[:5000]}).encode()
            producer.send(topic, value=value, key=f"{name}-{i}".encode())
        producer.flush()
        producer.close()
        return len(texts) / (time.perf_counter() - started)

    def consumers(self, topic: str, count: int, **settings: object) -> list[ConsumerProcess]:
        env = service_env(
            self.endpoints.kafka_bootstrap,
            self.endpoints.redis_url,
            self.endpoints.postgres_dsn,
            posts_topic=topic,
            dead_letter_topic=f"{topic}-dlq",
            group_id=f"g-{topic}",
            bundle_path=self.bundle,
            session_timeout_ms=6000,
            max_poll_interval_ms=10000,
            log_format="text",
            **settings,
        )
        return [
            ConsumerProcess(env, free_port(), self.workdir / "logs" / f"{topic}-{i}.log")
            for i in range(count)
        ]


def query(dsn: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:  # type: ignore[type-arg]
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params or None)
        rows = cursor.fetchall()
    connection.close()
    return rows


COUNT_STORED = "SELECT count(*) FROM results"


def stored(dsn: str) -> int:
    return query(dsn, COUNT_STORED)[0][0]


def wait_stored(dsn: str, expected: int, timeout: float) -> None:
    # One connection for all the polls: a new one costs milliseconds of CPU (password hashing
    # and a new backend) on the cores the consumers are measured on.
    deadline = time.monotonic() + timeout
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        connection.autocommit = True
        while True:
            cursor.execute(COUNT_STORED)
            (done,) = cursor.fetchone()
            if done >= expected:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done} of {expected} stored after {timeout}s")
            time.sleep(0.25)
    connection.close()


STATS_SQL = """
WITH ordered AS (
    SELECT extract(epoch FROM stored_at) AS stored,
           extract(epoch FROM stored_at - produced_at) AS latency
    FROM results
)
SELECT count(*),
       percentile_disc(0.1) WITHIN GROUP (ORDER BY stored),
       percentile_disc(0.9) WITHIN GROUP (ORDER BY stored),
       min(stored), max(stored),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency)
FROM ordered
"""


def table_stats(dsn: str) -> dict[str, float]:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(STATS_SQL)
        count, t10, t90, first, last, latencies = cursor.fetchone()
        t10, t90, first, last = (float(value) for value in (t10, t90, first, last))
        p50, p95, p99 = (float(value) for value in latencies)
        cursor.execute("SELECT avg(cached::int) FROM results")
        cached_share = cursor.fetchone()[0]
    connection.close()
    sustained = 0.8 * count / (t90 - t10) if t90 > t10 else 0.0
    return {
        "rows": count,
        "sustained_posts_per_s": round(sustained, 1),
        "overall_posts_per_s": round(count / (last - first), 1) if last > first else 0.0,
        "latency_p50_ms": round(p50 * 1000, 1),
        "latency_p95_ms": round(p95 * 1000, 1),
        "latency_p99_ms": round(p99 * 1000, 1),
        "cached_share": round(float(cached_share or 0), 3),
    }


@contextmanager
def rss_sampler(processes: list[ConsumerProcess]) -> Iterator[dict[str, float]]:
    peak = {"peak_rss_mb": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for process in processes:
                try:
                    rss = psutil.Process(process.pid).memory_info().rss / 2**20  # type: ignore[arg-type]
                except (psutil.Error, TypeError):
                    continue
                peak["peak_rss_mb"] = max(peak["peak_rss_mb"], round(rss, 1))
            stop.wait(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def start_all(processes: list[ConsumerProcess]) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.wait_ready(timeout=90)
    # A group join on Tansu takes seconds; wait until every partition has an owner.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        owned = [p.metrics().get("sentiment_assigned_partitions", 0) for p in processes]
        if sum(owned) == PARTITIONS and all(owned):
            return
        time.sleep(0.2)
    raise TimeoutError("partitions were not assigned")


LAG_METRIC = "sentiment_consumer_lag_messages{"


def owned_partitions(process: ConsumerProcess) -> set[int]:
    """The partitions a consumer owns now, from the lag it reports for each."""
    owned = set()
    for sample in process.metrics():
        if sample.startswith(LAG_METRIC):
            labels = dict(pair.split("=", 1) for pair in sample[len(LAG_METRIC) : -1].split(","))
            owned.add(int(labels["partition"]))
    return owned


BATCHES_SQL = """
SELECT extract(epoch FROM stored_at)::float8, count(*)
FROM results WHERE kafka_partition = ANY(%s) GROUP BY 1
"""


def stored_batches(dsn: str, partitions: set[int]) -> list[Batch]:
    """(stored_at, rows) of each transaction that stored posts of these partitions."""
    rows = query(dsn, BATCHES_SQL, (sorted(partitions),))
    return [(float(time), int(count)) for time, count in rows]


def stop_all(processes: list[ConsumerProcess]) -> None:
    for process in processes:
        process.stop()


def run_saturation(
    bench: Bench, name: str, texts: list[str], consumers: int, **settings: object
) -> dict:  # type: ignore[type-arg]
    topic = bench.reset(name)
    produce_rate = bench.preload(topic, name, texts)
    processes = bench.consumers(topic, consumers, **settings)
    with rss_sampler(processes) as peak:
        start_all(processes)
        all_busy_since = time.time()
        cpu_at_start = cpu_seconds(processes)
        services_at_start = service_cpu_seconds(bench.stack)
        # The consumers start on the posts as soon as they own partitions, a moment before
        # start_all() sees it: CPU per post counts only the posts stored after this point.
        measured_posts = max(1, len(texts) - stored(bench.endpoints.postgres_dsn))
        wait_stored(bench.endpoints.postgres_dsn, len(texts), timeout=600)
        cpu_used = cpu_seconds(processes) - cpu_at_start
        services_used = {
            name: seconds - services_at_start.get(name, 0.0)
            for name, seconds in service_cpu_seconds(bench.stack).items()
        }
        owners = [owned_partitions(process) for process in processes]
        stop_all(processes)
    dsn = bench.endpoints.postgres_dsn
    stats = table_stats(dsn)
    busy = busy_rate([stored_batches(dsn, owned) for owned in owners], all_busy_since)
    stats.pop("latency_p50_ms"), stats.pop("latency_p95_ms"), stats.pop("latency_p99_ms")
    return {
        "scenario": name,
        "consumers": consumers,
        "posts": len(texts),
        "preload_posts_per_s": round(produce_rate),
        **settings,
        **stats,
        "busy_posts_per_s": None if busy is None else round(busy, 1),
        "consumer_cpu_us_per_post": round(cpu_used / measured_posts * 1e6, 1),
        **{
            f"{name}_cpu_us_per_post": round(seconds / measured_posts * 1e6, 1)
            for name, seconds in services_used.items()
        },
        **peak,
    }


def cpu_seconds(processes: list[ConsumerProcess]) -> float:
    """User + system CPU time of the consumer processes so far: load-independent cost."""
    times = [psutil.Process(p.pid).cpu_times() for p in processes if p.pid is not None]
    return sum(t.user + t.system for t in times)


def service_cpu_seconds(stack: EmbeddedStack) -> dict[str, float]:
    """CPU time so far of each embedded server, with its live child processes (PostgreSQL's
    backends): what the posts cost the machine besides the consumers."""
    seconds = {}
    for name in SERVICES:
        server = stack.process(name)
        if server is None:
            continue
        try:
            root = psutil.Process(server.pid)
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        total = 0.0
        for member in members:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        seconds[name] = total
    return seconds


def replay_command(bench: Bench, topic: str, path: Path, *options: str) -> list[str]:
    """`python -m producer replay` of a posts file into the bench's broker."""
    return [
        sys.executable, "-m", "producer", "--bootstrap-servers", bench.endpoints.kafka_bootstrap,
        "--topic", topic, "replay", str(path), "--no-progress", *options,
    ]  # fmt: skip


def run_offered(bench: Bench, name: str, texts: list[str], rate: float, **settings: object) -> dict:  # type: ignore[type-arg]
    topic = bench.reset(name)
    path = posts_file(bench.workdir, name, texts)
    processes = bench.consumers(topic, 1, **settings)
    with rss_sampler(processes) as peak:
        start_all(processes)
        producer = subprocess.run(
            replay_command(bench, topic, path, "--rate", str(rate)),
            capture_output=True,
            text=True,
            check=True,
        )
        wait_stored(bench.endpoints.postgres_dsn, len(texts), timeout=300)
        stop_all(processes)
    stats = table_stats(bench.endpoints.postgres_dsn)
    return {
        "scenario": name,
        "consumers": 1,
        "posts": len(texts),
        "offered_posts_per_s": rate,
        "producer": producer.stdout.strip(),
        **settings,
        **stats,
        **peak,
    }


# The reference runs the model in the consumers' batches: in larger batches the length-sorted
# chunks hold less padding, so the model alone is faster (about 14 % at 1,024 than at 256).
SERVICE_BATCH = ConsumerSettings.model_fields["batch_max_size"].default


def model_only(bundle_path: Path, texts: list[str]) -> dict:  # type: ignore[type-arg]
    bundle = ModelBundle.load(bundle_path)
    model = SentimentModel(bundle, threads=1)
    started = time.perf_counter()
    cleaned = [clean_text(text, bundle.cleaning) for text in texts]
    cleaning = time.perf_counter() - started
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(0, len(cleaned), SERVICE_BATCH):
            model.predict_cleaned(cleaned[i : i + SERVICE_BATCH])
        best = min(best, time.perf_counter() - started)
    return {
        "scenario": "model_only",
        "posts": len(texts),
        "batch_size": SERVICE_BATCH,
        "model_posts_per_s": round(len(texts) / best),
        "clean_and_model_posts_per_s": round(len(texts) / (best + cleaning)),
        "clean_us_per_post": round(cleaning / len(texts) * 1e6, 1),
    }


def server_builds(stack: EmbeddedStack) -> dict[str, str]:
    """Which Redis and PostgreSQL served the run: builds differ in CPU per post."""
    info = redis.Redis.from_url(stack.endpoints.redis_url).info()
    (postgres,) = query(stack.endpoints.postgres_dsn, "SHOW server_version")[0]
    return {
        "redis": f"{info['redis_version']} ({info['mem_allocator']}) {info['executable']}",
        "postgres": str(postgres),
    }


def machine(bundle_path: Path, servers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": source_commit(),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "bundle_version": ModelBundle.load(bundle_path).version,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "two_process_speedup": two_process_speedup(),
        "servers": servers,
    }


def source_commit(checkout: Path = Path(__file__).parent) -> str | None:
    """The checkout's commit, with "+changes" if files differ from it; None outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=checkout
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=7", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


_BUSY_LOOP = (
    "import time\ns = time.perf_counter()\n"
    "for i in range(20_000_000): pass\n"
    "print(time.perf_counter() - s)"
)


def two_process_speedup() -> float:
    """How much two CPU-bound processes get done together compared with one alone.

    2.0 on two independent cores. Shared cores (hyper-threads of one core, a busy host) give
    less, and that bounds what two consumer processes can reach.
    """

    def loop_seconds(processes: int) -> float:
        runs = [
            subprocess.Popen([sys.executable, "-c", _BUSY_LOOP], stdout=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        return max(float(run.communicate()[0]) for run in runs)

    return round(statistics.median(2 * loop_seconds(1) / loop_seconds(2) for _ in range(3)), 2)


def markdown(records: list[dict]) -> str:  # type: ignore[type-arg]
    columns = [
        "scenario",
        "consumers",
        "posts",
        "offered_posts_per_s",
        "sustained_posts_per_s",
        "busy_posts_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "cached_share",
        "peak_rss_mb",
        "consumer_cpu_us_per_post",
        "kafka_cpu_us_per_post",
        "postgres_cpu_us_per_post",
        "redis_cpu_us_per_post",
        "batch_max_size",
        "batch_max_wait_ms",
        "model_posts_per_s",
        "ratio_to_model",
    ]
    used = [c for c in columns if any(c in record for record in records)]
    lines = ["| " + " | ".join(used) + " |", "|" + "---|" * len(used)]
    for record in records:
        lines.append("| " + " | ".join(str(record.get(c, "")) for c in used) + " |")
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [r for r in records if r["scenario"].startswith("offered")]
    if not offered:
        return
    rates = [r["offered_posts_per_s"] for r in offered]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(rates, [r["overall_posts_per_s"] for r in offered], "o-", label="stored")
    left.plot(rates, rates, "--", color="grey", label="offered")
    left.set(xlabel="offered posts/s", ylabel="stored posts/s", title="Throughput")
    left.legend()
    for key in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
        right.plot(rates, [r[key] for r in offered], "o-", label=key.split("_")[1])
    right.set(xlabel="offered posts/s", ylabel="ms", title="Produce-to-stored latency")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def build_plan(
    bench: Bench, saturation_posts: int, scale: float
) -> list[tuple[str, Callable[[], dict]]]:  # type: ignore[type-arg]
    """Every scenario, by name, in the order they run."""
    texts = bench.texts
    plan = []
    # With and without the inference thread (off in docker-compose and Kubernetes, where each
    # replica gets a CPU of its own): one and two processes each.
    for consumers in (1, 2):
        name = f"saturation-{consumers}"
        plan += [
            (
                name,
                lambda n=name, c=consumers: run_saturation(bench, n, texts[:saturation_posts], c),
            ),
            (
                f"{name}-no-inference-thread",
                lambda n=f"{name}-no-inference-thread", c=consumers: run_saturation(
                    bench, n, texts[:saturation_posts], c, inference_thread=False
                ),
            ),
        ]
    for rate in (500, 1000, 2000, 4000):
        count = int(rate * 20 * scale)
        plan.append(
            (
                f"offered-{rate}",
                lambda r=rate, n=count: run_offered(bench, f"offered-{r}", texts[:n], r),
            )
        )
    for share in (0.0, 0.3, 0.9):
        name = f"cache-{int(share * 100)}pct"
        plan.append(
            (
                name,
                lambda s=share, n=name: run_saturation(
                    bench, n, with_repeats(texts, saturation_posts // 2, s), 1
                ),
            )
        )
    for size in (32, 256, 1024):
        for wait in (5, 50):
            name = f"sweep-b{size}-w{wait}"
            plan.append(
                (
                    name,
                    lambda b=size, w=wait, n=name: run_offered(
                        bench,
                        n,
                        texts[: int(2000 * 15 * scale)],
                        2000,
                        batch_max_size=b,
                        batch_max_wait_ms=w,
                    ),
                )
            )
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.e2e", __doc__)
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder of tweet CSVs")
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_PATH)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--quick", action="store_true", help="smaller volumes")
    parser.add_argument("--only", nargs="*", help="scenario name prefixes to run")
    parser.add_argument(
        "--posts", type=int, default=60_000, help="posts per saturation run (before --quick)"
    )
    args = parser.parse_args(argv)

    scale = 0.25 if args.quick else 1.0
    saturation_posts = int(args.posts * scale)
    texts = load_tweets(args.data, saturation_posts * 2 + 10_000)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def wanted(name: str) -> bool:
        return not args.only or any(name.startswith(prefix) for prefix in args.only)

    with embedded_stack("bench-") as (stack, workdir):
        bench = Bench(stack, workdir, args.bundle, texts)
        servers = server_builds(stack)
        reference = model_only(args.bundle, texts[:20_000])
        records: list[dict] = [reference]  # type: ignore[type-arg]
        print(json.dumps(reference), flush=True)
        for name, run in build_plan(bench, saturation_posts, scale):
            if not wanted(name):
                continue
            record = run()
            if "sustained_posts_per_s" in record:
                record["ratio_to_model"] = round(
                    saturation_rate(record) / reference["model_posts_per_s"], 2
                )
            records.append(record)
            print(json.dumps(record), flush=True)

    result = {"machine": machine(args.bundle, servers), "records": records}
    json_path = out / f"e2e-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=2))
    plot(records, out / f"e2e-{stamp}.png")
    print(markdown(records))
    if (targets := run_targets(stamp, records)) is not None:
        print("\nBoth saturation targets without the inference thread (README, Performance):")
        print(targets_table([targets]))
    print(f"\nwritten: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
