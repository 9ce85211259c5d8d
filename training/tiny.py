"""A tiny bundle trained in seconds on synthetic sentences, for other components' tests.

from training.tiny import make_tiny_bundle
bundle_dir = make_tiny_bundle(tmp_path / "bundle")
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from training.config import Config, ModelConfig, SourceConfig, TrainConfig
from training.data import Example, write_label_text

POSITIVE_WORDS = ("good", "great", "love", "happy", "awesome", "wonderful", "best", "nice")
NEGATIVE_WORDS = ("bad", "awful", "hate", "sad", "terrible", "worst", "horrible", "angry")
NEUTRAL_WORDS = ("the", "meeting", "is", "at", "noon", "train", "arrives", "today", "report")
FILLER = ("this", "movie", "phone", "day", "weather", "@user", "so", "really", "the", "is")


def synthetic_examples(n: int, seed: int = 0, *, neutral: bool = True) -> list[Example]:
    """Short tweet-like sentences: sentiment words plus filler; label 2 = neutral."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 3 if neutral else i % 2
        words = {0: NEGATIVE_WORDS, 1: POSITIVE_WORDS, 2: NEUTRAL_WORDS}[label]
        tokens = rng.choices(words, k=rng.randint(1, 3)) + rng.choices(FILLER, k=rng.randint(1, 6))
        rng.shuffle(tokens)
        text = " ".join(tokens) + rng.choice(["", "!", " !!!", " http://t.co/x", " #tag"])
        rows.append(Example(f"{text} {i}", label, "synthetic"))
    return rows


def tiny_config(
    data_dir: Path, out_dir: Path, *, max_steps: int = 80, head: str = "three_class"
) -> Config:
    write_label_text(synthetic_examples(1200, seed=1), data_dir / "tweets3.csv")
    write_label_text(synthetic_examples(1200, seed=2, neutral=False), data_dir / "reviews2.csv.gz")
    return Config(
        sources=(
            SourceConfig(
                "tweets3", ("tweets3.csv",), classes=3, valid_fraction=0.15, test_fraction=0.15
            ),
            SourceConfig("reviews2", ("reviews2.csv.gz",), classes=2, valid_fraction=0.1),
        ),
        seed=7,
        out_dir=str(out_dir),
        data_root=str(data_dir),
        model=ModelConfig(embed_dim=16, hidden_dim=16, head=head, dropout=0.1, embed_dropout=0.0),
        train=TrainConfig(
            epochs=1,
            batch_size=32,
            lr=1e-2,
            min_freq=2,
            max_vocab=2000,
            max_len=32,
            evals_per_epoch=4,
            max_steps=max_steps,
            threads=1,
            patience=100,
        ),
    )


def make_tiny_bundle(out_dir: Path, *, quantize: bool = False, max_steps: int = 80) -> Path:
    """Train a few steps on self-made data and export a valid bundle to out_dir (~10 s)."""
    from exporter.export import export
    from training.train import train

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="tiny-bundle-") as tmp:
        config = tiny_config(Path(tmp) / "data", Path(tmp) / "run", max_steps=max_steps)
        checkpoint = train(config)
        export(checkpoint, out_dir, quantized=quantize)
    return out_dir
