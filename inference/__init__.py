"""Serving side: bundle loading and verification, onnxruntime classifier; torch-free."""

from pathlib import Path

from inference.bundle import ModelBundle
from inference.decision import LABELS, Decision
from inference.errors import BundleError
from inference.model import Prediction, SentimentModel
from inference.vocab import Vocab

# The released bundle shipped in the repository; the consumer loads it by default.
DEFAULT_BUNDLE_PATH: Path = Path(__file__).resolve().parent.parent / "models" / "sentiment-bilstm"

__all__ = [
    "DEFAULT_BUNDLE_PATH",
    "LABELS",
    "BundleError",
    "Decision",
    "ModelBundle",
    "Prediction",
    "SentimentModel",
    "Vocab",
]
