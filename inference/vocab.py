"""Token vocabulary shared by training and serving (one place for ids, padding and OOV)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat

import numpy as np

PAD = "<pad>"
UNK = "<unk>"


@dataclass(frozen=True)
class Vocab:
    tokens: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens[:2] != (PAD, UNK):
            raise ValueError("vocabulary must start with <pad>, <unk>")
        object.__setattr__(self, "index", {tok: i for i, tok in enumerate(self.tokens)})

    pad_id = 0
    unk_id = 1

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, docs: Iterable[Sequence[str]], *, min_freq: int, max_size: int) -> Vocab:
        counts = Counter(tok for doc in docs for tok in doc)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: -counts[t])
        return cls((PAD, UNK, *ranked[: max_size - 2]))

    def encode(self, tokens: Sequence[str], max_len: int, tail_tokens: int = 0) -> list[int]:
        """Token ids of at most max_len tokens; an empty text becomes one <unk> so it still scores.

        Long texts keep their first max_len - tail_tokens and their last tail_tokens tokens:
        reviews tend to state their verdict at the end.
        """
        tokens = truncate(tokens, max_len, tail_tokens)
        ids = [self.index.get(tok, self.unk_id) for tok in tokens]
        return ids or [self.unk_id]

    def encode_padded(
        self, token_lists: Sequence[Sequence[str]], max_len: int, tail_tokens: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """`pad_batch` of every `encode`, with the per-token work in C rather than Python.

        For the server, where this ran once per post on the GIL: a third the time.
        """
        lists = [truncate(tokens, max_len, tail_tokens) or (UNK,) for tokens in token_lists]
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        return self._padded(
            map(self.index.get, chain.from_iterable(lists), repeat(self.unk_id)), lengths
        )

    def _padded(self, ids: Iterable[int], lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of `lengths` ids each, taken in order from `ids`, right-padded."""
        flat = np.fromiter(ids, dtype=np.int64, count=int(lengths.sum()))
        padded = np.full((len(lengths), int(lengths.max(initial=1))), self.pad_id, dtype=np.int64)
        padded[np.arange(padded.shape[1]) < lengths[:, None]] = flat  # row by row, in order
        return padded, lengths

    def encode_joined(
        self, texts: Sequence[str], max_len: int, tail_tokens: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode_padded` of each text's whitespace-separated tokens, for many texts.

        The serving path: `clean_text` joins tokens by single spaces, so the whole batch is
        split once, in C, instead of text by text (3.6 -> 2.0 µs per post). Texts in
        any other form (other whitespace, runs of spaces, too many tokens) take
        `encode_padded`, with the same result.
        """
        if "" in texts:  # no tokens: one <unk>, as `encode` gives it
            texts = [text or UNK for text in texts]
        joined = " ".join(texts)
        lengths = _joined_lengths(texts, joined, max_len)
        if lengths is None:
            return self.encode_padded([text.split() for text in texts], max_len, tail_tokens)
        flat = joined.split(" ")
        return self._padded(map(self.index.get, flat, repeat(self.unk_id)), lengths)

    def to_json(self) -> dict[str, object]:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Vocab:
        tokens = data["tokens"]
        if not isinstance(tokens, list):
            raise ValueError("vocab.json: 'tokens' must be a list")
        return cls(tuple(tokens))


def _joined_lengths(texts: Sequence[str], joined: str, max_len: int) -> np.ndarray | None:
    """Tokens per text if every text is tokens joined by single spaces, none longer than
    max_len tokens; else None."""
    # isprintable() is false for every whitespace character but the space.
    if "  " in joined or joined[:1] == " " or joined[-1:] == " " or not joined.isprintable():
        return None
    lengths = np.fromiter(map(str.count, texts, repeat(" ")), np.int64, len(texts)) + 1
    return None if len(texts) and lengths.max() > max_len else lengths


def truncate(tokens: Sequence[str], max_len: int, tail_tokens: int) -> Sequence[str]:
    """At most max_len tokens: the first max_len - tail_tokens and the last tail_tokens."""
    if len(tokens) <= max_len:
        return tokens
    head = list(tokens[: max_len - tail_tokens])
    return head + list(tokens[len(tokens) - tail_tokens :]) if tail_tokens else head


def pad_batch(encoded: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists to the longest one: (token_ids [B, T] int64, lengths [B] int64)."""
    lengths = np.fromiter((len(x) for x in encoded), dtype=np.int64, count=len(encoded))
    ids = np.full((len(encoded), int(lengths.max(initial=1))), pad_id, dtype=np.int64)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = seq
    return ids, lengths
