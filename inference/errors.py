"""Exceptions of the serving side."""


class BundleError(Exception):
    """A model bundle is missing, malformed or does not match its recorded content hash."""
