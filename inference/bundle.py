"""Model bundles: a directory of JSON + ONNX files whose version is a hash of their content.

Layout (all written by `python -m exporter`):
    manifest.json   format, name, version, sha256 of every other file
    config.json     model args, max_len, cleaning settings, label map, decision thresholds
    vocab.json      token list (id = position; 0 = <pad>, 1 = <unk>)
    model.onnx      fp32 graph; model.int8.onnx optional dynamic-INT8 graph
    metrics.json, MODEL_CARD.md
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.decision import LABELS, Decision
from inference.errors import BundleError
from inference.vocab import Vocab
from textclean import CleaningConfig, TextCleanError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CONFIG = "config.json"
VOCAB = "vocab.json"
MODEL_FP32 = "model.onnx"
MODEL_INT8 = "model.int8.onnx"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_version(name: str, file_hashes: dict[str, str]) -> str:
    """`<name>-<12 hex>` from the sorted (file, sha256) pairs: any changed byte changes it."""
    digest = hashlib.sha256()
    for fname in sorted(file_hashes):
        digest.update(f"{fname}\0{file_hashes[fname]}\n".encode())
    return f"{name}-{digest.hexdigest()[:12]}"


def write_manifest(directory: Path, name: str) -> str:
    """Hash every file in `directory` (except the manifest) and write manifest.json."""
    files = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
    hashes = {fname: sha256_file(directory / fname) for fname in files}
    version = content_version(name, hashes)
    manifest = {"format": FORMAT_VERSION, "name": name, "version": version, "files": hashes}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return version


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"{path.name} missing in {path.parent}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return data


def verify_manifest(directory: Path) -> dict[str, Any]:
    manifest = _read_json(directory / MANIFEST)
    if manifest.get("format") != FORMAT_VERSION:
        raise BundleError(f"{directory}: unsupported bundle format {manifest.get('format')!r}")
    recorded: dict[str, str] = manifest.get("files", {})
    for required in (CONFIG, VOCAB, MODEL_FP32):
        if required not in recorded:
            raise BundleError(f"{directory}: manifest does not list {required}")
    # Only plain files in the bundle's own folder: a name like "../x" or "/x", a folder or a
    # symbolic link would let the hashes cover something other than what the bundle holds.
    entries = [p for p in directory.iterdir() if p.name != MANIFEST]
    if odd := sorted(p.name for p in entries if p.is_symlink() or not p.is_file()):
        raise BundleError(f"{directory}: not plain files: {odd}")
    if outside := sorted(name for name in recorded if Path(name).name != name or name == MANIFEST):
        raise BundleError(f"{directory}: manifest names files outside the bundle: {outside}")
    if extra := {p.name for p in entries} - set(recorded):
        raise BundleError(f"{directory}: files not in the manifest: {sorted(extra)}")
    actual = {}
    for fname, expected in recorded.items():
        path = directory / fname
        if not path.is_file():
            raise BundleError(f"{directory}: {fname} listed in the manifest but missing")
        actual[fname] = sha256_file(path)
        if actual[fname] != expected:
            raise BundleError(f"{directory}: {fname} does not match its recorded sha256")
    version = content_version(str(manifest.get("name", "")), actual)
    if version != manifest.get("version"):
        raise BundleError(f"{directory}: version {manifest.get('version')!r} != content {version}")
    return manifest


@dataclass(frozen=True)
class ModelBundle:
    """A verified bundle; `load` raises BundleError if anything was changed after export."""

    path: Path
    version: str
    cleaning: CleaningConfig
    vocab: Vocab = field(repr=False)
    decision: Decision
    max_len: int
    tail_tokens: int
    labels: tuple[str, ...]
    model_args: dict[str, Any]
    files: dict[str, str] = field(repr=False)

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        directory = Path(path)
        if not directory.is_dir():
            raise BundleError(f"bundle directory not found: {directory}")
        manifest = verify_manifest(directory)
        config = _read_json(directory / CONFIG)
        try:
            bundle = cls(
                path=directory,
                version=manifest["version"],
                cleaning=CleaningConfig.from_dict(config["cleaning"]),
                vocab=Vocab.from_json(_read_json(directory / VOCAB)),
                decision=Decision.from_dict(config["decision"]),
                max_len=int(config["max_len"]),
                tail_tokens=int(config.get("tail_tokens", 0)),
                labels=tuple(config["labels"]),
                model_args=dict(config["model_args"]),
                files=dict(manifest["files"]),
            )
        except (KeyError, TypeError, ValueError, TextCleanError) as exc:
            raise BundleError(f"{directory}: invalid config: {exc!r}") from exc
        if bundle.labels != LABELS:
            raise BundleError(f"{directory}: label map {bundle.labels} != {LABELS}")
        if not 0 <= bundle.tail_tokens <= bundle.max_len:
            raise BundleError(f"{directory}: tail_tokens {bundle.tail_tokens} not in 0..max_len")
        logger.info("loaded model bundle %s from %s", bundle.version, directory)
        return bundle

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids exactly as in training (vocabulary, OOV, truncation)."""
        return self.vocab.encode(tokens, self.max_len, self.tail_tokens)

    def model_file(self, quantized: bool) -> Path:
        name = MODEL_INT8 if quantized else MODEL_FP32
        if name not in self.files:
            raise BundleError(f"{self.path}: bundle has no {name}")
        return self.path / name
