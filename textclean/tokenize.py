"""TweetTokenizer's tokens, faster: runs of plain ASCII words skip its regular expression.

nltk's TweetTokenizer runs one large regular expression (URLs, emoticons, phone numbers,
handles, ...) over every character, which made it most of the service's CPU per post. A
whitespace-delimited run of ASCII letters can only ever come out of it as those words, so
each such run is swapped for one placeholder character before tokenising and swapped back
after. The output is identical to `TweetTokenizer(preserve_case=True).tokenize` (checked on
every text of the training sets, 282k, and by tests/unit/test_textclean_tokenize.py).
"""

from __future__ import annotations

import re
from functools import cache

from nltk.tokenize import TweetTokenizer

# A private-use character: never a word, so the tokenizer returns it as a token of its own.
PLACEHOLDER = "\ue000"
_WORD_RUN = re.compile(r"(?<!\S)[A-Za-z]+(?:\s+[A-Za-z]+)*(?!\S)")


@cache
def _tokenizer() -> TweetTokenizer:
    return TweetTokenizer(preserve_case=True, reduce_len=False, strip_handles=False)


def tweet_tokens(text: str) -> list[str]:
    if PLACEHOLDER in text:
        return _tokenizer().tokenize(text)
    runs: list[list[str]] = []

    def set_aside(match: re.Match[str]) -> str:
        runs.append(match.group(0).split())
        return PLACEHOLDER

    words = iter(runs)
    tokens: list[str] = []
    for token in _tokenizer().tokenize(_WORD_RUN.sub(set_aside, text)):
        if token == PLACEHOLDER:
            tokens.extend(next(words))
        else:
            tokens.append(token)
    return tokens
