"""MODEL_CARD.md text from the checkpoint's config and metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _figures_table(report: dict[str, Any]) -> str:
    lines = [
        "| set | n | accuracy | F1 | ROC-AUC | 3-class macro-F1 | 3-class macro-recall |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in report.items():
        if name.startswith("_") or not isinstance(m, dict):
            continue
        lines.append(
            f"| {name} | {m.get('n', '')} | {m.get('accuracy', '')} | {m.get('f1', '')} | "
            f"{m.get('roc_auc', '')} | {m.get('macro_f1', '')} | {m.get('macro_recall', '')} |"
        )
    return "\n".join(lines)


def _evaluation_section(evaluation: dict[str, Any] | None) -> str:
    """Figures of `python -m training evaluate --baselines` (one run), if given."""
    if not evaluation:
        return "Figures on the external evaluation sets, next to the baselines, are in the docs."
    lines = [
        f"## Evaluation sets (onnxruntime, bundle {evaluation.get('bundle')}, same model.onnx)",
        "| set | system | n | accuracy | ROC-AUC | 3-class macro-F1 | 3-class macro-recall |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in evaluation.get("datasets", [evaluation]):
        systems = {"BiLSTM": result, **result.get("baselines", {})}
        data = "/".join(Path(result["data"]).parts[-2:])
        for name, m in systems.items():
            lines.append(
                f"| {data} | {name} | {m.get('n')} | {m.get('accuracy')} | "
                f"{m.get('roc_auc')} | {m.get('macro_f1', '')} | {m.get('macro_recall', '')} |"
            )
    return "\n".join(lines)


def model_card(
    checkpoint: dict[str, Any],
    export_info: dict[str, Any],
    evaluation: dict[str, Any] | None = None,
) -> str:
    config = checkpoint["config"]
    metrics = checkpoint["metrics"]
    sources = "\n".join(
        f"- `{s['name']}`: {', '.join(s['paths'])} (classes {s['classes']}, validation "
        f"{s['valid_fraction']:.0%}, held out {s['test_fraction']:.0%}, repeat {s['repeat']})"
        for s in config["sources"]
    )
    exported = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    pooling = checkpoint["model_args"]["pooling"]
    init_from = config["train"].get("init_from")
    stage = f" (second stage, continued from `{init_from}`)" if init_from else ""
    return f"""# Model card: BiLSTM tweet sentiment

- Exported: {exported}; trained in {metrics.get("train_seconds")} s on CPU{stage},
  seed {config["seed"]}.
- Architecture: Embedding -> BiLSTM -> {pooling} pooling -> dropout -> dense
  (`{json.dumps(checkpoint["model_args"])}`), served with onnxruntime.
- Labels: 0 negative, 1 positive, 2 neutral. Decision: `{json.dumps(checkpoint["decision"])}`
  (chosen on 3-class validation rows for macro-recall).
- `positive_probability` is the two-way P(positive | positive or negative).
- Cleaning (applied identically when serving): `{json.dumps(checkpoint["cleaning"])}`.
- Export: {json.dumps(export_info)}

## Training data
{sources}

Sentiment140 labels come from emoticons and its negatives/positives were collected on different
dates, so topical words of April or June 2009 can leak into the sentiment. Out-of-domain
reviews (SST-2, IMDB) are in the mix for robustness; the model is still tuned for tweets.

## Figures on held-out rows of the training sources ({metrics["report"].get("_split")})
{_figures_table(metrics["report"])}

{_evaluation_section(evaluation)}

## Limits
English only; sarcasm, mixed sentiment and non-2009 slang are weak spots; neutral is learnt
from SemEval tweets only.
"""
