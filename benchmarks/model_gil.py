"""The model on one thread while another runs Python: one onnxruntime call per chunk, or one
call per batch (the graph's chunk loop, `exporter.graph.add_chunk_loop`).

    python -m benchmarks.model_gil          # about 20 s

Each call into onnxruntime releases the GIL and must take it back when the model is done,
which beside a thread running Python waits up to the switch interval. The consumer classifies
on a thread of its own beside its loop; with a call per chunk of 16, a 256-post batch took the
GIL back 16 times. This times 256-post batches of real tweets (sorted by length, chunks of
16, the consumer's switch interval), alone and beside a busy thread, both ways.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.e2e import DATA_DIR, load_tweets
from benchmarks.regex_gil import busy_python
from common.cli import documented_parser
from consumer.app import GIL_SWITCH_INTERVAL_S
from inference import DEFAULT_BUNDLE_PATH, ModelBundle
from inference.model import (
    INPUT_CHUNK_ENDS,
    INPUT_IDS,
    INPUT_LENGTHS,
    OUTPUT_LOGITS,
    _session,
    chunk_ends,
)
from textclean import clean_text

BATCH = 256
CHUNK = 16
Feed = dict[str, np.ndarray]


def sorted_batches(bundle: ModelBundle, texts: list[str]) -> list[Feed]:
    """Model inputs for each batch of BATCH texts, rows sorted by length."""
    feeds = []
    for start in range(0, len(texts) - BATCH + 1, BATCH):
        cleaned = [
            clean_text(text, bundle.cleaning).split() for text in texts[start : start + BATCH]
        ]
        ids, lengths = bundle.vocab.encode_padded(cleaned, bundle.max_len, bundle.tail_tokens)
        order = np.argsort(lengths, kind="stable")
        feeds.append({INPUT_IDS: ids[order], INPUT_LENGTHS: lengths[order]})
    return feeds


def posts_per_second(classify: Callable[[Feed], None], feeds: list[Feed], seconds: float) -> int:
    started, batches = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        classify(feeds[batches % len(feeds)])
        batches += 1
    return round(batches * BATCH / (time.perf_counter() - started))


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.model_gil", __doc__)
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_PATH)
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    args = parser.parse_args(argv)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    bundle = ModelBundle.load(args.bundle)
    session = _session(str(bundle.model_file(False)), threads=1)
    feeds = sorted_batches(bundle, load_tweets(args.data, 20 * BATCH))

    def call_per_chunk(feed: Feed) -> None:
        for start in range(0, BATCH, CHUNK):
            lengths = feed[INPUT_LENGTHS][start : start + CHUNK]
            chunk = {
                INPUT_IDS: feed[INPUT_IDS][start : start + CHUNK, : lengths.max()],
                INPUT_LENGTHS: lengths,
                INPUT_CHUNK_ENDS: np.array([len(lengths)]),
            }
            session.run([OUTPUT_LOGITS], chunk)

    def call_per_batch(feed: Feed) -> None:
        session.run([OUTPUT_LOGITS], feed | {INPUT_CHUNK_ENDS: chunk_ends(BATCH, CHUNK)})

    ways = {"a call per chunk": call_per_chunk, "one call per batch": call_per_batch}
    for busy in (False, True):
        stop = threading.Event()
        if busy:
            threading.Thread(target=busy_python, args=(stop,), daemon=True).start()
        for name, classify in ways.items():
            result = {
                "busy_thread": busy,
                "calls": name,
                "posts_per_s": posts_per_second(classify, feeds, args.seconds),
            }
            print(json.dumps(result), flush=True)
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
