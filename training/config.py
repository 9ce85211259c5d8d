"""Training configuration: a TOML file read into frozen dataclasses (defaults are readable)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from textclean import CleaningConfig

DATA_ROOT_ENV = "SENTIMENT_DATA_ROOT"
DEFAULT_DATA_ROOT = "../shared/data"


@dataclass(frozen=True)
class SourceConfig:
    name: str
    paths: tuple[str, ...]
    classes: int = 2  # 3 = rows may be neutral and train the neutral logit
    valid_fraction: float = 0.02  # early stopping / thresholds only
    test_fraction: float = 0.0  # held out for final figures, written to <out_dir>/heldout/
    max_rows: int = 0  # 0 = all (taken after the split, for quick runs)
    repeat: int = 1  # oversampling of small in-domain sets


@dataclass(frozen=True)
class ModelConfig:
    embed_dim: int = 96
    hidden_dim: int = 64
    head: str = "three_class"  # or "binary" (sigmoid + neutral band)
    pooling: str = "mean"  # or "attention"
    dropout: float = 0.3
    embed_dropout: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_len: int = 320
    tail_tokens: int = 0  # of a long text keep the last tail_tokens too (0: just the first max_len)
    min_freq: int = 2
    max_vocab: int = 40000
    patience: int = 2  # evaluations without improvement before stopping
    # "loss": validation loss; "score": mean over sources of accuracy (and 3-class macro-recall)
    early_stopping: str = "loss"
    evals_per_epoch: int = 2
    max_steps: int = 0  # 0 = no limit (tests use a few steps)
    threads: int = 2
    init_from: str = ""  # checkpoint to continue from (same data, a short low-LR second stage)
    init_seed: int = 0  # added to the seed for weights and batch order only (not the data split)
    # > 1: also try the mean of the weights of the last k = 2..average_last evaluations up to the
    # best one; the mean replaces the best weights only if its validation score is higher.
    average_last: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.tail_tokens <= self.max_len:
            raise ValueError(
                f"tail_tokens must be 0..max_len ({self.max_len}), not {self.tail_tokens}"
            )


@dataclass(frozen=True)
class Config:
    sources: tuple[SourceConfig, ...]
    seed: int = 1337
    out_dir: str = "runs/default"
    data_root: str = DEFAULT_DATA_ROOT
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def resolve(self, path: str) -> Path:
        """Source paths are relative to data_root unless absolute."""
        p = Path(path)
        return p if p.is_absolute() else Path(self.data_root) / p


def _build(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    if unknown := set(data) - known:
        raise ValueError(f"{cls.__name__}: unknown settings {sorted(unknown)}")
    return cls(**data)


def config_from_dict(raw: dict[str, Any]) -> Config:
    raw = dict(raw)
    sources = tuple(
        _build(SourceConfig, {**s, "paths": tuple(s["paths"])}) for s in raw.pop("source", [])
    )
    if not sources:
        raise ValueError("config needs at least one [[source]]")
    return Config(
        sources=sources,
        cleaning=CleaningConfig.from_dict(raw.pop("cleaning", {})),
        model=_build(ModelConfig, raw.pop("model", {})),
        train=_build(TrainConfig, raw.pop("train", {})),
        **raw,
    )


def load_config(
    path: str | Path, *, data_root: str | None = None, out_dir: str | None = None
) -> Config:
    """Read a TOML config; data_root: CLI flag, else $SENTIMENT_DATA_ROOT, else the file's value."""
    with Path(path).open("rb") as fh:
        config = config_from_dict(tomllib.load(fh))
    root = data_root or os.environ.get(DATA_ROOT_ENV)
    if root:
        config = replace(config, data_root=root)
    if out_dir:
        config = replace(config, out_dir=out_dir)
    return config
