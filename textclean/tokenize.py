"""TweetTokenizer's tokens, computed per space-separated part so that parts can be cached.

nltk's TweetTokenizer runs one large regular expression (URLs, emoticons, phone numbers,
handles, ...) over every character: about 90 µs per tweet, as much as the model. Almost none
of its matches can span a space, so the tokens of a text are the tokens of its space-separated
parts, concatenated; and parts ("the", "day!", "lol") repeat across posts far more than texts
do, so their cleaned tokens are cached (see `textclean.clean`).

The exceptions, where a text is tokenised whole:
- phone numbers, whose separators may be spaces ("555 123 4567"): a digit, then a space among
  separator characters, then a digit;
- spaced ellipses (". . ."): a dot, spaces or tabs, a dot;
- HTML entities, which the tokenizer decodes (or drops) first; `&nbsp;` decodes to a space.
No other alternative of the expression matches whitespace, and its boundary checks (`\\b`,
`(?<!@)`, `(?!@)`) see the same thing at a space as at the start or end of a part.
`python -m benchmarks.tokenizer_parity` compares the result with TweetTokenizer on every text
of the data sets (0 differences required); tests/unit/test_textclean_tokenize.py holds the edge
cases.
"""

from __future__ import annotations

import re

import regex
from nltk.tokenize import TweetTokenizer
from nltk.tokenize.casual import ENT_RE, HANG_RE, _replace_html_entities

_TOKENIZER = TweetTokenizer(preserve_case=True, reduce_len=False, strip_handles=False)
# The tokenizer's own expression without nltk's per-call time limit, which costs a quarter of
# a short part's time. The limit guards against long digit runs (super-linear backtracking);
# it is kept for texts longer than a tweet, _UNTIMED_CHARS (at that length the worst run of
# digits or dashes took 0.2-0.6 ms).
_WORDS = regex.compile(_TOKENIZER.PHONE_WORD_RE.pattern, _TOKENIZER.PHONE_WORD_RE.flags)
# The same expression in the standard engine, for ASCII parts only: it runs it in 55-60 % of
# the time, and the two agree on ASCII; on other text their Unicode classes differ (65 of
# 330,285 texts tokenised otherwise).
_ASCII_WORDS = re.compile(
    _TOKENIZER.PHONE_WORD_RE.pattern, _TOKENIZER.PHONE_WORD_RE.flags & (re.I | re.U | re.X)
)
_UNTIMED_CHARS = 280
# Two expressions rather than one alternation: re scans for each one's first character.
_SPACED_DIGITS = re.compile(r"\d[*\-.()+]*\s[\s*\-.()+]*+\d")
_SPACED_DOTS = re.compile(r"\.[^\S\r\n]++\.")
# What the tokenizer decodes (or drops) as an HTML entity, in the tokenizer's own engine.
_ENTITY = regex.compile(ENT_RE.pattern, ENT_RE.flags)
# Any character four times in a row: a cheap test for what HANG_RE may shorten.
_RUN_OF_FOUR = re.compile(r"(.)\1{3}", re.DOTALL)
# HANG_RE without the time limit: a single repeated character class, linear in the input.
_HANG = regex.compile(HANG_RE.pattern, HANG_RE.flags)
# The same in the standard engine, for ASCII text, where its classes are these.
_ASCII_HANG = re.compile(r"([^A-Za-z0-9])\1{3,}")
# Every call into the `regex` engine here passes concurrent=False. By default the engine
# releases the GIL while it matches a str, and getting it back waits for whichever thread
# took it meanwhile: beside a thread running Python, a 5 µs findall took 25-50 µs, and
# 15-17 µs holding the GIL (`python -m benchmarks.regex_gil`). The consumer's loop runs
# beside its inference, I/O and writer threads.


# Two shapes that are half the parts seen for the first time, tokenised without the
# tokenizer's expression, which costs 5-10 µs a part. Run `python -m benchmarks.tokenizer_parity`
# after any change here; tests/unit/test_textclean_tokenize.py also checks random parts.
# - ASCII words, maybe with inner apostrophes or hyphens, maybe joined by (or after) dot runs,
#   then . , ! or ? ("bummer.", "that's!!", "dork....nighty", "...and"): no alternative before
#   the word alternatives can match it (a naked domain needs a letter after a single dot, an
#   emoticon an eye in : ; = 8), dot runs are one ellipsis token and every other mark a token
#   of its own.
#   Possessive runs: a part that is not such words fails without backtracking.
_WORD = r"[A-Za-z]++(?:['-][A-Za-z]++)*+"
_WORDS_THEN_STOPS = re.compile(rf"(?:\.{{2,}})?{_WORD}(?:\.{{2,}}{_WORD})*[.,!?]*+")
_WORD_OR_STOP = re.compile(rf"{_WORD}|\.{{2,}}|[.,!?]")
# - A plain @handle: one token, unless it starts like the emoticons "@8" or "@o8".
_PLAIN_HANDLE = re.compile(r"@\w+", re.ASCII)
_HANDLE_EMOTICON_STARTS = frozenset("8oO")


def independent_parts(text: str) -> list[str] | None:
    """The space-separated parts of `text` (some may be ""), or None if a token may span a space."""
    if (
        _SPACED_DIGITS.search(text)
        or _SPACED_DOTS.search(text)
        or ("&" in text and _ENTITY.search(text, concurrent=False))
    ):
        return None
    return text.split(" ")


def tweet_tokens(text: str) -> list[str]:
    """Exactly `TweetTokenizer(preserve_case=True).tokenize(text)`, its steps holding the GIL.

    Entities are decoded by nltk's own function, which lets the GIL go: only texts with an
    "&" need it.
    """
    if "&" in text:
        text = _replace_html_entities(text)
    return _expression_tokens(_hang_shortened(text))


def _expression_tokens(text: str) -> list[str]:
    """The tokenizer's expression over `text` (entities decoded, runs shortened): in `re` for
    ASCII, with nltk's time limit for a text longer than a tweet."""
    if len(text) > _UNTIMED_CHARS:
        return _TOKENIZER.PHONE_WORD_RE.findall(text, concurrent=False)
    if text.isascii():
        return _ASCII_WORDS.findall(text)
    return _WORDS.findall(text, concurrent=False)


def plain_handle(part: str) -> bool:
    """Whether `part` is one @handle token as it stands: `part_tokens(part) == [part]`.

    The tokenizer shortens runs of four or more non-alphanumerics, in a handle only "_".
    """
    return (
        part[1:2] not in _HANDLE_EMOTICON_STARTS
        and "____" not in part
        and _PLAIN_HANDLE.fullmatch(part) is not None
    )


def words_and_stops(part: str) -> list[str] | None:
    """`part_tokens(part)` for ASCII words with stops and ellipses ("day!", "dork....nighty");
    else None."""
    # Shortening runs (of dots or stops, in such a part) never changes whether it matches.
    if _WORDS_THEN_STOPS.fullmatch(part) is None:
        return None
    return _WORD_OR_STOP.findall(_runs_shortened(part))


def _runs_shortened(part: str) -> str:
    """What the tokenizer's HANG_RE makes of `part`: runs of 4+ non-alphanumerics cut to 3."""
    return _hang_shortened(part) if _RUN_OF_FOUR.search(part) else part


def _hang_shortened(text: str) -> str:
    # The replacement is a function: a template (r"\1\1\1") is parsed again on every call. A
    # part with a run took 2.6-2.8 µs with the template in `regex`, 0.7 this way in `re`.
    if text.isascii():
        return _ASCII_HANG.sub(_three_of, text)
    return _HANG.sub(_three_of, text, concurrent=False)


def _three_of(run: re.Match[str]) -> str:
    return run[1] * 3


def part_tokens(part: str) -> list[str]:
    """`tweet_tokens(part)` for a part from `independent_parts`, with less overhead.

    Such a part has no HTML entity, so the tokenizer's entity pass would change nothing.
    """
    if part.isascii() and part.isalpha():
        return [part]
    tokens = words_and_stops(part)
    return tokens if tokens is not None else other_part_tokens(part)


def other_part_tokens(part: str) -> list[str]:
    """`part_tokens(part)` for a part that `words_and_stops` does not take."""
    part = _runs_shortened(part)
    if plain_handle(part):
        return [part]
    return _expression_tokens(part)
