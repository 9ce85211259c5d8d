"""Numerical comparison of onnxruntime against PyTorch on real inputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from exporter.errors import ParityError
from inference.model import (
    INPUT_CHUNK_ENDS,
    INPUT_IDS,
    INPUT_LENGTHS,
    OUTPUT_LOGITS,
    chunk_ends,
    length_buckets,
)
from inference.vocab import Vocab, pad_batch
from training.model import BiLSTMClassifier

logger = logging.getLogger(__name__)


PARITY_CHUNK = 32


def parity_batches(
    texts: Sequence[str], vocab: Vocab, truncation: tuple[int, int]
) -> list[tuple[list[list[int]], int]]:
    """(batch, chunk size): all texts sorted by length in chunks as served, a few of those
    chunks alone, and one unsorted batch as a single chunk so padding is exercised."""
    encoded = [vocab.encode(t.split(), *truncation) for t in texts]
    buckets = length_buckets([len(e) for e in encoded], PARITY_CHUNK)
    chunks = [[encoded[i] for i in idx] for idx in buckets]
    every_chunk = [row for chunk in chunks for row in chunk]
    singles = [encoded[:64], [vocab.encode([], *truncation)], *chunks[:3]]
    return [(every_chunk, PARITY_CHUNK), *((batch, len(batch)) for batch in singles)]


def check_parity(
    model: BiLSTMClassifier,
    onnx_path: Path,
    texts: Sequence[str],
    vocab: Vocab,
    truncation: tuple[int, int],
    tolerance: float,
) -> float:
    """Max absolute logit difference; raises ParityError above `tolerance`."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    model.eval()
    for batch, chunk_size in parity_batches(texts, vocab, truncation):
        ids, lengths = pad_batch(batch, vocab.pad_id)
        feed = {
            INPUT_IDS: ids,
            INPUT_LENGTHS: lengths,
            INPUT_CHUNK_ENDS: chunk_ends(len(batch), chunk_size),
        }
        got = session.run([OUTPUT_LOGITS], feed)[0]
        with torch.no_grad():
            want = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    logger.info("parity: max |onnxruntime - torch| = %.3g over %d texts", worst, len(texts))
    if not worst < tolerance:
        raise ParityError(
            f"onnxruntime differs from PyTorch by {worst:.3g} (tolerance {tolerance})"
        )
    return worst
