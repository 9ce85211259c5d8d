"""Weight averaging of the last evaluations (`average_last`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import training.train as train_module
from inference import Decision
from training.model import BiLSTMClassifier, ModelArgs
from training.tiny import tiny_config
from training.train import average_states, load_checkpoint, selection_value, train, try_averages


def test_average_states_is_the_elementwise_mean() -> None:
    torch.manual_seed(0)
    a, b = (BiLSTMClassifier(ModelArgs(vocab_size=20, embed_dim=4, hidden_dim=4)) for _ in "ab")
    mean = average_states([a.state_dict(), b.state_dict()])
    assert set(mean) == set(a.state_dict())
    for key, value in mean.items():
        assert torch.allclose(value, (a.state_dict()[key] + b.state_dict()[key]) / 2)


@pytest.mark.parametrize("criterion", ["loss", "score"])
def test_an_average_replaces_the_best_weights_only_if_it_validates_better(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, criterion: str
) -> None:
    # Validation stubbed: a model's loss is its first weight, so the mean of snapshots whose
    # weights are all 0, 1 and 2 validates at 1.5 (last two) and 1.0 (all three).
    model = BiLSTMClassifier(ModelArgs(vocab_size=20, embed_dim=4, hidden_dim=4))
    snapshots = [  # oldest first; the last is the best single one
        {key: torch.full_like(value, float(i)) for key, value in model.state_dict().items()}
        for i in (0, 1, 2)
    ]
    monkeypatch.setattr(
        train_module,
        "predict_logits",
        lambda m, _valid: float(next(iter(m.state_dict().values())).flatten()[0]),
    )
    monkeypatch.setattr(
        train_module,
        "validation_figures",
        lambda loss, _valid, _decision: {"valid_loss": loss, "valid_score": -loss},
    )
    config = tiny_config(tmp_path / "data", tmp_path / "run")
    config = replace(config, train=replace(config.train, early_stopping=criterion))
    decision = Decision(kind="argmax")

    # The best single snapshot validated at 2.0: the mean of all three (1.0) is better.
    value, chosen, tried = try_averages(model, snapshots, None, config, decision, -2.0)  # type: ignore[arg-type]
    assert [t["averaged_last"] for t in tried] == [2, 3]
    assert chosen is not None and value == -1.0
    assert all(torch.all(tensor == 1.0) for tensor in chosen.values())

    # It validated at 0.5: no mean is better, the best weights stay.
    value, chosen, _ = try_averages(model, snapshots, None, config, decision, -0.5)  # type: ignore[arg-type]
    assert chosen is None and value == -0.5


def test_training_records_the_averages_it_tried_against_its_own_criterion(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "data", tmp_path / "run", max_steps=60)
    config = replace(config, train=replace(config.train, average_last=3, evals_per_epoch=8))
    checkpoint = train(config)
    metrics = json.loads((checkpoint.parent / "metrics.json").read_text())
    criterion = config.train.early_stopping
    values = [selection_value(h, criterion) for h in metrics["history"]]
    best_at = values.index(max(values))
    if best_at == 0:  # nothing before the best evaluation to average with
        assert "weight_average" not in metrics
    else:
        averaging = metrics["weight_average"]
        window = min(best_at + 1, config.train.average_last)  # snapshots up to the best one
        assert [t["averaged_last"] for t in averaging["tried"]] == list(range(2, window + 1))
        best_average = max(selection_value(t, criterion) for t in averaging["tried"])
        assert averaging["chosen"] == (best_average > max(values))
    model, _ = load_checkpoint(checkpoint)
    assert model.args.vocab_size > 0
