"""Exceptions of the text cleaner."""


class TextCleanError(ValueError):
    """A cleaning setting is invalid or a resource it needs is missing."""
