"""The consumer's own Python per post, counted in CPU instructions rather than seconds.

    python -m benchmarks.instructions            # about 4 minutes; needs valgrind
    python -m benchmarks.instructions --repo /tmp/before   # another checkout's code

Prints one JSON object (date, checkout, commit, instructions per post) and writes it to
benchmarks/results/instructions-<date>.json, beside the e2e runs (`--out` for another folder).

This machine's speed drifts by the hour, so seconds do not compare two versions of a small
change; instruction counts do (runs of one checkout agree within 0.2 %). The work per
batch of 1,024 posts is what the service does between Kafka and the database, without the
network: decode and validate, clean, drop repeated ids and texts, cache keys (for the lookup
and again for the write), the model's input and output (its onnxruntime call replaced by fixed
logits, so that the count is ours), result rows and the COPY data of the rows. Run under
`valgrind --tool=callgrind` for N and 3N posts, counting only the batches (not start-up); the
difference over 2N is the count per post in steady state.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from types import ModuleType
from typing import Any

BATCH = 1024
# Only what runs inside this C function is counted: the child calls the batches through
# `operator.call`, which nothing else here uses. Counting the whole process made the figure
# swing by a fifth between runs of the same code, with the start-up of onnxruntime and the
# spinning of OpenBLAS's threads, which differ from run to run.
_COUNTED_CALL = "_operator_call"


def pipeline(texts: list[str]) -> Callable[[], None]:
    """The per-batch work of the consumer (the checkout on sys.path), minus the network, over
    `texts`: set up here, run by the function returned."""
    import numpy as np

    from consumer import batch as batches
    from consumer import store
    from consumer.app import tune_garbage_collection
    from consumer.batch import (
        Envelope,
        Verdict,
        first_per_post_id,
        next_offsets,
        split_batch,
        unique_texts,
    )
    from consumer.cache import cache_key, encode_prediction
    from inference import DEFAULT_BUNDLE_PATH, ModelBundle, SentimentModel
    from textclean import clean_text

    bundle = ModelBundle.load(DEFAULT_BUNDLE_PATH)
    model = SentimentModel(bundle)
    outputs = int(bundle.model_args["num_outputs"])

    def fixed_logits(_names: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(feed["lengths"])
        return [np.linspace(-2, 2, rows * outputs, dtype=np.float32).reshape(rows, outputs)]

    model._session.run = fixed_logits  # type: ignore[method-assign]
    if hasattr(cache_key, "cache_info"):  # older checkouts: the function remembers its keys
        key_of = partial(cache_key, model.version)
    else:  # as PredictionCache remembers them
        key_of = lru_cache(maxsize=16_384)(partial(cache_key, model.version))
    try:
        from textclean import text_cleaner  # as the service cleans

        clean = text_cleaner(bundle.cleaning)
    except ImportError:  # a checkout from before it
        clean = partial(clean_text, config=bundle.cleaning)
    records = [
        Envelope("posts", i % 4, i, 1_764_700_000_000 + i // 20, f"k{i}".encode(),
                 json.dumps({"post_id": f"p-{i}", "text": text}).encode())
        for i, text in enumerate(texts)
    ]  # fmt: skip
    processed_at = datetime(2026, 12, 2, tzinfo=UTC)

    def run_batches() -> None:
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            accepted, _ = split_batch(batch, clean)
            accepted = first_per_post_id(accepted)
            next_offsets(batch)
            texts_to_classify = unique_texts(accepted)
            list(map(key_of, texts_to_classify))  # the lookup
            predictions = model.predict_cleaned(texts_to_classify)
            list(map(key_of, texts_to_classify))  # the write
            [encode_prediction(prediction) for prediction in predictions]
            verdicts = {
                text: Verdict(prediction, cached=False)
                for text, prediction in zip(texts_to_classify, predictions, strict=True)
            }
            copy_payload(batches, store, accepted, verdicts, model.version, processed_at)

    tune_garbage_collection()  # as the service does after its start-up
    return run_batches


def copy_payload(batch: ModuleType, store: ModuleType, *results: Any) -> str | bytes:
    """The results of a batch as the COPY data the writer makes of them, in this checkout's
    way (binary; in older checkouts text from columns, before that from rows, and `copy_text`
    before `stage_rows`)."""
    if hasattr(store, "encode_results"):
        return store.encode_results(batch.result_columns(*results)).data
    if hasattr(batch, "result_columns"):
        return store.stage_columns(batch.result_columns(*results)).copy_text
    rows = batch.result_rows(*results)
    if hasattr(store, "stage_rows"):
        return store.stage_rows(rows).copy_text
    return store.copy_text(rows)


def instructions(repo: Path, texts_file: Path, posts: int) -> int:
    """Instructions of the batches of `pipeline` over the first `posts` texts."""
    completed = subprocess.run(
        # This file as a script, so that a checkout without it can be measured too.
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         "--collect-atstart=no", f"--toggle-collect={_COUNTED_CALL}", sys.executable,
         __file__, "--child", str(texts_file), str(posts)],
        # A fixed hash seed: string hashes decide dict layouts and collisions, which otherwise
        # moved the count by several per cent from one run of the same code to the next. One
        # OpenBLAS thread: its idle threads spin for a time that differs from run to run.
        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo), "PYTHONHASHSEED": "0",
                       "OPENBLAS_NUM_THREADS": "1"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", completed.stderr)
    if found is None or int(found.group(1)) == 0:  # 0: this Python has no _COUNTED_CALL symbol
        raise RuntimeError(f"no instruction count from valgrind:\n{completed.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    # Not common.cli's parser: this file also runs against other checkouts (--repo), and
    # imports nothing of the repository's at the top.
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="checkout whose code runs")
    parser.add_argument("--posts", type=int, default=BATCH, help="N (the runs take N and 3N)")
    parser.add_argument("--data", type=Path, default=None, help="folder of tweet CSVs")
    parser.add_argument("--out", type=Path, help="folder for the result (benchmarks/results)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        texts = json.loads(Path(args.child[0]).read_text())
        operator.call(pipeline(texts[: int(args.child[1])]))  # counted: see _COUNTED_CALL
        return 0

    from benchmarks.e2e import DATA_DIR, RESULTS_DIR, load_tweets, source_commit

    texts = load_tweets(args.data or DATA_DIR, 3 * args.posts)
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        repo = args.repo.resolve()
        fewer = instructions(repo, texts_file, args.posts)
        more = instructions(repo, texts_file, 3 * args.posts)
    per_post = (more - fewer) / (2 * args.posts)
    now = datetime.now(UTC)
    result = {
        "date": now.isoformat(timespec="seconds"),
        "repo": str(repo),
        "commit": source_commit(repo),
        "instructions_per_post": round(per_post),
    }
    print(json.dumps(result))
    out = args.out or RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / f"instructions-{now:%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
