"""ONNX export of training checkpoints into verified model bundles."""

from exporter.errors import ExportError, ParityError
from exporter.export import export

__all__ = ["ExportError", "ParityError", "export"]
