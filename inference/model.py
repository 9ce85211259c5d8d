"""onnxruntime classifier over a verified bundle (no torch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple, TypeAlias

import numpy as np
import onnxruntime as ort

from common.tuples import named_tuples
from inference.bundle import ModelBundle
from inference.decision import NEUTRAL, class_probabilities, decide
from inference.errors import BundleError
from textclean import clean_text

INPUT_IDS = "token_ids"
INPUT_LENGTHS = "lengths"
INPUT_CHUNK_ENDS = "chunk_ends"
OUTPUT_LOGITS = "logits"
# Served probabilities are rounded to this many decimals, the precision the cache keeps
# (`consumer.cache.encode_prediction`): a fresh answer and a cached one are the same numbers.
# Short floats also format in about half the time for the database.
PROBABILITY_DECIMALS = 6
# Entered around the onnxruntime call, which lets the GIL go (see `logits_cleaned`).
AroundRun: TypeAlias = Callable[[], AbstractContextManager[object]]


class Prediction(NamedTuple):
    label: str  # "negative" | "neutral" | "positive"
    positive_probability: float  # two-way P(positive | not neutral), in [0, 1]
    confidence: float  # probability of the chosen label, in [0, 1]


def _session(path: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # Explicit thread counts: the default grabs every core, which fights the consumer's threads.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def length_buckets(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices sorted by length, cut into chunks of at most batch_size."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def chunk_ends(rows: int, chunk_size: int) -> np.ndarray:
    """The graph's `chunk_ends` input: rows [0, e0), [e0, e1), ... of at most chunk_size."""
    return np.minimum(np.arange(1, -(-rows // chunk_size) + 1) * chunk_size, rows)


class SentimentModel:
    def __init__(
        self,
        bundle: ModelBundle,
        *,
        threads: int = 1,
        quantized: bool = False,
        batch_size: int = 16,
    ) -> None:
        # Texts are sorted by length and run in chunks of batch_size, each padded to its
        # longest text, all in one onnxruntime call (the graph's chunk loop). Small chunks pad
        # less; on a 256-post poll of tweets 16 was the fastest of 8 to 128 (one thread;
        # docs/model.md, Speed).
        self.bundle = bundle
        self.version = bundle.version + ("-int8" if quantized else "")
        self.batch_size = batch_size
        model_file = bundle.model_file(quantized)
        self._session = _session(str(model_file), threads)
        if INPUT_CHUNK_ENDS not in {value.name for value in self._session.get_inputs()}:
            raise BundleError(
                f"{model_file} takes no {INPUT_CHUNK_ENDS}: it was exported before chunked "
                f"batches; add them with `python -m exporter --upgrade {bundle.path}`"
            )

    def logits_cleaned(
        self,
        cleaned_texts: Sequence[str],
        around_run: AroundRun = nullcontext,
    ) -> np.ndarray:
        """Raw logits [N, outputs] in input order.

        `around_run()` is entered around the onnxruntime call, which lets the GIL go: a caller
        can have other threads run their Python meanwhile (consumer.gate).
        """
        bundle = self.bundle
        ids, lengths = bundle.vocab.encode_joined(cleaned_texts, bundle.max_len, bundle.tail_tokens)
        # One call for the whole batch, sorted by length and run in chunks inside the graph.
        order = np.argsort(lengths, kind="stable")
        feed = {
            INPUT_IDS: ids[order],
            INPUT_LENGTHS: lengths[order],
            INPUT_CHUNK_ENDS: chunk_ends(len(order), self.batch_size),
        }
        logits = np.empty((len(order), int(bundle.model_args["num_outputs"])), dtype=np.float32)
        with around_run():
            logits[order] = self._session.run([OUTPUT_LOGITS], feed)[0]
        return logits

    def decide_cleaned(
        self,
        cleaned_texts: Sequence[str],
        around_run: AroundRun = nullcontext,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (label ids, positive probability, confidence) arrays, exactly as served."""
        logits = self.logits_cleaned(cleaned_texts, around_run)
        labels, p_pos, confidence = decide(logits, self.bundle.decision)
        # A post with no tokens left carries no sentiment: neutral, whatever <unk> scores.
        empty = np.array([not text.strip() for text in cleaned_texts])
        if empty.any():
            labels = np.where(empty, NEUTRAL, labels)
            neutral_p = class_probabilities(logits, self.bundle.decision)[:, NEUTRAL]
            confidence = np.where(empty, neutral_p, confidence)
        return labels, p_pos, confidence

    def predict_cleaned(
        self,
        cleaned_texts: Sequence[str],
        around_run: AroundRun = nullcontext,
    ) -> list[Prediction]:
        """Predictions for `clean_text` outputs ("" is fine), in input order."""
        if not cleaned_texts:
            return []
        labels, p_pos, confidence = self.decide_cleaned(cleaned_texts, around_run)
        names = map(self.bundle.labels.__getitem__, labels.tolist())
        positive = p_pos.round(PROBABILITY_DECIMALS).tolist()
        sure = confidence.round(PROBABILITY_DECIMALS).tolist()
        return list(named_tuples(Prediction, names, positive, sure))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        cleaning = self.bundle.cleaning
        return self.predict_cleaned([clean_text(text, cleaning) for text in texts])
