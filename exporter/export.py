"""Checkpoint -> verified bundle directory (ONNX + JSON only)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from exporter.card import model_card
from exporter.errors import ExportError
from exporter.graph import build_model
from exporter.parity import check_parity
from inference.bundle import CONFIG, MODEL_FP32, MODEL_INT8, VOCAB, ModelBundle, write_manifest
from inference.decision import LABELS
from inference.vocab import Vocab
from training.train import load_checkpoint

logger = logging.getLogger(__name__)

BUNDLE_NAME = "bilstm"


def _serving_config(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_args": checkpoint["model_args"],
        "max_len": checkpoint["max_len"],
        "tail_tokens": checkpoint.get("tail_tokens", 0),
        "cleaning": checkpoint["cleaning"],
        "labels": list(LABELS),
        "decision": checkpoint["decision"],
        "inputs": {"token_ids": "int64 [batch, sequence]", "lengths": "int64 [batch]"},
        "outputs": {"logits": "float32 [batch, num_outputs]"},
    }


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def quantize(fp32: Path, int8: Path) -> None:
    """Dynamic INT8 (weights int8, activations quantised on the fly): LSTM, MatMul, Gather."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    onnx.checker.check_model(str(int8))


def int8_agreement(bundle_dir: Path, texts: list[str]) -> dict[str, float]:
    """How far the INT8 model drifts from fp32 on the parity texts."""
    from inference.model import SentimentModel

    bundle = ModelBundle.load(bundle_dir)
    fp32 = SentimentModel(bundle).logits_cleaned(texts)
    int8 = SentimentModel(bundle, quantized=True).logits_cleaned(texts)
    return {
        "int8_max_abs_logit_diff": round(float(np.abs(fp32 - int8).max()), 5),
        "int8_label_agreement": round(float((fp32.argmax(1) == int8.argmax(1)).mean()), 4),
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
    texts = checkpoint["parity_texts"]
    if not texts:
        raise ExportError("checkpoint has no parity texts")
    truncation = (checkpoint["max_len"], checkpoint.get("tail_tokens", 0))
    diff = check_parity(model, staging / MODEL_FP32, texts, vocab, truncation, tolerance)
    info: dict[str, Any] = {"opset": graph.opset_import[0].version, "parity_max_abs_diff": diff}
    if quantized:
        quantize(staging / MODEL_FP32, staging / MODEL_INT8)
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
