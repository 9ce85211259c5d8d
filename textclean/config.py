"""Cleaning settings: every step is a field, and the whole object travels in the model bundle."""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, fields
from functools import cached_property
from typing import Any, Literal

from textclean.errors import TextCleanError

EntityMode = Literal["keep", "token", "remove"]
HashtagMode = Literal["keep", "strip", "remove"]
PunctuationMode = Literal["keep", "remove"]
ContractionMode = Literal["keep", "split"]

URL_TOKEN = "<url>"
USER_TOKEN = "@user"
NUMBER_TOKEN = "<num>"

_CHOICES: dict[str, tuple[str, ...]] = {
    "urls": ("keep", "token", "remove"),
    "mentions": ("keep", "token", "remove"),
    "numbers": ("keep", "token", "remove"),
    "hashtags": ("keep", "strip", "remove"),
    "punctuation": ("keep", "remove"),
    "contractions": ("keep", "split"),
}


@dataclass(frozen=True)
class CleaningConfig:
    """Settings of `clean_tokens`, applied in this order.

    strip_html: drop tags such as IMDB's ``<br />`` and decode doubly escaped entities
        (TweetTokenizer itself always decodes ``&amp;`` and friends).
    urls / mentions / numbers: keep as is, replace by one placeholder token, or remove.
    hashtags: keep ``#word``, strip the ``#`` (keep ``word``), or remove the token.
    lowercase: lower-case every token except emoticons such as ``:D``.
    max_repeat: cap runs of one character ("soooo" -> "soo"); 0 disables.
    contractions: ``split`` turns "don't" into "do n't" (the Penn Treebank style of SST-2).
    punctuation: ``remove`` drops tokens made only of punctuation, keeping emoticons.
    remove_stopwords: drop common function words; negations are never dropped.
    lemmatize: WordNet lemmas (needs WordNet data, see `textclean.lemmatize`).
    """

    strip_html: bool = True
    urls: EntityMode = "token"
    mentions: EntityMode = "token"
    numbers: EntityMode = "keep"
    hashtags: HashtagMode = "strip"
    lowercase: bool = True
    max_repeat: int = 2
    contractions: ContractionMode = "keep"
    punctuation: PunctuationMode = "keep"
    remove_stopwords: bool = False
    lemmatize: bool = False

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise TextCleanError(f"{name}={value!r}: expected one of {allowed}")
        if self.max_repeat < 0:
            raise TextCleanError(f"max_repeat={self.max_repeat}: must be >= 0")

    def __hash__(self) -> int:
        # The cleaning caches are per config and looked up once per text: hash it once.
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash(astuple(self))

    def __getstate__(self) -> dict[str, Any]:
        # Without the cached hash: string hashes differ from one process to the next.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleaningConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            # A bundle from a newer cleaner must not be silently served with different cleaning.
            raise TextCleanError(f"unknown cleaning settings: {sorted(unknown)}")
        return cls(**data)
