"""Fault-injection harness: a TCP proxy in front of a broker, a ledger, a scenario runner.

A scenario replays a known set of messages (valid posts, re-used post ids with other text,
poison messages) at a steady rate into a topic while it breaks things at seeded random
moments: SIGKILL of a consumer (then a restart), consumers joining and leaving the group,
Redis or PostgreSQL stopped and started again, the broker connection cut and restored. It
then waits for the service to catch up and checks the outcome against the ledger.

The broker is a Tansu of its own whose advertised listener is the proxy's port, so every
client (consumers, the replay producer, the checks) goes through the proxy after its first
metadata request; cutting the proxy cuts them all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumer.processes import ConsumerProcess, service_env
from devstack import EmbeddedStack
from devstack import kafka as kafka_admin
from devstack.commands import find_tansu
from devstack.process import ServerProcess, spawn, terminate

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
PARTITIONS = 4  # of the posts topic


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


# ---- the network fault --------------------------------------------------------------------


class TcpProxy:
    """Forwards a local port to an upstream address; `cut()` drops every connection and
    refuses new ones until `restore()`."""

    def __init__(self, upstream_port: int, listen_port: int) -> None:
        self.upstream_port = upstream_port
        self.listen_port = listen_port
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False
        self.cuts = 0

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.listen_port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()
        return self

    @property
    def is_cut(self) -> bool:
        return not self._open.is_set()

    def cut(self) -> None:
        self._open.clear()
        self.cuts += 1
        self._drop_all()

    def restore(self) -> None:
        self._open.set()

    def stop(self) -> None:
        self._closed = True
        self._open.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            _close(sock)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=2)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), name="proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class ProxiedBroker:
    """A memory-only Tansu listening on one port and advertising the proxy's port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.real_port, self.proxy_port = free_ports(2)
        self.proxy = TcpProxy(self.real_port, self.proxy_port)
        self._process: ServerProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.proxy_port}"

    def start(self, timeout: float = 60.0) -> ProxiedBroker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proxy.start()
        argv = [
            str(find_tansu()),
            "broker",
            "--listener-url", f"tcp://{HOST}:{self.real_port}",
            "--advertised-listener-url", f"tcp://{HOST}:{self.proxy_port}",
        ]  # fmt: skip
        self._process = spawn(
            "kafka-faults",
            argv,
            self.workdir / "tansu.log",
            port=self.real_port,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout
        while not kafka_admin.metadata_ready(self.bootstrap):
            if not self._process.is_running() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"faults broker did not start; see {self.workdir}/tansu.log")
            time.sleep(0.2)
        return self

    def create_topics(self, topics: dict[str, int]) -> None:
        kafka_admin.create_topics(self.bootstrap, topics)

    def stop(self) -> None:
        if self._process is not None:
            terminate(self._process, signal.SIGTERM, 10.0)
            self._process = None
        self.proxy.stop()


# ---- the ledger -----------------------------------------------------------------------------

WORDS = (
    "love this", "hate this", "great game", "awful service", "the bus leaves at noon",
    "best day ever", "worst phone", "meeting moved to friday", "so happy", "really sad",
)  # fmt: skip

# kind of poison → the dead-letter reason the service must give it
POISON_REASONS: dict[str, str] = {
    "malformed_json": "malformed_json",
    "wrong_types": "schema_violation",
    "missing_fields": "schema_violation",
    "empty_value": "malformed_json",
    "empty_text": "empty_text",
    "text_too_long": "text_too_long",
    "one_megabyte": "too_large",
    "binary_value": "invalid_utf8",
    "binary_text": "schema_violation",  # NUL and control characters inside a JSON string
    "nul_metadata": "schema_violation",  # jsonb cannot hold U+0000 either
    "invalid_utf8": "invalid_utf8",
}
ONE_MEGABYTE_TEXT = 1_000_000  # the whole message stays under the producer's 1 MiB default


@dataclass(frozen=True)
class Entry:
    kind: str  # "post", "repeat" (a post id published before, other text) or a poison kind
    post_id: str | None = None

    @property
    def poison(self) -> bool:
        return self.kind in POISON_REASONS


@dataclass
class Ledger:
    """What the replay publishes, in order, and what each distinct value is."""

    messages: list[tuple[bytes, bytes]]  # (key, value)
    entries: dict[bytes, Entry]

    @property
    def posts(self) -> int:
        return len({e.post_id for e in self.entries.values() if not e.poison})

    @property
    def poison(self) -> int:
        return sum(1 for _, value in self.messages if self.entries[value].poison)


def post_value(post_id: str, text: object, **fields: object) -> bytes:
    return json.dumps({"post_id": post_id, "text": text, **fields}).encode()


def poison_value(kind: str, serial: str, rng: random.Random) -> bytes:
    if kind == "malformed_json":
        return b'{"post_id": "mj-' + serial.encode() + b'", "text": "cut off'
    if kind == "wrong_types":
        return json.dumps({"post_id": f"wt-{serial}", "text": 12345, "lang": 7}).encode()
    if kind == "missing_fields":
        return json.dumps({"text": f"no id here {serial}"}).encode()
    if kind == "empty_value":
        return b""
    if kind == "empty_text":
        return post_value(f"et-{serial}", "   ")
    if kind == "text_too_long":
        return post_value(f"tl-{serial}", "long " * 1200)
    if kind == "one_megabyte":
        return post_value(f"mb-{serial}", "x" * ONE_MEGABYTE_TEXT)
    if kind == "binary_value":
        return b"\xff\xfe" + serial.encode() + rng.randbytes(256)
    if kind == "binary_text":
        return post_value(f"bt-{serial}", f"\x00\x01\x02 binary \x7f\x1b {serial}")
    if kind == "nul_metadata":
        return post_value(f"nm-{serial}", f"fine text {serial}", metadata={"k": "a\x00b"})
    if kind == "invalid_utf8":
        return b'{"post_id": "u8-' + serial.encode() + b'", "text": "caf\xe9 \xc3\x28"}'
    raise ValueError(kind)


def build_ledger(
    rng: random.Random, marker: str, posts: int, repeats: int, poison_rounds: int
) -> Ledger:
    """`posts` distinct ids keyed by post id, `repeats` of them published again later with
    other text, and `poison_rounds` of every poison kind, shuffled into the stream."""
    entries: dict[bytes, Entry] = {}
    stream: list[tuple[bytes, bytes]] = []
    for i in range(posts):
        post_id = f"{marker}-{i}"
        # Texts repeat every 400 posts, so the cache has hits as well as misses.
        value = post_value(post_id, f"{WORDS[i % len(WORDS)]} {i % 400} {marker}")
        entries[value] = Entry("post", post_id)
        stream.append((post_id.encode(), value))
    later: list[tuple[int, tuple[bytes, bytes]]] = []
    for i in rng.sample(range(posts), repeats):
        post_id = f"{marker}-{i}"
        value = post_value(post_id, f"second version of {i}, other text {marker}")
        entries[value] = Entry("repeat", post_id)
        # Published after the first version (same key, so same partition, later offset).
        later.append((rng.randint(i + 1, posts), (post_id.encode(), value)))
    for round_ in range(poison_rounds):
        for kind in POISON_REASONS:
            value = poison_value(kind, f"{marker}-{round_}", rng)
            entries[value] = Entry(kind)
            later.append((rng.randint(0, posts), (f"poison-{kind}-{round_}".encode(), value)))
    for position, message in sorted(later, key=lambda item: item[0], reverse=True):
        stream.insert(position, message)
    return Ledger(stream, entries)


# ---- the replay -----------------------------------------------------------------------------


class Replay(threading.Thread):
    """Publishes the ledger at a steady rate; every send is awaited at the end."""

    def __init__(self, bootstrap: str, topic: str, ledger: Ledger, rate: float) -> None:
        super().__init__(name="replay", daemon=True)
        self.bootstrap, self.topic, self.ledger, self.rate = bootstrap, topic, ledger, rate
        self.failed: list[str] = []
        self.error: BaseException | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            self._replay()
        except BaseException as error:  # reported by the runner
            self.error = error
        finally:
            self.finished_at = time.monotonic()

    def _replay(self) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
            delivery_timeout_ms=120_000,
        )
        futures = []
        started = time.monotonic()
        try:
            for n, (key, value) in enumerate(self.ledger.messages):
                due = started + n / self.rate
                if (delay := due - time.monotonic()) > 0:
                    time.sleep(delay)
                futures.append(((key, value), producer.send(self.topic, key=key, value=value)))
            producer.flush(timeout=180)
            retry = []
            for message, future in futures:
                try:
                    future.get(timeout=60)
                except Exception as error:
                    self.failed.append(repr(error))
                    retry.append(message)
            # At least once: whatever failed is sent again (the checks read the topic back).
            for _ in range(3):
                if not retry:
                    break
                again = [(m, producer.send(self.topic, key=m[0], value=m[1])) for m in retry]
                producer.flush(timeout=60)
                retry = []
                for message, future in again:
                    try:
                        future.get(timeout=30)
                    except Exception:
                        retry.append(message)
            if retry:
                raise RuntimeError(f"{len(retry)} messages could not be published")
        finally:
            producer.close(timeout=10)


# ---- the consumers ---------------------------------------------------------------------------


@dataclass
class Fleet:
    """The consumer processes of one scenario: started, killed, restarted, supervised."""

    make: Callable[[str], ConsumerProcess]
    members: dict[str, ConsumerProcess] = field(default_factory=dict)
    generations: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    crashes: list[str] = field(default_factory=list)
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    def start(self, slot: str) -> ConsumerProcess:
        self.generations[slot] += 1
        process = self.make(f"{slot}-{self.generations[slot]}").start()
        self.members[slot] = process
        return process

    def kill(self, slot: str) -> None:
        self.members[slot].kill()
        self.kills += 1

    def wait_stable(self, partitions: int, timeout: float = 60.0) -> None:
        """Until every partition is owned and each member owns some (when there are enough).

        Tansu 0.6 wedges a group for good when a member leaves (LeaveGroup) while a rebalance
        is in progress; plain kafka-python consumers show it too (docs/faults.md). So members
        leave a settled group; joins and SIGKILLs happen at any moment.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            with contextlib.suppress(OSError, KeyError, ValueError):
                owned = [
                    p.metrics()["sentiment_assigned_partitions"] for p in self.members.values()
                ]
                if sum(owned) == partitions and (
                    len(owned) > partitions or all(n > 0 for n in owned)
                ):
                    return
            time.sleep(0.25)
        raise TimeoutError(f"the group did not settle on {partitions} partitions in {timeout}s")

    def leave(self, slot: str) -> None:
        process = self.members.pop(slot)
        self.exit_codes[f"{slot}-{self.generations[slot]}"] = process.stop(timeout=30)

    def supervise(self) -> None:
        """A member that exited on its own is a crash: record it and start it again."""
        for slot, process in list(self.members.items()):
            if not process.running():
                code = process.stop()
                self.crashes.append(f"{slot}-{self.generations[slot]} exited {code}")
                logger.warning("consumer %s crashed (exit %s); restarting", slot, code)
                self.start(slot)

    def wait_ready(self, timeout: float = 90.0) -> None:
        for process in self.members.values():
            process.wait_ready(timeout)

    def stop_all(self) -> None:
        for slot in list(self.members):
            self.leave(slot)

    def kill_all(self) -> None:
        for process in self.members.values():
            process.kill()


# ---- reading back --------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def read_topic(
    bootstrap: str, topic: str, timeout: float = 60.0, quiet: float = 1.5
) -> list[Record]:
    """Every record of the topic, read until the end offsets are reached and nothing more
    arrives for `quiet` seconds: Tansu sometimes reports a partition's end one record short,
    so the end offsets alone would miss its last record."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while (
            any(consumer.position(tp) < ends[tp] for tp in partitions)
            or time.monotonic() - last_new < quiet
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout}s")
            for batch in consumer.poll(timeout_ms=300).values():
                last_new = time.monotonic()
                records.extend(
                    Record(r.partition, r.offset, r.key, r.value, dict(r.headers)) for r in batch
                )
        return records
    finally:
        consumer.close()


class GroupProbe:
    """The group's committed offsets and the broker's reported end offsets."""

    def __init__(self, bootstrap: str, topic: str, group_id: str) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
        )
        self._partitions = [
            TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic))
        ]

    def committed(self) -> dict[int, int]:
        return {tp.partition: self._consumer.committed(tp) or 0 for tp in self._partitions}

    def reported_ends(self) -> dict[int, int]:
        ends = self._consumer.end_offsets(self._partitions)
        return {tp.partition: ends[tp] for tp in self._partitions}

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def query(dsn: str, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with psycopg2.connect(dsn, connect_timeout=3) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    connection.close()
    return rows


# ---- checking -----------------------------------------------------------------------------


@dataclass
class Truth:
    """What the topic really holds, classified by the ledger."""

    winners: dict[str, bytes]  # post id → the value at its lowest offset
    poison: dict[tuple[int, int], str]  # (partition, offset) → expected reason
    foreign: int  # records whose value the ledger does not know
    ends: dict[int, int]  # partition → one past its last record (what the group must commit)

    def lag(self, committed: dict[int, int]) -> int:
        """Records not yet committed; a commit beyond the end counts too (it would skip)."""
        partitions = set(self.ends) | set(committed)
        return sum(abs(self.ends.get(p, 0) - committed.get(p, 0)) for p in partitions)

    @classmethod
    def from_topic(cls, records: list[Record], ledger: Ledger) -> Truth:
        winners: dict[str, tuple[int, bytes]] = {}
        poison: dict[tuple[int, int], str] = {}
        foreign = 0
        ends: dict[int, int] = {}
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            ends[record.partition] = record.offset + 1
            entry = ledger.entries.get(record.value or b"")
            if entry is None:
                foreign += 1
            elif entry.poison:
                poison[(record.partition, record.offset)] = POISON_REASONS[entry.kind]
            else:
                assert entry.post_id is not None
                if entry.post_id not in winners:
                    winners[entry.post_id] = (record.offset, record.value or b"")
        return cls({k: v for k, (_, v) in winners.items()}, poison, foreign, ends)


@dataclass
class Outcome:
    scenario: str
    seed: int
    posts: int = 0
    messages: int = 0
    poison: int = 0
    faults: list[str] = field(default_factory=list)
    kills: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_version: int = 0
    unexpected_rows: int = 0
    dead_lettered: int = 0
    dead_letter_missing: int = 0
    dead_letter_extra: int = 0
    wrong_reason: int = 0
    dlq_topic_missing: int = 0
    dlq_topic_duplicates: int = 0
    crashes: list[str] = field(default_factory=list)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    final_lag: int | None = None
    recovery_s: float | None = None
    elapsed_s: float = 0.0
    foreign: int = 0
    unpublished: int = 0
    publish_retries: int = 0
    broker_end_mismatch: int = 0  # partitions whose reported end offset was wrong
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.wrong_version == 0
            and self.unexpected_rows == 0
            and self.dead_letter_missing == 0
            and self.dead_letter_extra == 0
            and self.wrong_reason == 0
            and self.dlq_topic_missing == 0
            and not self.crashes
            and self.final_lag == 0
            and self.foreign == 0
            and self.unpublished == 0
            and all(code == 0 for code in self.exit_codes.values())
            and not self.notes
        )

    def problems(self) -> list[str]:
        checks = {
            "lost": self.lost,
            "duplicated": self.duplicated,
            "wrong_version": self.wrong_version,
            "unexpected_rows": self.unexpected_rows,
            "dead_letter_missing": self.dead_letter_missing,
            "dead_letter_extra": self.dead_letter_extra,
            "wrong_reason": self.wrong_reason,
            "dlq_topic_missing": self.dlq_topic_missing,
            "foreign": self.foreign,
            "unpublished": self.unpublished,
        }
        found = [f"{name}={value}" for name, value in checks.items() if value]
        if self.crashes:
            found.append(f"crashes={self.crashes}")
        if self.final_lag != 0:
            found.append(f"final_lag={self.final_lag}")
        if bad := {k: v for k, v in self.exit_codes.items() if v != 0}:
            found.append(f"exit_codes={bad}")
        return found + self.notes


def check(outcome: Outcome, truth: Truth, dsn: str, dlq: list[Record], topic: str) -> None:
    """Fill the outcome's counts from the database and the dead-letter topic."""
    rows = query(dsn, "SELECT post_id, text FROM results")
    stored = Counter(post_id for post_id, _ in rows)
    texts = dict(rows)
    expected = {pid: json.loads(value)["text"] for pid, value in truth.winners.items()}
    outcome.posts = len(expected)
    outcome.lost = sum(1 for pid in expected if pid not in stored)
    # The primary keys of both tables make a second row impossible: these two counts check that
    # the keys still hold (a migration that dropped one would show), not the consumers.
    outcome.duplicated = sum(n - 1 for n in stored.values())
    outcome.unexpected_rows = sum(1 for pid in stored if pid not in expected)
    outcome.wrong_version = sum(
        1 for pid, text in expected.items() if pid in texts and texts[pid] != text
    )

    letters = query(
        dsn,
        "SELECT source_topic, source_partition, source_offset, reason, detail FROM dead_letters",
    )
    seen = Counter((p, o) for t, p, o, _, _ in letters if t == topic)
    outcome.dead_lettered = len(letters)
    outcome.dead_letter_missing = sum(1 for pos in truth.poison if pos not in seen)
    outcome.dead_letter_extra = sum(1 for t, p, o, _, _ in letters if (p, o) not in truth.poison)
    outcome.duplicated += sum(n - 1 for n in seen.values())
    outcome.wrong_reason = sum(
        1
        for _, p, o, reason, detail in letters
        if (p, o) in truth.poison and (reason != truth.poison[(p, o)] or not detail)
    )

    copies = Counter(
        (int(r.headers["dlq.source_partition"]), int(r.headers["dlq.source_offset"]))
        for r in dlq
        if r.headers.get("dlq.source_topic") == topic.encode()
    )
    outcome.dlq_topic_missing = sum(1 for pos in truth.poison if pos not in copies)
    outcome.dlq_topic_duplicates = sum(n - 1 for n in copies.values())
    outcome.dead_letter_extra += sum(1 for pos in copies if pos not in truth.poison)


# ---- the table ------------------------------------------------------------------------------

COLUMNS = (
    "scenario", "posts", "bad msgs", "faults", "kills", "lost", "duplicated",
    "dead-lettered", "DLQ topic dups", "crashes", "recovery s", "total s",
)  # fmt: skip


def table_row(o: Outcome) -> list[str]:
    return [
        o.scenario,
        str(o.posts),
        str(o.poison),
        str(len(o.faults)),
        str(o.kills),
        str(o.lost),
        str(o.duplicated),
        f"{o.dead_lettered}/{o.poison}",
        str(o.dlq_topic_duplicates),
        str(len(o.crashes)),
        "-" if o.recovery_s is None else f"{o.recovery_s:.1f}",
        f"{o.elapsed_s:.0f}",
    ]


def format_table(outcomes: list[Outcome], markdown: bool = False) -> str:
    rows = [list(COLUMNS)] + [table_row(o) for o in outcomes]
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


# ---- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A replay of `posts` posts at `rate` per second with faults chosen by `plan`."""

    name: str
    posts: int
    rate: float
    consumers: int
    plan: Callable[[random.Random, float], list[tuple[float, str]]]
    repeats: int = 50
    poison_rounds: int = 2
    needs_stack: bool = False


@dataclass
class Environment:
    """Everything a scenario runs against (built by the test's fixtures)."""

    broker: ProxiedBroker
    stack: EmbeddedStack | None
    redis_url: str
    dsn: str
    bundle_path: Path
    logs: Path
    posts_topic: str
    dead_letter_topic: str
    group_id: str
    consumer_settings: dict[str, object] = field(default_factory=dict)

    def consumer(self, name: str) -> ConsumerProcess:
        settings: dict[str, object] = {
            "posts_topic": self.posts_topic,
            "dead_letter_topic": self.dead_letter_topic,
            "group_id": self.group_id,
            "bundle_path": self.bundle_path,
            "max_poll_interval_ms": 10_000,
            "session_timeout_ms": 6_000,
            "batch_max_size": 64,
            "batch_max_wait_ms": 20,
            "database_retry_max_seconds": 1,
            "cache_retry_after_seconds": 1,
            "log_format": "text",
            **self.consumer_settings,
        }
        env = service_env(self.broker.bootstrap, self.redis_url, self.dsn, **settings)
        return ConsumerProcess(env, free_ports(1)[0], self.logs / f"{name}.log")


def spread(rng: random.Random, count: int, start: float, end: float, gap: float) -> list[float]:
    """`count` random moments in [start, end], at least `gap` apart when they fit."""
    if count == 0:
        return []
    span = max(0.0, end - start - gap * (count - 1))
    points = sorted(rng.uniform(0, span) for _ in range(count))
    return [start + p + i * gap for i, p in enumerate(points)]


class Runner:
    """Runs one scenario in an Environment and returns its Outcome."""

    def __init__(self, scenario: Scenario, env: Environment, seed: int) -> None:
        self.scenario, self.env, self.seed = scenario, env, seed
        self.rng = random.Random(f"{seed}:{scenario.name}")
        self.fleet = Fleet(env.consumer)
        self.outcome = Outcome(scenario.name, seed)
        self._last_heal = 0.0

    def run(self, settle_timeout: float = 180.0) -> Outcome:
        scenario, env, outcome = self.scenario, self.env, self.outcome
        began = time.monotonic()
        marker = "zq" + self.rng.randbytes(5).hex()
        ledger = build_ledger(
            self.rng, marker, scenario.posts, scenario.repeats, scenario.poison_rounds
        )
        outcome.messages, outcome.poison = len(ledger.messages), ledger.poison
        duration = len(ledger.messages) / scenario.rate
        plan = scenario.plan(self.rng, duration)
        for n in range(scenario.consumers):
            self.fleet.start(f"c{n}")
        try:
            self.fleet.wait_ready()
            replay = Replay(env.broker.bootstrap, env.posts_topic, ledger, scenario.rate)
            start = time.monotonic()
            replay.start()
            for at, action in plan:
                while time.monotonic() < start + at:
                    self.fleet.supervise()
                    time.sleep(0.05)
                self._inject(action)
                outcome.faults.append(f"{time.monotonic() - start:.1f}s {action}")
            while replay.is_alive():
                self.fleet.supervise()
                replay.join(0.2)
            if replay.error is not None:
                raise RuntimeError(f"replay failed: {replay.error!r}")
            outcome.publish_retries = len(replay.failed)
            healed = max(self._last_heal, replay.finished_at or 0.0)
            records = read_topic(env.broker.bootstrap, env.posts_topic)
            truth = Truth.from_topic(records, ledger)
            outcome.foreign = truth.foreign
            # Acknowledged by the broker yet absent from the topic would be a broker loss.
            outcome.unpublished = len(set(ledger.entries) - {r.value or b"" for r in records})
            self._settle(truth, healed, settle_timeout)
            time.sleep(1.0)  # anything late (a duplicate, a crash) shows up now
            self.fleet.supervise()
            dlq = read_topic(env.broker.bootstrap, env.dead_letter_topic)
            check(outcome, truth, env.dsn, dlq, env.posts_topic)
            for process in self.fleet.members.values():
                try:  # a busy machine can be slow to answer: allow some seconds
                    process.wait_ready(timeout=15)
                except (TimeoutError, RuntimeError) as error:
                    outcome.notes.append(f"{process.log_path.name} not ready at the end: {error}")
            self.fleet.stop_all()
        finally:
            self.fleet.kill_all()
            outcome.kills = self.fleet.kills
            outcome.crashes = self.fleet.crashes
            outcome.exit_codes = self.fleet.exit_codes
            outcome.elapsed_s = time.monotonic() - began
        return outcome

    def _settle(self, truth: Truth, healed: float, timeout: float) -> None:
        """Wait until every post is stored, every poison recorded and the lag is zero."""
        env, outcome = self.env, self.outcome
        probe = GroupProbe(env.broker.bootstrap, env.posts_topic, env.group_id)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.fleet.supervise()
                with contextlib.suppress(Exception):  # a server may still be coming back
                    stored = query(env.dsn, "SELECT count(*) FROM results")[0][0]
                    letters = query(env.dsn, "SELECT count(*) FROM dead_letters")[0][0]
                    lag = truth.lag(probe.committed())
                    outcome.final_lag = lag
                    if stored >= len(truth.winners) and letters >= len(truth.poison) and lag == 0:
                        outcome.recovery_s = time.monotonic() - healed
                        return
                time.sleep(0.25)
            outcome.notes.append(f"not settled after {timeout:.0f}s")
        finally:
            with contextlib.suppress(Exception):
                reported = probe.reported_ends()
                short = {p: e for p, e in truth.ends.items() if reported.get(p, 0) != e}
                if short:
                    # Not a service fault: recorded so the broker's quirk stays visible.
                    outcome.broker_end_mismatch = len(short)
            probe.close()

    # ---- faults ----

    def _inject(self, action: str) -> None:
        name, _, argument = action.partition(":")
        logger.info("fault: %s", action)
        if name == "kill":
            slot = self.rng.choice(sorted(self.fleet.members))
            self.fleet.kill(slot)
            self.fleet.start(slot)
        elif name == "join":
            self.fleet.start(argument)
        elif name == "leave":
            self.fleet.wait_stable(PARTITIONS)
            self.fleet.leave(argument)
        elif name in ("redis", "postgres"):
            stack = self.env.stack
            assert stack is not None, "this fault needs the embedded stack"
            stack.stop_service(name)  # type: ignore[arg-type]
            self._sleep_supervised(float(argument))
            stack.start_service(name)  # type: ignore[arg-type]
        elif name == "cut":
            self.env.broker.proxy.cut()
            self._sleep_supervised(float(argument))
            self.env.broker.proxy.restore()
        else:
            raise ValueError(f"unknown fault {action!r}")
        self._last_heal = time.monotonic()

    def _sleep_supervised(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.fleet.supervise()
            time.sleep(0.05)


def iter_scenarios(long: bool) -> Iterator[Scenario]:
    """The short suite (CI) or the long one (≥ 20 kills)."""
    k = 4 if long else 1
    posts = 20_000 if long else 3_000
    rate = 400.0 if long else 300.0
    poison = 10 if long else 2  # rounds of every poison kind

    def kills(count: int) -> Callable[[random.Random, float], list[tuple[float, str]]]:
        return lambda rng, d: [(t, "kill") for t in spread(rng, count, 0.1 * d, 0.9 * d, 2.0)]

    def rebalances(rng: random.Random, d: float) -> list[tuple[float, str]]:
        moves = ["join:c1", "join:c2", "leave:c0", "join:c0", "leave:c1"] * k
        moves = moves[: 4 * k]
        names = _balanced(moves)
        return list(zip(spread(rng, len(names), 0.1 * d, 0.9 * d, 3.0), names, strict=True))

    def outage(kind: str, count: int, low: float, high: float) -> Callable[..., list]:  # type: ignore[type-arg]
        def plan(rng: random.Random, d: float) -> list[tuple[float, str]]:
            times = spread(rng, count, 0.1 * d, 0.8 * d, high + 1.0)
            return [(t, f"{kind}:{rng.uniform(low, high):.1f}") for t in times]

        return plan

    yield Scenario("sigkill", posts, rate, 2, kills(24 if long else 3), poison_rounds=poison)
    yield Scenario("rebalance", posts, rate, 1, rebalances, poison_rounds=poison)
    for server in ("redis", "postgres"):
        plan = outage(server, k, 1.0, 4.0)
        yield Scenario(server, posts, rate, 2, plan, poison_rounds=poison, needs_stack=True)
    cuts = outage("cut", k, 1.0, 8.0 if long else 5.0)
    yield Scenario("broker-cut", posts, rate, 2, cuts, poison_rounds=poison)
    if long:
        yield Scenario("mixed", posts, rate, 2, mixed, poison_rounds=poison, needs_stack=True)


def mixed(rng: random.Random, d: float) -> list[tuple[float, str]]:
    """Every kind of fault in one run, in a random order; the extra member leaves last."""
    actions = ["kill"] * 8 + ["redis:2.5", "postgres:2.5", "cut:4.0", "join:c2"]
    rng.shuffle(actions)
    actions.append("leave:c2")
    return list(zip(spread(rng, len(actions), 0.05 * d, 0.9 * d, 3.0), actions, strict=True))


def _balanced(moves: list[str]) -> list[str]:
    """Keep only joins of absent members and leaves of present ones (c0 starts present)."""
    present, kept = {"c0"}, []
    for move in moves:
        verb, _, slot = move.partition(":")
        if verb == "join" and slot not in present:
            present.add(slot)
            kept.append(move)
        elif verb == "leave" and slot in present and len(present) > 1:
            present.discard(slot)
            kept.append(move)
    return kept
