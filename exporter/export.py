"""Checkpoint -> verified bundle directory (ONNX + JSON only)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from exporter.card import model_card
from exporter.errors import ExportError
from exporter.graph import add_chunk_loop, build_model
from exporter.parity import check_parity
from inference.bundle import (
    CONFIG,
    MODEL_FP32,
    MODEL_INT8,
    VOCAB,
    ModelBundle,
    verify_manifest,
    write_manifest,
)
from inference.decision import LABELS
from inference.model import INPUT_CHUNK_ENDS, INPUT_IDS, INPUT_LENGTHS, OUTPUT_LOGITS, chunk_ends
from inference.vocab import Vocab
from training.train import load_checkpoint

logger = logging.getLogger(__name__)

BUNDLE_NAME = "bilstm"
MODEL_INPUTS = {
    "token_ids": "int64 [batch, sequence]",
    "lengths": "int64 [batch]",
    "chunk_ends": "int64 [chunks]: rows [0, e0), [e0, e1), ... each run as one padded chunk",
}


def _serving_config(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_args": checkpoint["model_args"],
        "max_len": checkpoint["max_len"],
        "tail_tokens": checkpoint.get("tail_tokens", 0),
        "cleaning": checkpoint["cleaning"],
        "labels": list(LABELS),
        "decision": checkpoint["decision"],
        "inputs": MODEL_INPUTS,
        "outputs": {"logits": "float32 [batch, num_outputs]"},
    }


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def quantize(fp32: Path, int8: Path) -> None:
    """Dynamic INT8 (weights int8, activations quantised on the fly): LSTM, MatMul, Gather."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    onnx.checker.check_model(str(int8))


def add_chunk_loops(bundle_dir: Path) -> list[str]:
    """Give the bundle's ONNX files the `chunk_ends` input (`exporter.graph.add_chunk_loop`).

    Returns the files changed; files that have it already are left alone.
    """
    changed = []
    for name in (MODEL_FP32, MODEL_INT8):
        path = bundle_dir / name
        if not path.is_file():
            continue
        model = onnx.load(str(path))
        looped = add_chunk_loop(model)
        if looped is not model:
            onnx.save(looped, str(path))
            changed.append(name)
    return changed


def upgrade(bundle_dir: Path) -> ModelBundle:
    """Bring a bundle exported by an older version up to date, without its checkpoint.

    The graphs get the chunk loop, checked against the old graphs chunk by chunk on random
    token ids; the manifest is rewritten, so the version (a hash of the files) changes.
    """
    bundle_name = verify_manifest(bundle_dir)["name"]  # refuses a bundle that was tampered with
    bundle = ModelBundle.load(bundle_dir)
    originals = {
        name: (bundle_dir / name).read_bytes()
        for name in (MODEL_FP32, MODEL_INT8)
        if (bundle_dir / name).is_file()
    }
    changed = add_chunk_loops(bundle_dir)
    for name in changed:
        diff = chunked_against_plain(originals[name], bundle_dir / name, bundle)
        logger.info("%s: chunk loop added, max |chunked - plain| = %.3g", name, diff)
        if not diff < 1e-5:
            for restored, data in originals.items():
                (bundle_dir / restored).write_bytes(data)
            raise ExportError(f"{name}: the chunked graph differs from the plain one by {diff}")
    if changed:
        config = json.loads((bundle_dir / CONFIG).read_text(encoding="utf-8"))
        _write_json(bundle_dir / CONFIG, config | {"inputs": MODEL_INPUTS})
        version = write_manifest(bundle_dir, bundle_name)
        logger.info("bundle upgraded to %s: %s", version, ", ".join(changed))
    return ModelBundle.load(bundle_dir)


def chunked_against_plain(plain: bytes, chunked: Path, bundle: ModelBundle) -> float:
    """Max |logit difference| between the chunked graph and the plain one run per chunk."""
    rng = np.random.default_rng(0)
    lengths = np.sort(rng.integers(1, bundle.max_len + 1, size=100))
    ids = np.zeros((len(lengths), bundle.max_len), dtype=np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, len(bundle.vocab), size=length)
    ends = chunk_ends(len(lengths), 16)
    feed = {INPUT_IDS: ids, INPUT_LENGTHS: lengths, INPUT_CHUNK_ENDS: ends}
    got = _cpu_session(chunked.read_bytes()).run([OUTPUT_LOGITS], feed)[0]
    session = _cpu_session(plain)
    want = [
        session.run(
            [OUTPUT_LOGITS], {INPUT_IDS: ids[s:e, : lengths[e - 1]], INPUT_LENGTHS: lengths[s:e]}
        )[0]
        for s, e in zip([0, *ends[:-1]], ends, strict=True)
    ]
    return float(np.abs(got - np.concatenate(want)).max())


def _cpu_session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def int8_agreement(bundle_dir: Path, texts: list[str]) -> dict[str, float]:
    """How far the INT8 model drifts from fp32 on the parity texts."""
    from inference.model import SentimentModel

    bundle = ModelBundle.load(bundle_dir)
    fp32, int8 = SentimentModel(bundle), SentimentModel(bundle, quantized=True)
    fp32_labels, int8_labels = fp32.decide_cleaned(texts)[0], int8.decide_cleaned(texts)[0]
    logit_diff = np.abs(fp32.logits_cleaned(texts) - int8.logits_cleaned(texts)).max()
    return {
        "int8_max_abs_logit_diff": round(float(logit_diff), 5),
        # By the labels served (the decision rule, not a bare argmax of the logits).
        "int8_label_agreement": round(float((fp32_labels == int8_labels).mean()), 4),
    }


def export(
    checkpoint_path: Path,
    out_dir: Path,
    *,
    quantized: bool,
    tolerance: float = 1e-4,
    evaluation: dict[str, Any] | None = None,
) -> ModelBundle:
    """evaluation: optional `python -m training evaluate` JSON to put in the card and metrics."""
    model, checkpoint = load_checkpoint(checkpoint_path)
    vocab = Vocab(tuple(checkpoint["vocab"]))
    staging = out_dir.with_name(out_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    args = checkpoint["model_args"]
    graph = build_model(
        state, pooling=args["pooling"], pad_id=args["pad_id"], hidden_dim=args["hidden_dim"]
    )
    onnx.save(graph, staging / MODEL_FP32)
    if quantized:
        quantize(staging / MODEL_FP32, staging / MODEL_INT8)
    add_chunk_loops(staging)
    texts = checkpoint["parity_texts"]
    if not texts:
        raise ExportError("checkpoint has no parity texts")
    truncation = (checkpoint["max_len"], checkpoint.get("tail_tokens", 0))
    diff = check_parity(model, staging / MODEL_FP32, texts, vocab, truncation, tolerance)
    info: dict[str, Any] = {"opset": graph.opset_import[0].version, "parity_max_abs_diff": diff}
    _write_json(staging / CONFIG, _serving_config(checkpoint))
    _write_json(staging / VOCAB, vocab.to_json())
    write_manifest(staging, BUNDLE_NAME)  # provisional, so the INT8 check can load the bundle
    if quantized:
        info |= int8_agreement(staging, texts)
    metrics = {k: v for k, v in checkpoint["metrics"].items() if k != "history"}
    figures = {"training": metrics, "export": info}
    if evaluation:
        figures["evaluation"] = evaluation
    _write_json(staging / "metrics.json", figures)
    card = model_card(checkpoint, info, evaluation)
    (staging / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    version = write_manifest(staging, BUNDLE_NAME)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    logger.info("bundle %s written to %s", version, out_dir)
    return ModelBundle.load(out_dir)
