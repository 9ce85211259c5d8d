"""python -m exporter --checkpoint runs/release/checkpoint.pt --out models/sentiment-bilstm

python -m exporter --upgrade models/sentiment-bilstm   # an older bundle, without its checkpoint
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from exporter.errors import ExportError
from exporter.export import export, upgrade

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter",
        description="Export a training checkpoint to an ONNX model bundle, with parity check.",
    )
    parser.add_argument("--checkpoint", type=Path, help="training checkpoint.pt")
    parser.add_argument("--out", type=Path, help="bundle directory (replaced)")
    parser.add_argument(
        "--upgrade",
        type=Path,
        metavar="BUNDLE",
        help="instead of exporting, bring an older bundle's graphs up to date (new version)",
    )
    parser.add_argument("--quantize", action="store_true", help="also write model.int8.onnx")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |onnx - torch| logit")
    parser.add_argument(
        "--evaluation",
        type=Path,
        default=None,
        help="JSON printed by `python -m training evaluate` for this model, put in the card",
    )
    args = parser.parse_args(argv)
    if args.upgrade is None and (args.checkpoint is None or args.out is None):
        parser.error("--checkpoint and --out are required (or --upgrade BUNDLE)")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
        if args.upgrade is not None:
            print(upgrade(args.upgrade).version)
            return 0
        evaluation = json.loads(args.evaluation.read_text()) if args.evaluation else None
        bundle = export(
            args.checkpoint,
            args.out,
            quantized=args.quantize,
            tolerance=args.tolerance,
            evaluation=evaluation,
        )
    except ExportError:
        logger.exception("export failed")
        return 1
    print(bundle.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
