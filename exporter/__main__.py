"""python -m exporter --checkpoint runs/release/checkpoint.pt --out models/sentiment-bilstm"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from exporter.errors import ExportError
from exporter.export import export

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter",
        description="Export a training checkpoint to an ONNX model bundle, with parity check.",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint.pt")
    parser.add_argument("--out", type=Path, required=True, help="bundle directory (replaced)")
    parser.add_argument("--quantize", action="store_true", help="also write model.int8.onnx")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |onnx - torch| logit")
    parser.add_argument(
        "--evaluation",
        type=Path,
        default=None,
        help="JSON printed by `python -m training evaluate` for this model, put in the card",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
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
