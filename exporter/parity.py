"""Numerical comparison of onnxruntime against PyTorch on real inputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from exporter.errors import ParityError
from inference.model import INPUT_IDS, INPUT_LENGTHS, OUTPUT_LOGITS, length_buckets
from inference.vocab import Vocab, pad_batch
from training.model import BiLSTMClassifier

logger = logging.getLogger(__name__)


def parity_batches(
    texts: Sequence[str], vocab: Vocab, truncation: tuple[int, int]
) -> list[list[list[int]]]:
    """Length-bucketed batches as served, plus one unsorted batch so padding is exercised."""
    encoded = [vocab.encode(t.split(), *truncation) for t in texts]
    batches = [[encoded[i] for i in idx] for idx in length_buckets([len(e) for e in encoded], 32)]
    return [*batches, encoded[:64], [vocab.encode([], *truncation)]]


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
    for batch in parity_batches(texts, vocab, truncation):
        ids, lengths = pad_batch(batch, vocab.pad_id)
        got = session.run([OUTPUT_LOGITS], {INPUT_IDS: ids, INPUT_LENGTHS: lengths})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    logger.info("parity: max |onnxruntime - torch| = %.3g over %d texts", worst, len(texts))
    if not worst < tolerance:
        raise ParityError(
            f"onnxruntime differs from PyTorch by {worst:.3g} (tolerance {tolerance})"
        )
    return worst
