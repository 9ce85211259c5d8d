"""Small pieces the entry points share."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not a positive number: must be at least 1")
    return number


def documented_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser whose --help shows the module's docstring as written (usage examples kept)."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
