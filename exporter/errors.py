"""Exceptions of the exporter."""


class ExportError(Exception):
    """The export could not produce a valid bundle."""


class ParityError(ExportError):
    """onnxruntime and PyTorch disagree beyond the tolerance."""
