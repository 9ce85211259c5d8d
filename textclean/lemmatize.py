"""Optional WordNet lemmatisation (WordNet's own "morphy" rules, noun first, then verb).

nltk's downloader cannot be used here, so the WordNet 3.0 ``dict`` files are read directly
from ``$TEXTCLEAN_WORDNET_DIR`` or Debian's ``wordnet-base`` package (``/usr/share/wordnet``).
Without them the step fails loudly instead of silently skipping.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from textclean.errors import TextCleanError

logger = logging.getLogger(__name__)

_CANDIDATE_DIRS = ("/usr/share/wordnet", "/usr/share/wordnet/dict")
_SUFFIXES = {
    "noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
             ("shes", "sh"), ("men", "man"), ("ies", "y")),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
             ("ing", "e"), ("ing", "")),
}  # fmt: skip


@dataclass(frozen=True)
class _WordNet:
    lemmas: dict[str, frozenset[str]]
    exceptions: dict[str, dict[str, str]]

    def morphy(self, word: str, pos: str) -> str | None:
        if word in self.exceptions[pos]:
            return self.exceptions[pos][word]
        if word in self.lemmas[pos]:
            return word
        for suffix, repl in _SUFFIXES[pos]:
            if word.endswith(suffix):
                candidate = word[: len(word) - len(suffix)] + repl
                if candidate in self.lemmas[pos]:
                    return candidate
        return None


def _wordnet_dir() -> Path:
    env = os.environ.get("TEXTCLEAN_WORDNET_DIR")
    for candidate in ([env] if env else []) + list(_CANDIDATE_DIRS):
        if (Path(candidate) / "index.noun").exists():
            return Path(candidate)
    raise TextCleanError(
        "lemmatize=True needs WordNet 3.0 data: `apt-get install wordnet-base` "
        "(/usr/share/wordnet) or set TEXTCLEAN_WORDNET_DIR to a WordNet dict directory"
    )


def _read_index(path: Path) -> frozenset[str]:
    with path.open(encoding="latin-1") as fh:
        return frozenset(line.split(" ", 1)[0] for line in fh if not line.startswith(" "))


def _read_exceptions(path: Path) -> dict[str, str]:
    with path.open(encoding="latin-1") as fh:
        pairs = (line.split() for line in fh)
        return {p[0]: p[1] for p in pairs if len(p) >= 2}


@cache
def _wordnet() -> _WordNet:
    directory = _wordnet_dir()
    logger.info("reading WordNet from %s", directory)
    return _WordNet(
        lemmas={pos: _read_index(directory / f"index.{pos}") for pos in _SUFFIXES},
        exceptions={pos: _read_exceptions(directory / f"{pos}.exc") for pos in _SUFFIXES},
    )


def lemmatize_word(word: str) -> str:
    if not word.isalpha():
        return word
    wordnet = _wordnet()
    return wordnet.morphy(word, "noun") or wordnet.morphy(word, "verb") or word


def lemmatize_tokens(tokens: list[str]) -> list[str]:
    return [lemmatize_word(tok) for tok in tokens]
