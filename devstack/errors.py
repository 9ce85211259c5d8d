"""Errors raised by the embedded stack."""


class StackError(RuntimeError):
    """A server could not be started, reached or stopped."""


class BinaryNotFoundError(StackError):
    """A server binary is missing: the `embedded` extra is not installed."""
