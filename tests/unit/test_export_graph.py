"""The hand-written ONNX graph (and its chunk loop) against PyTorch, without a training run."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exporter.graph import (
    INPUT_CHUNK_ENDS,
    INPUT_IDS,
    INPUT_LENGTHS,
    OUTPUT_LOGITS,
    add_chunk_loop,
    build_model,
)
from training.model import BiLSTMClassifier, ModelArgs


def _model_and_graph(pooling: str) -> tuple[BiLSTMClassifier, onnx.ModelProto]:
    """A small untrained BiLSTM (fixed seed) and the graph built from its weights."""
    torch.manual_seed(3)
    model = BiLSTMClassifier(
        ModelArgs(vocab_size=60, embed_dim=12, hidden_dim=10, pooling=pooling)  # type: ignore[arg-type]
    ).eval()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return model, build_model(state, pooling=pooling, pad_id=0, hidden_dim=10)


def _session(graph: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _logits(pooling: str, ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model, graph = _model_and_graph(pooling)
    got = _session(graph).run([OUTPUT_LOGITS], {INPUT_IDS: ids, INPUT_LENGTHS: lengths})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    return got, want


def _padded_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    lengths = np.array([1, 7, 3, 12, 5, 12, 2], dtype=np.int64)
    ids = np.zeros((len(lengths), int(lengths.max())), dtype=np.int64)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 60, size=n)
    return ids, lengths


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_graph_matches_pytorch_on_a_padded_batch(pooling: str) -> None:
    got, want = _logits(pooling, *_padded_batch())
    assert got.shape == want.shape == (7, 3)
    assert np.abs(got - want).max() < 1e-5


def test_attention_graph_ignores_padding() -> None:
    ids, lengths = _padded_batch()
    wide = np.concatenate([ids, np.zeros((len(ids), 9), dtype=np.int64)], axis=1)
    narrow_logits, _ = _logits("attention", ids, lengths)
    wide_logits, _ = _logits("attention", wide, lengths)
    assert np.abs(narrow_logits - wide_logits).max() < 1e-5


def _plain_and_looped(
    pooling: str,
) -> tuple[ort.InferenceSession, ort.InferenceSession, BiLSTMClassifier]:
    model, plain = _model_and_graph(pooling)
    looped = add_chunk_loop(plain)
    assert add_chunk_loop(looped) is looped  # already looped: unchanged
    return _session(plain), _session(looped), model


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_chunk_loop_runs_each_chunk_as_the_plain_graph_would(pooling: str) -> None:
    plain, looped, torch_model = _plain_and_looped(pooling)
    ids, lengths = _padded_batch()
    order = np.argsort(lengths, kind="stable")
    ids, lengths = ids[order], lengths[order]
    ends = np.array([2, 3, 6, 7], dtype=np.int64)  # chunks of 2, 1, 3 and 1 rows
    got = looped.run(
        [OUTPUT_LOGITS], {INPUT_IDS: ids, INPUT_LENGTHS: lengths, INPUT_CHUNK_ENDS: ends}
    )[0]
    per_chunk = [
        plain.run(
            [OUTPUT_LOGITS],
            {
                INPUT_IDS: ids[start:end, : lengths[start:end].max()],
                INPUT_LENGTHS: lengths[start:end],
            },
        )[0]
        for start, end in zip([0, *ends[:-1]], ends, strict=True)
    ]
    assert np.array_equal(got, np.concatenate(per_chunk))
    with torch.no_grad():
        want = torch_model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    assert np.abs(got - want).max() < 1e-5


def test_chunk_loop_results_do_not_depend_on_row_order() -> None:
    _, looped, torch_model = _plain_and_looped("attention")
    ids, lengths = _padded_batch()  # not sorted: each chunk is padded to its longest row
    ends = np.array([3, 7], dtype=np.int64)
    got = looped.run(
        [OUTPUT_LOGITS], {INPUT_IDS: ids, INPUT_LENGTHS: lengths, INPUT_CHUNK_ENDS: ends}
    )[0]
    with torch.no_grad():
        want = torch_model(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    assert got.shape == (7, 3)
    assert np.abs(got - want).max() < 1e-5
