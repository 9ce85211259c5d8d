"""Tiny end-to-end run: train a few steps on self-made data -> export -> parity -> evaluate."""

from __future__ import annotations

import csv
import gzip
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from exporter import ParityError, export
from inference import ModelBundle, SentimentModel
from training.__main__ import main as training_main
from training.config import load_config
from training.data import read_examples, split_examples
from training.model import BiLSTMClassifier, ModelArgs
from training.tiny import make_tiny_bundle, synthetic_examples, tiny_config
from training.train import compute_loss, length_bucketed_batches, load_checkpoint, train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    checkpoint = train(tiny_config(root / "data", root / "run"))
    return root, checkpoint


def test_training_writes_checkpoint_and_reports(tiny_run: tuple[Path, Path]) -> None:
    _, checkpoint = tiny_run
    run = checkpoint.parent
    for name in ("training_curves.png", "confusion_matrix.png", "roc.png", "metrics.json"):
        assert (run / name).stat().st_size > 0, name
    report = json.loads((run / "classification_report.json").read_text())
    assert report["tweets3"]["accuracy"] > 0.8
    assert (run / "heldout" / "tweets3_test.csv.gz").exists()
    model, ckpt = load_checkpoint(checkpoint)
    assert ckpt["model_args"]["num_outputs"] == 3 and len(ckpt["vocab"]) == model.args.vocab_size


def test_export_parity_and_evaluate_json(
    tiny_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, checkpoint = tiny_run
    bundle = export(checkpoint, tmp_path / "bundle", quantized=True)
    metrics = json.loads((bundle.path / "metrics.json").read_text())
    assert metrics["export"]["parity_max_abs_diff"] < 1e-4
    heldout = checkpoint.parent / "heldout" / "tweets3_test.csv.gz"
    argv = ["evaluate", "--bundle", str(bundle.path), "--data", str(heldout)]
    assert training_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    keys = ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "macro_f1", "macro_recall")
    assert set(keys) <= set(result)
    assert result["accuracy"] > 0.8 and result["bundle"] == bundle.version
    train_csv = root / "data" / "tweets3.csv"
    argv += ["--baselines", "--train-data", str(train_csv)]
    assert training_main(argv) == 0
    baselines = json.loads(capsys.readouterr().out)["baselines"]
    assert set(baselines) == {"tfidf_logreg", "vader"}
    assert "macro_recall" in baselines["vader"]


def test_parity_failure_is_loud(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny_run
    with pytest.raises(ParityError):
        export(checkpoint, tmp_path / "bundle", quantized=False, tolerance=0.0)
    assert not (tmp_path / "bundle").exists()


def test_binary_head_gets_a_neutral_band(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "data", tmp_path / "run", max_steps=40, head="binary")
    bundle = export(train(config), tmp_path / "bundle", quantized=False)
    assert bundle.decision.kind == "band"
    assert bundle.decision.neutral_low <= 0.5 <= bundle.decision.neutral_high
    predictions = SentimentModel(bundle).predict(["good great love", "bad awful hate", ""])
    assert predictions[0].positive_probability > predictions[1].positive_probability


def test_make_tiny_bundle_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    path = make_tiny_bundle(tmp_path / "tiny")
    assert time.perf_counter() - started < 30
    assert ModelBundle.load(path).version.startswith("bilstm-")


def test_reads_original_sentiment140_format(tmp_path: Path) -> None:
    path = tmp_path / "training.1600000.processed.noemoticon.csv"
    rows = [
        ["0", "1467810369", "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", "u1", "awww bummer"],
        ["4", "2193602129", "Tue Jun 16 08:40:50 PDT 2009", "NO_QUERY", "u2", "caf\xe9 is great"],
    ]
    with path.open("w", encoding="latin-1", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)
    examples = read_examples(path)
    assert [(e.label, e.text) for e in examples] == [(0, "awww bummer"), (1, "café is great")]


def test_reads_gzipped_label_text(tmp_path: Path) -> None:
    path = tmp_path / "x.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write('label,text\n2,"neutral, with comma"\n1,yay\n')
    rows = [(e.label, e.text) for e in read_examples(path)]
    assert rows == [(2, "neutral, with comma"), (1, "yay")]


def test_split_is_deterministic_and_disjoint() -> None:
    rows = synthetic_examples(500)
    first = split_examples(rows, valid_fraction=0.1, test_fraction=0.1, seed=3)
    second = split_examples(list(reversed(rows)), valid_fraction=0.1, test_fraction=0.1, seed=3)
    for a, b in zip(first, second, strict=True):
        assert {r.text for r in a} == {r.text for r in b}
    train_texts, valid_texts, test_texts = ({r.text for r in part} for part in first)
    assert not (train_texts & valid_texts) and not (train_texts & test_texts)


def test_length_bucketed_batches_cover_all_rows() -> None:
    lengths = list(np.random.default_rng(0).integers(1, 50, size=1000))
    batches = length_bucketed_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert max(len(b) for b in batches) == 32


def test_two_class_rows_do_not_train_the_neutral_logit() -> None:
    logits = torch.tensor([[0.0, 0.0, 50.0]])
    label = torch.tensor([1])
    two_class = compute_loss(logits, label, torch.tensor([False]))
    three_class = compute_loss(logits, label, torch.tensor([True]))
    assert float(two_class) == pytest.approx(np.log(2), abs=1e-4)
    assert float(three_class) > 40


def test_padding_does_not_change_the_output() -> None:
    torch.manual_seed(0)
    model = BiLSTMClassifier(ModelArgs(vocab_size=50, embed_dim=8, hidden_dim=8)).eval()
    ids = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0]])
    with torch.no_grad():
        a = model(ids, torch.tensor([3]))
        b = model(padded, torch.tensor([3]))
    assert torch.allclose(a, b, atol=1e-6)


def test_release_config_parses(tmp_path: Path) -> None:
    config = load_config(Path(__file__).parents[2] / "configs" / "release.toml", data_root="/x")
    assert config.data_root == "/x"
    assert str(config.resolve("a.csv")) == "/x/a.csv"
    assert replace(config, seed=1).seed == 1
