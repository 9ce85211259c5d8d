"""python -m training {train,evaluate,ablation} --help"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from training.config import DATA_ROOT_ENV, DEFAULT_DATA_ROOT


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train from a TOML config, write a checkpoint and reports")
    p.add_argument("--config", type=Path, required=True, help="e.g. configs/release.toml")
    p.add_argument(
        "--data-root",
        default=None,
        help=f"root of relative data paths (default: ${DATA_ROOT_ENV}, else the config's "
        f"data_root, else {DEFAULT_DATA_ROOT})",
    )
    p.add_argument("--out-dir", default=None, help="overrides the config's out_dir")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="evaluate a bundle with onnxruntime; prints one JSON object"
    )
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="label,text CSV(.gz) or original Sentiment140 CSV; several allowed",
    )
    p.add_argument("--quantized", action="store_true", help="use model.int8.onnx")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--baselines", action="store_true", help="also TF-IDF+LogReg and VADER")
    p.add_argument(
        "--train-config",
        type=Path,
        default=None,
        help="baselines train on this config's train split (same rows as the model)",
    )
    p.add_argument(
        "--train-data",
        type=Path,
        nargs="*",
        default=[],
        help="or: baselines train on these CSV files",
    )
    p.add_argument("--data-root", default=None, help=f"for --train-config (${DATA_ROOT_ENV})")


def _add_ablation(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablation", help="short trainings, one per cleaning/model variant")
    p.add_argument(
        "--config", type=Path, required=True, help="base config, e.g. configs/ablation.toml"
    )
    p.add_argument("--data-root", default=None, help=f"(default ${DATA_ROOT_ENV} or config)")
    p.add_argument("--out-dir", default=None, help="overrides the config's out_dir")
    p.add_argument("--only", nargs="*", default=None, help="run only these variant names")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_ablation(sub)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    if args.command == "train":
        from training.config import load_config
        from training.train import train

        print(train(load_config(args.config, data_root=args.data_root, out_dir=args.out_dir)))
    elif args.command == "evaluate":
        from training.evaluate import evaluate

        if args.data_root:
            os.environ[DATA_ROOT_ENV] = args.data_root
        result = evaluate(
            args.bundle,
            args.data,
            quantized=args.quantized,
            threads=args.threads,
            baselines=args.baselines,
            train_config=args.train_config,
            train_data=args.train_data,
        )
        print(json.dumps(result))
    else:
        from training.ablation import run_ablation
        from training.config import load_config

        config = load_config(args.config, data_root=args.data_root, out_dir=args.out_dir)
        print(run_ablation(config, args.only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
