"""Ablation: one short training per variant of the base config, figures on validation rows.

The variants change one cleaning step (or the neutral head / pooling) at a time; the table
reports validation figures only, never the evaluation sets.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.config import Config

logger = logging.getLogger(__name__)

VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "baseline (defaults)": {},
    # Same data and split, other initial weights and batch order: the noise floor of the table.
    "baseline, other init seed": {"train": {"init_seed": 1}},
    "no HTML stripping": {"cleaning": {"strip_html": False}},
    "URLs/mentions kept raw": {"cleaning": {"urls": "keep", "mentions": "keep"}},
    "URLs/mentions removed": {"cleaning": {"urls": "remove", "mentions": "remove"}},
    "hashtags kept with #": {"cleaning": {"hashtags": "keep"}},
    "no lower-casing": {"cleaning": {"lowercase": False}},
    "repeated chars kept": {"cleaning": {"max_repeat": 0}},
    "numbers -> <num>": {"cleaning": {"numbers": "token"}},
    "contractions split": {"cleaning": {"contractions": "split"}},
    "punctuation removed": {"cleaning": {"punctuation": "remove"}},
    "stop words removed": {"cleaning": {"remove_stopwords": True}},
    "lemmatised": {"cleaning": {"lemmatize": True}},
    "binary head + neutral band": {"model": {"head": "binary"}},
    "attention pooling": {"model": {"pooling": "attention"}},
}


def variant_config(base: Config, name: str, changes: dict[str, dict[str, Any]]) -> Config:
    slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
    return replace(
        base,
        out_dir=str(Path(base.out_dir) / slug),
        cleaning=replace(base.cleaning, **changes.get("cleaning", {})),
        model=replace(base.model, **changes.get("model", {})),
        train=replace(base.train, **changes.get("train", {})),
    )


def summarise(name: str, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    valid = metrics["valid"]
    per_source = {k: v.get("accuracy") for k, v in valid.items() if k != "all"}
    three = [v for v in valid.values() if "macro_recall" in v]
    return {
        "variant": name,
        "accuracy_by_source": per_source,
        "mean_accuracy": round(sum(per_source.values()) / len(per_source), 4),
        "roc_auc_all": valid["all"].get("roc_auc"),
        "macro_f1_3class": three[0]["macro_f1"] if three else None,
        "macro_recall_3class": three[0]["macro_recall"] if three else None,
        "seconds": round(seconds, 1),
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    sources = list(rows[0]["accuracy_by_source"])
    head = [
        "variant",
        *[f"acc {s}" for s in sources],
        "mean acc",
        "ROC-AUC",
        "3-cl macro-F1",
        "3-cl macro-recall",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [
            r["variant"],
            *[str(r["accuracy_by_source"].get(s)) for s in sources],
            str(r["mean_accuracy"]),
            str(r["roc_auc_all"]),
            str(r["macro_f1_3class"]),
            str(r["macro_recall_3class"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_ablation(base: Config, only: list[str] | None = None) -> str:
    from training.train import train

    out = Path(base.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "ablation.jsonl"
    done = {}
    if results_path.exists():  # resumable: a rerun skips finished variants
        done = {r["variant"]: r for r in map(json.loads, results_path.read_text().splitlines())}
    for name, changes in VARIANTS.items():
        if (only and name not in only) or name in done:
            continue
        started = time.time()
        config = variant_config(base, name, changes)
        train(config)
        metrics = json.loads((Path(config.out_dir) / "metrics.json").read_text())
        done[name] = summarise(name, metrics, time.time() - started)
        with results_path.open("a") as fh:
            fh.write(json.dumps(done[name]) + "\n")
        logger.info("ablation %s", json.dumps(done[name]))
    rows = [done[name] for name in VARIANTS if name in done]
    table = markdown_table(rows)
    (out / "ablation.md").write_text(table + "\n")
    return table
