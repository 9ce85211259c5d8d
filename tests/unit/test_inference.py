"""Serving side: vocabulary, decisions, bundle verification and the onnxruntime classifier."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from consumer.cache import decode_prediction, encode_prediction
from inference import (
    DEFAULT_BUNDLE_PATH,
    BundleError,
    Decision,
    ModelBundle,
    Prediction,
    SentimentModel,
    Vocab,
)
from inference.bundle import write_manifest
from inference.decision import decide
from inference.model import length_buckets
from inference.vocab import pad_batch


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.tiny import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny", quantize=True)


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(tiny_bundle, target)
    return target


def test_vocab_encodes_oov_and_empty() -> None:
    vocab = Vocab(("<pad>", "<unk>", "good", "bad"))
    assert vocab.encode(["good", "unseen", "bad"], max_len=10) == [2, 1, 3]
    assert vocab.encode(["good", "bad", "good"], max_len=2) == [2, 3]
    assert vocab.encode([], max_len=10) == [vocab.unk_id]
    assert vocab.encode(["good", "bad", "x", "bad", "good"], max_len=3, tail_tokens=2) == [2, 3, 2]
    assert Vocab.from_json(vocab.to_json()) == vocab
    with pytest.raises(ValueError):
        Vocab(("good", "<pad>"))


def test_vocab_build_respects_frequency_and_size() -> None:
    vocab = Vocab.build([["a", "b", "a"], ["a", "c", "b"]], min_freq=2, max_size=3)
    assert vocab.tokens == ("<pad>", "<unk>", "a")


def test_pad_batch_right_pads() -> None:
    ids, lengths = pad_batch([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert lengths.tolist() == [3, 1]
    assert ids.dtype == np.int64


def test_encode_padded_is_encode_then_pad_batch() -> None:
    vocab = Vocab(("<pad>", "<unk>", "good", "bad"))
    token_lists = [["good", "unseen", "bad"], [], ["bad"], ["good", "bad", "x", "bad", "good"]]
    ids, lengths = vocab.encode_padded(token_lists, max_len=3, tail_tokens=2)
    expected = pad_batch([vocab.encode(tokens, 3, 2) for tokens in token_lists])
    assert ids.tolist() == expected[0].tolist() == [[2, 1, 3], [1, 0, 0], [3, 0, 0], [2, 3, 2]]
    assert lengths.tolist() == expected[1].tolist()
    assert ids.dtype == lengths.dtype == np.int64


@pytest.mark.parametrize(
    "texts",
    [
        ["good bad", "unseen", "bad good good bad x"],  # the fast path, one too long
        ["good", "", "bad"],  # an empty text
        ["good  bad", " good", "bad "],  # runs of spaces, leading and trailing
        ["good\tbad", "good\u00a0bad", "good\nbad", "  "],  # other whitespace, blank
        ["<unk> good", "x"],
        [],
    ],
)
def test_encode_joined_is_encode_padded_of_split(texts: list[str]) -> None:
    vocab = Vocab(("<pad>", "<unk>", "good", "bad"))
    for max_len, tail in [(3, 2), (8, 0)]:
        ids, lengths = vocab.encode_joined(texts, max_len=max_len, tail_tokens=tail)
        expected = vocab.encode_padded([text.split() for text in texts], max_len, tail)
        assert ids.tolist() == expected[0].tolist()
        assert lengths.tolist() == expected[1].tolist()
        assert ids.dtype == lengths.dtype == np.int64


def test_length_buckets_sort_and_cover_everything() -> None:
    buckets = length_buckets([5, 1, 3, 9, 2], batch_size=2)
    assert [b.tolist() for b in buckets] == [[1, 4], [2, 0], [3]]


def test_band_decision() -> None:
    decision = Decision(kind="band", neutral_low=0.4, neutral_high=0.6)
    logits = np.array([[-3.0], [0.0], [3.0]])
    labels, p_pos, confidence = decide(logits, decision)
    assert labels.tolist() == [0, 2, 1]
    assert p_pos[1] == pytest.approx(0.5)
    assert ((confidence >= 0) & (confidence <= 1)).all()


def test_argmax_decision_with_neutral_bias() -> None:
    logits = np.array([[0.0, 2.0, 1.5], [3.0, 0.0, 0.0]])
    labels, p_pos, _ = decide(logits, Decision(kind="argmax", neutral_bias=1.0))
    assert labels.tolist() == [2, 0]
    assert p_pos[0] == pytest.approx(1 / (1 + np.exp(-2.0)))


def test_predictions_are_valid_and_in_input_order(tiny_bundle: Path) -> None:
    model = SentimentModel(ModelBundle.load(tiny_bundle), threads=1)
    texts = ["so good great love", "", "bad awful hate it", "!!!", "the meeting is at noon"] * 7
    batch = model.predict(texts)
    singles = [model.predict([t])[0] for t in texts]
    assert len(batch) == len(texts)
    for got, alone in zip(batch, singles, strict=True):
        assert isinstance(got, Prediction)
        assert got.label in {"negative", "neutral", "positive"}
        assert 0.0 <= got.positive_probability <= 1.0
        assert 0.0 <= got.confidence <= 1.0
        assert got.label == alone.label
        assert got.positive_probability == pytest.approx(alone.positive_probability, abs=1e-5)
    assert batch[0].positive_probability > batch[2].positive_probability
    assert model.predict([]) == []


def test_a_cached_prediction_is_the_fresh_one_exactly(tiny_bundle: Path) -> None:
    model = SentimentModel(ModelBundle.load(tiny_bundle), threads=1)
    for prediction in model.predict(["so good great love", "bad awful hate it", "", "noon"]):
        assert decode_prediction(encode_prediction(prediction)) == prediction


def test_around_run_wraps_the_onnxruntime_call_alone(tiny_bundle: Path) -> None:
    model = SentimentModel(ModelBundle.load(tiny_bundle))
    session_run = model._session.run
    events: list[str] = []

    def run(*args: object) -> object:
        events.append("run")
        return session_run(*args)

    @contextmanager
    def around_run() -> Iterator[None]:
        events.append("enter")
        yield
        events.append("exit")

    model._session.run = run  # type: ignore[method-assign]
    texts = ["so good great love", "bad awful hate it"]
    assert model.predict_cleaned(texts, around_run) == model.predict_cleaned(texts)
    assert events == ["enter", "run", "exit", "run"]


def test_predict_cleaned_accepts_empty_strings(tiny_bundle: Path) -> None:
    model = SentimentModel(ModelBundle.load(tiny_bundle))
    empty, blank = model.predict_cleaned(["", "  "])
    assert empty.label == blank.label == "neutral"
    assert 0.0 <= empty.confidence <= 1.0 and 0.0 <= empty.positive_probability <= 1.0


def test_quantized_model_loads_and_agrees_mostly(tiny_bundle: Path) -> None:
    bundle = ModelBundle.load(tiny_bundle)
    fp32, int8 = SentimentModel(bundle), SentimentModel(bundle, quantized=True)
    texts = ["good great love", "bad awful hate", "the report arrives today"] * 5
    assert int8.version.endswith("-int8")
    pairs = zip(fp32.predict(texts), int8.predict(texts), strict=True)
    agree = [a.label == b.label for a, b in pairs]
    assert np.mean(agree) >= 0.8


def test_bundle_version_is_content_hash(tiny_bundle: Path) -> None:
    bundle = ModelBundle.load(tiny_bundle)
    assert bundle.version.startswith("bilstm-")
    assert len(bundle.version.split("-")[1]) == 12
    assert bundle.path == tiny_bundle
    assert (
        bundle.cleaning.to_dict()
        == json.loads((tiny_bundle / "config.json").read_text())["cleaning"]
    )


@pytest.mark.parametrize("victim", ["config.json", "vocab.json", "model.onnx", "MODEL_CARD.md"])
def test_tampered_file_is_rejected(bundle_copy: Path, victim: str) -> None:
    path = bundle_copy / victim
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(BundleError, match=re.escape(victim)):
        ModelBundle.load(bundle_copy)


def test_tampered_manifest_is_rejected(bundle_copy: Path) -> None:
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = "bilstm-000000000000"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="version"):
        ModelBundle.load(bundle_copy)


def test_missing_and_extra_files_are_rejected(bundle_copy: Path) -> None:
    (bundle_copy / "extra.pkl").write_bytes(b"x")
    with pytest.raises(BundleError, match="not in the manifest"):
        ModelBundle.load(bundle_copy)
    (bundle_copy / "extra.pkl").unlink()
    (bundle_copy / "vocab.json").unlink()
    with pytest.raises(BundleError, match=r"vocab\.json"):
        ModelBundle.load(bundle_copy)


def test_missing_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        ModelBundle.load(tmp_path / "nope")


def test_bundle_holds_no_pickles(tiny_bundle: Path) -> None:
    suffixes = {p.suffix for p in tiny_bundle.iterdir()}
    assert suffixes <= {".json", ".onnx", ".md"}


def _bundle_from_before_chunk_loops(bundle_dir: Path) -> ort.InferenceSession:
    """Make bundle_dir an older bundle: a plain graph (no chunk_ends), fresh weights."""
    import torch

    from exporter.graph import build_model
    from training.model import BiLSTMClassifier, ModelArgs

    config = json.loads((bundle_dir / "config.json").read_text())
    args = ModelArgs(**config["model_args"])
    torch.manual_seed(5)
    state = {k: v.detach().numpy() for k, v in BiLSTMClassifier(args).state_dict().items()}
    plain = build_model(state, pooling=args.pooling, pad_id=args.pad_id, hidden_dim=args.hidden_dim)
    (bundle_dir / "model.onnx").write_bytes(plain.SerializeToString())
    (bundle_dir / "model.int8.onnx").unlink()
    write_manifest(bundle_dir, "bilstm")
    return ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])


def test_a_bundle_from_before_chunk_loops_is_refused_then_upgraded(bundle_copy: Path) -> None:
    from exporter.export import upgrade

    plain = _bundle_from_before_chunk_loops(bundle_copy)
    older = ModelBundle.load(bundle_copy)
    with pytest.raises(BundleError, match="python -m exporter --upgrade"):
        SentimentModel(older)

    upgraded = upgrade(bundle_copy)
    assert upgraded.version != older.version
    assert upgrade(bundle_copy).version == upgraded.version  # nothing left to do
    texts = ["good great love", "bad", "the meeting is at noon today report", ""] * 9
    got = SentimentModel(upgraded, batch_size=4).logits_cleaned(texts)
    ids, lengths = upgraded.vocab.encode_padded([t.split() for t in texts], upgraded.max_len)
    for row, (text_ids, length) in enumerate(zip(ids, lengths, strict=True)):
        feed = {"token_ids": text_ids[None, :length], "lengths": lengths[row : row + 1]}
        assert np.abs(got[row] - plain.run(["logits"], feed)[0][0]).max() < 1e-5


@pytest.mark.skipif(not DEFAULT_BUNDLE_PATH.exists(), reason="released bundle not built yet")
def test_released_bundle_loads_and_predicts() -> None:
    model = SentimentModel(ModelBundle.load(DEFAULT_BUNDLE_PATH), threads=1)
    texts = ["I love this, best day ever!", "this is awful, I hate it", ""]
    good, bad, empty = model.predict(texts)
    assert good.label == "positive"
    assert bad.label == "negative"
    assert empty.label == "neutral"


def test_inference_imports_without_torch() -> None:
    code = (
        "import sys, inference, textclean; "
        "m = sys.modules; assert 'torch' not in m, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_bundle_keeping_more_tail_tokens_than_max_len_is_refused(tmp_path: Path) -> None:
    # `truncate` would repeat tokens; training refuses such a setting, and so does loading.
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE_PATH, bundle_dir)
    config = json.loads((bundle_dir / "config.json").read_text())
    config["tail_tokens"] = config["max_len"] + 1
    (bundle_dir / "config.json").write_text(json.dumps(config))
    write_manifest(bundle_dir, "bilstm")
    with pytest.raises(BundleError, match="tail_tokens"):
        ModelBundle.load(bundle_dir)


def test_training_refuses_more_tail_tokens_than_max_len() -> None:
    from training.config import TrainConfig

    with pytest.raises(ValueError, match="tail_tokens"):
        TrainConfig(max_len=4, tail_tokens=6)
