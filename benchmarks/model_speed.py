"""Model-only throughput: tweets/s at batch 32 with real tweet lengths, one thread.

Compares onnxruntime fp32, onnxruntime dynamic INT8 and PyTorch eager (the same weights,
rebuilt from the ONNX file). Cleaning and encoding happen before the clock starts.

    python benchmarks/model_speed.py --bundle models/sentiment-bilstm \
        --data ../shared/data/tweeteval/validation.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import ModelBundle
from inference.model import INPUT_CHUNK_ENDS, INPUT_IDS, INPUT_LENGTHS, OUTPUT_LOGITS, _session
from inference.vocab import pad_batch
from textclean import clean_tokens
from training.data import read_examples

logger = logging.getLogger(__name__)

Batch = tuple[np.ndarray, np.ndarray]


def make_batches(
    encoded: list[list[int]], batch_size: int, seed: int, sort_window: int = 0
) -> list[Batch]:
    """Stream-like batches: tweets in random order, each batch padded to its longest tweet.

    sort_window > 0 sorts each window of that many tweets by length first, as
    `SentimentModel.predict_cleaned` does with one poll of the consumer.
    """
    encoded = list(encoded)
    random.Random(seed).shuffle(encoded)
    if sort_window:
        windows = [encoded[i : i + sort_window] for i in range(0, len(encoded), sort_window)]
        encoded = [e for w in windows for e in sorted(w, key=len)]
    usable = len(encoded) - len(encoded) % batch_size
    return [pad_batch(encoded[i : i + batch_size]) for i in range(0, usable, batch_size)]


def ort_runner(path: Path) -> Callable[[Batch], object]:
    session = _session(str(path), threads=1)

    def run(b: Batch) -> object:  # one batch = one chunk
        feed = {INPUT_IDS: b[0], INPUT_LENGTHS: b[1], INPUT_CHUNK_ENDS: np.array([len(b[1])])}
        return session.run([OUTPUT_LOGITS], feed)

    return run


def torch_runner(bundle: ModelBundle) -> Callable[[Batch], object]:
    import onnx
    import torch
    from onnx import numpy_helper

    from training.model import BiLSTMClassifier, ModelArgs

    torch.set_num_threads(1)
    weights = {
        t.name: numpy_helper.to_array(t)
        for t in onnx.load(str(bundle.model_file(False))).graph.initializer
    }
    model = BiLSTMClassifier(ModelArgs(**bundle.model_args)).eval()
    model.load_state_dict(state_from_onnx(weights, model.args.pooling == "attention"))

    def run(b: Batch) -> object:
        with torch.inference_mode():
            return model(torch.from_numpy(b[0]), torch.from_numpy(b[1]))

    return run


def state_from_onnx(w: dict[str, np.ndarray], attention: bool) -> dict[str, object]:
    """Inverse of exporter.graph: ONNX gates (i, o, f, c) back to PyTorch's (i, f, g, o)."""
    import torch

    def gates(x: np.ndarray) -> torch.Tensor:
        i, o, f, c = np.split(x, 4, axis=0)
        return torch.from_numpy(np.concatenate([i, f, c, o], axis=0).copy())

    state = {"embedding.weight": torch.from_numpy(w["embedding"].copy())}
    for direction, name in enumerate(("lstm_fwd", "lstm_bwd")):
        bias_ih, bias_hh = np.split(w["lstm_B"][direction], 2)
        state[f"{name}.weight_ih_l0"] = gates(w["lstm_W"][direction])
        state[f"{name}.weight_hh_l0"] = gates(w["lstm_R"][direction])
        state[f"{name}.bias_ih_l0"] = gates(bias_ih)
        state[f"{name}.bias_hh_l0"] = gates(bias_hh)
    state["head.weight"] = torch.from_numpy(w["head_W"].T.copy())
    state["head.bias"] = torch.from_numpy(w["head_b"].copy())
    if attention:
        state["attention.weight"] = torch.from_numpy(w["att_W"].T.copy())
        state["attention.bias"] = torch.from_numpy(w["att_b"].copy())
    return state


def measure(run: Callable[[Batch], object], batches: list[Batch], repeats: int) -> float:
    """Best of `repeats` passes over all batches, in tweets per second (best-of, as timeit
    does: the cores are shared, and the least disturbed pass is the model's own speed)."""
    for b in batches[:5]:
        run(b)
    best = 0.0
    tweets = sum(len(b[1]) for b in batches)
    for _ in range(repeats):
        started = time.perf_counter()
        for b in batches:
            run(b)
        best = max(best, tweets / (time.perf_counter() - started))
    return best


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("models/sentiment-bilstm"))
    default_data = Path("../shared/data/tweeteval/validation.csv")
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--sort-window",
        type=int,
        default=256,
        help="poll size for the sorted row (the consumer's batch)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch eager row")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    bundle = ModelBundle.load(args.bundle)
    encoded = [
        bundle.encode(clean_tokens(r.text, bundle.cleaning)) for r in read_examples(args.data)
    ]
    modes = {
        "random order": make_batches(encoded, args.batch_size, 0),
        f"length-sorted per {args.sort_window}": make_batches(
            encoded, args.batch_size, 0, args.sort_window
        ),
    }
    runners = {"onnxruntime fp32": ort_runner(bundle.model_file(False))}
    if "model.int8.onnx" in bundle.files:
        runners["onnxruntime int8"] = ort_runner(bundle.model_file(True))
    if not args.no_torch:
        runners["torch eager fp32"] = torch_runner(bundle)
    lengths = np.array([len(e) for e in encoded])
    result = {
        "bundle": bundle.version,
        "data": str(args.data),
        "batch_size": args.batch_size,
        "threads": 1,
        "tweets": len(lengths),
        "mean_tokens": round(float(lengths.mean()), 1),
        "modes": {
            mode: {
                "mean_padded_tokens": round(float(np.mean([b[0].shape[1] for b in batches])), 1),
                "tweets_per_second": {
                    name: round(measure(run, batches, args.repeats))
                    for name, run in runners.items()
                },
            }
            for mode, batches in modes.items()
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
