"""Weight averaging of the last evaluations (`average_last`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from training.model import BiLSTMClassifier, ModelArgs
from training.tiny import tiny_config
from training.train import average_states, load_checkpoint, train


def test_average_states_is_the_elementwise_mean() -> None:
    torch.manual_seed(0)
    a, b = (BiLSTMClassifier(ModelArgs(vocab_size=20, embed_dim=4, hidden_dim=4)) for _ in "ab")
    mean = average_states([a.state_dict(), b.state_dict()])
    assert set(mean) == set(a.state_dict())
    for key, value in mean.items():
        assert torch.allclose(value, (a.state_dict()[key] + b.state_dict()[key]) / 2)


def test_training_tries_weight_averages_and_keeps_only_a_better_one(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "data", tmp_path / "run", max_steps=60)
    config = replace(config, train=replace(config.train, average_last=3, evals_per_epoch=8))
    checkpoint = train(config)
    metrics = json.loads((checkpoint.parent / "metrics.json").read_text())
    history = metrics["history"]
    best_at = max(range(len(history)), key=lambda i: history[i]["valid_score"])
    if best_at == 0:  # nothing before the best evaluation to average with
        assert "weight_average" not in metrics
        return
    averaging = metrics["weight_average"]
    assert len(averaging["tried"]) == min(best_at + 1, 3) - 1
    assert all(t["averaged_last"] in (2, 3) for t in averaging["tried"])
    best_single = max(h["valid_score"] for h in metrics["history"])
    if averaging["chosen"]:
        assert max(t["valid_score"] for t in averaging["tried"]) > best_single
    model, _ = load_checkpoint(checkpoint)
    assert model.args.vocab_size > 0
