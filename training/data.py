"""Reading labelled CSVs and splitting them deterministically (pure functions + file readers).

Two formats are read:
- `label,text` CSV (optionally .gz): 0 negative, 1 positive, 2 neutral;
- the original Sentiment140 CSV: six columns, no header, latin-1, polarity 0/2/4 first and
  the tweet text last.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from training.config import Config

logger = logging.getLogger(__name__)

SENTIMENT140_POLARITY = {"0": 0, "2": 2, "4": 1}


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 0 negative, 1 positive, 2 neutral
    source: str


def _open_text(path: Path, encoding: str) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return path.open(encoding=encoding, newline="")


def _is_label_text(path: Path) -> bool:
    with _open_text(path, "latin-1") as fh:
        return fh.readline().strip().lower().replace('"', "") == "label,text"


def _read_label_text(path: Path) -> Iterator[tuple[int, str]]:
    with _open_text(path, "utf-8") as fh:
        for row in csv.DictReader(fh):
            yield int(row["label"]), row["text"]


def _read_sentiment140(path: Path) -> Iterator[tuple[int, str]]:
    with _open_text(path, "latin-1") as fh:
        for row in csv.reader(fh):
            if len(row) != 6 or row[0] not in SENTIMENT140_POLARITY:
                raise ValueError(f"{path}: not a Sentiment140 six-column row: {row[:2]}")
            yield SENTIMENT140_POLARITY[row[0]], row[5]


def read_examples(path: str | Path, source: str | None = None) -> list[Example]:
    """All rows of one file, in either supported format."""
    path = Path(path)
    reader = _read_label_text if _is_label_text(path) else _read_sentiment140
    name = source or path.name.split(".")[0]
    rows = [Example(text, label, name) for label, text in reader(path)]
    bad = {r.label for r in rows} - {0, 1, 2}
    if bad:
        raise ValueError(f"{path}: unknown labels {sorted(bad)}")
    logger.info("read %d rows from %s", len(rows), path)
    return rows


def split_bucket(text: str, seed: int) -> float:
    """A stable number in [0, 1) per text: splits survive reordering and reruns."""
    return zlib.crc32(f"{seed}:{text}".encode()) / 2**32


def split_examples(
    rows: list[Example], *, valid_fraction: float, test_fraction: float, seed: int
) -> tuple[list[Example], list[Example], list[Example]]:
    """-> (train, valid, test) by hash of the text."""
    train, valid, test = [], [], []
    for row in rows:
        bucket = split_bucket(row.text, seed)
        if bucket < test_fraction:
            test.append(row)
        elif bucket < test_fraction + valid_fraction:
            valid.append(row)
        else:
            train.append(row)
    return train, valid, test


def write_label_text(rows: list[Example], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "text"])
        writer.writerows((r.label, r.text) for r in rows)


def load_splits(config: Config) -> dict[str, list[tuple[Example, bool]]]:
    """train/valid/test rows of every source, each tagged with its source's 3-class flag."""
    out: dict[str, list[tuple[Example, bool]]] = {"train": [], "valid": [], "test": []}
    for source in config.sources:
        rows = [r for p in source.paths for r in read_examples(config.resolve(p), source.name)]
        train, valid, test = split_examples(
            rows,
            valid_fraction=source.valid_fraction,
            test_fraction=source.test_fraction,
            seed=config.seed,
        )
        if source.max_rows:
            train = random.Random(config.seed).sample(train, min(source.max_rows, len(train)))
        three = source.classes == 3
        out["train"] += [(r, three) for r in train] * source.repeat
        out["valid"] += [(r, three) for r in valid]
        out["test"] += [(r, three) for r in test]
        logger.info(
            "%s: train %d (x%d), valid %d, test %d",
            source.name,
            len(train),
            source.repeat,
            len(valid),
            len(test),
        )
    return out
