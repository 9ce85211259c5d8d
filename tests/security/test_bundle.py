"""Model bundles: verified by hash before use, refused when tampered with, and free of pickle."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference import BundleError, ModelBundle, SentimentModel
from inference.bundle import MANIFEST, MODEL_FP32, VOCAB

ROOT = Path(__file__).resolve().parents[2]
# Magic numbers of formats that can run code when loaded.
PICKLE_PROTOCOLS = tuple(bytes([0x80, n]) for n in range(2, 6))
ZIP = b"PK\x03\x04"  # torch.save, joblib archives
NUMPY = b"\x93NUMPY"  # .npy may hold pickled objects
ALLOWED_SUFFIXES = {".json", ".onnx", ".md"}


@pytest.fixture
def bundle_copy(bundle_path: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_path, copy)
    ModelBundle.load(copy)  # the untouched copy loads
    return copy


def _flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_changed_model_file_is_refused(bundle_copy: Path) -> None:
    _flip_byte(bundle_copy / MODEL_FP32, 1000)
    with pytest.raises(BundleError, match="sha256"):
        ModelBundle.load(bundle_copy)


def test_a_changed_vocabulary_is_refused(bundle_copy: Path) -> None:
    vocab = json.loads((bundle_copy / VOCAB).read_text())
    (bundle_copy / VOCAB).write_text(json.dumps(vocab).replace('"good"', '"evil"'))
    with pytest.raises(BundleError):
        ModelBundle.load(bundle_copy)


def test_a_manifest_edited_to_match_the_tampering_still_fails_the_version(
    bundle_copy: Path,
) -> None:
    from inference.bundle import sha256_file

    _flip_byte(bundle_copy / MODEL_FP32, 2000)
    manifest = json.loads((bundle_copy / MANIFEST).read_text())
    manifest["files"][MODEL_FP32] = sha256_file(bundle_copy / MODEL_FP32)
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="version"):
        ModelBundle.load(bundle_copy)


def test_an_extra_file_is_refused(bundle_copy: Path) -> None:
    import pickle  # only to plant a pickle next to the bundle

    (bundle_copy / "extra.pkl").write_bytes(pickle.dumps({"payload": 1}))
    with pytest.raises(BundleError, match="not in the manifest"):
        ModelBundle.load(bundle_copy)


@pytest.mark.parametrize("name", ["../outside.txt", "/tmp/outside.txt", "sub/inside.txt"])
def test_a_manifest_entry_outside_the_bundle_is_refused(bundle_copy: Path, name: str) -> None:
    # The hashes must cover what the bundle holds, not a file elsewhere.
    manifest = json.loads((bundle_copy / MANIFEST).read_text())
    manifest["files"][name] = "0" * 64
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside the bundle"):
        ModelBundle.load(bundle_copy)


def test_a_symbolic_link_or_a_folder_in_the_bundle_is_refused(bundle_copy: Path) -> None:
    real = bundle_copy.parent / "elsewhere.onnx"
    (bundle_copy / MODEL_FP32).rename(real)
    (bundle_copy / MODEL_FP32).symlink_to(real)
    with pytest.raises(BundleError, match="not plain files"):
        ModelBundle.load(bundle_copy)
    (bundle_copy / MODEL_FP32).unlink()
    real.rename(bundle_copy / MODEL_FP32)
    ModelBundle.load(bundle_copy)  # as it was: fine
    (bundle_copy / "plots").mkdir()
    with pytest.raises(BundleError, match="not plain files"):
        ModelBundle.load(bundle_copy)


def test_a_missing_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / VOCAB).unlink()
    with pytest.raises(BundleError):
        ModelBundle.load(bundle_copy)


def test_the_consumer_refuses_to_start_with_a_tampered_bundle(bundle_copy: Path) -> None:
    _flip_byte(bundle_copy / MODEL_FP32, 3000)
    env = {
        **os.environ,
        "SENTIMENT_BUNDLE_PATH": str(bundle_copy),
        "SENTIMENT_MIGRATE_ON_START": "false",
        "SENTIMENT_LOG_FORMAT": "text",
    }
    result = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert b"BundleError" in result.stderr + result.stdout


def test_the_bundle_holds_no_pickle_or_other_code_formats(bundle_path: Path) -> None:
    bundle = ModelBundle.load(bundle_path)
    for name in bundle.files:
        path = bundle_path / name
        assert path.suffix in ALLOWED_SUFFIXES, name
        head = path.read_bytes()[:8]
        assert not head.startswith((*PICKLE_PROTOCOLS, ZIP, NUMPY)), name
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))


def test_the_onnx_graphs_are_plain_onnx(bundle_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    for name in ModelBundle.load(bundle_path).files:
        if name.endswith(".onnx"):
            model = onnx.load(str(bundle_path / name))
            onnx.checker.check_model(model)
            domains = {node.domain for node in model.graph.node}
            assert domains <= {"", "ai.onnx", "com.microsoft"}, domains


def test_the_serving_code_loads_nothing_that_can_run_code() -> None:
    risky = re.compile(
        r"import pickle|pickle\.loads?\(|torch\.load|joblib|allow_pickle=True|(?<![\w.])eval\("
    )
    for package in ("inference", "consumer", "schemas", "textclean"):
        for source in (ROOT / package).rglob("*.py"):
            assert not risky.search(source.read_text()), source


def test_a_verified_bundle_classifies(bundle_path: Path) -> None:
    model = SentimentModel(ModelBundle.load(bundle_path))
    (prediction,) = model.predict(["good day"])
    assert prediction.label in {"negative", "neutral", "positive"}
