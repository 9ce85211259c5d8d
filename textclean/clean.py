"""The cleaning pipeline: one pure function from text to tokens."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from functools import cache, lru_cache, partial

import regex
from nltk.tokenize.casual import EMOTICON_RE

from textclean.config import NUMBER_TOKEN, URL_TOKEN, USER_TOKEN, CleaningConfig
from textclean.lemmatize import lemmatize_tokens
from textclean.stopwords import NEGATIONS, STOPWORDS
from textclean.tokenize import (
    independent_parts,
    other_part_tokens,
    plain_handle,
    tweet_tokens,
    words_and_stops,
)

_HTML_TAG_RE = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,40}>")
_URL_RE = re.compile(r"^(?:https?://|www\.)\S+$|^\S+\.(?:com|org|net|ly|co)(?:/\S*)?$", re.I)
_MENTION_RE = re.compile(r"^@\w+$")
_HASHTAG_RE = re.compile(r"^#(\w+)$")
_NUMBER_RE = re.compile(r"^[+-]?\d[\d,.:/]*(?:st|nd|rd|th|s|k|am|pm)?$", re.I)
_CONTRACTION_RE = re.compile(r"^(\w+?)(n't|'s|'re|'ve|'ll|'d|'m)$", re.I)
# nltk's emoticon expression without its per-call timer (a plain alternation: no backtracking);
# called with concurrent=False, see `textclean.tokenize`.
_EMOTICON = regex.compile(EMOTICON_RE.pattern, EMOTICON_RE.flags)
# Variation selectors and zero-width joiners that TweetTokenizer leaves as lone tokens.
_INVISIBLE = {"Mn", "Cf", "Me"}


@cache
def _repeat_res(max_repeat: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A test for a run of more than max_repeat characters, and the runs to shorten.

    The test spells its back-references out: `(.)\\1\\1` searched a word in half the time of
    `(.)\\1{2}`.
    """
    return re.compile("(.)" + r"\1" * max_repeat), re.compile(rf"(.)\1{{{max_repeat},}}")


def _is_invisible(token: str) -> bool:
    if token.isascii():  # no ASCII character is in those categories
        return False
    return all(unicodedata.category(ch) in _INVISIBLE for ch in token)


def _is_punctuation(token: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PS" for ch in token) and not _is_emoji(token)


def _is_emoji(token: str) -> bool:
    return any(unicodedata.category(ch) == "So" for ch in token)


@lru_cache(maxsize=1 << 16)
def _is_emoticon(token: str) -> bool:
    # Every emoticon has a non-alphanumeric character; skipping words avoids a slow regex.
    return not token.isalnum() and _EMOTICON.fullmatch(token, concurrent=False) is not None


def _entity(token: str, mode: str, placeholder: str, lowercase: bool) -> tuple[str, ...]:
    if mode == "keep":
        return (token.lower() if lowercase else token,)
    return (placeholder,) if mode == "token" else ()


def _mention(token: str, config: CleaningConfig) -> tuple[str, ...]:
    return _entity(token, config.mentions, USER_TOKEN, config.lowercase)


def _case_and_repeat(token: str, config: CleaningConfig) -> str:
    if config.lowercase:
        token = token.lower()
    if config.max_repeat:
        has_run, runs = _repeat_res(config.max_repeat)
        # Most tokens have no run to shorten, and a search costs a quarter of a sub that finds
        # nothing (which still prepares its replacement template).
        if has_run.search(token):
            token = runs.sub(r"\1" * config.max_repeat, token)
    return token


def _normalise_token(token: str, config: CleaningConfig) -> tuple[str, ...]:
    """Map one raw token to zero or more cleaned tokens."""
    if token.isalpha():  # fast path for plain words, which no rule below but case/repeat touches
        return (_case_and_repeat(token, config),)
    if _is_invisible(token):
        return ()
    if _URL_RE.match(token):
        return _entity(token, config.urls, URL_TOKEN, config.lowercase)
    if _MENTION_RE.match(token):
        return _mention(token, config)
    if _NUMBER_RE.match(token):
        return _entity(token, config.numbers, NUMBER_TOKEN, config.lowercase)
    hashtag = _HASHTAG_RE.match(token)
    if hashtag and config.hashtags != "keep":
        if config.hashtags == "remove":
            return ()
        token = hashtag.group(1)
    emoticon = _is_emoticon(token)
    token = token if emoticon else _case_and_repeat(token, config)
    if config.punctuation == "remove" and not emoticon and _is_punctuation(token):
        return ()
    if config.contractions == "split":
        split = _CONTRACTION_RE.match(token)
        if split:
            return (split.group(1), split.group(2))
    return (token,)


@cache
def _token_normaliser(config: CleaningConfig) -> Callable[[str], tuple[str, ...]]:
    """`_normalise_token` for one config, cached by token.

    Tokens follow Zipf's law, so most lookups are cache hits. The cache is per config and keyed
    by the token alone: hashing the config's fields for every token cost more than the work.
    """
    return lru_cache(maxsize=1 << 16)(partial(_normalise_token, config=config))


# Longer parts (URLs mostly) are rarely repeated; the bound also keeps the memo small:
# at most two generations of 128k parts of at most 40 characters.
_CACHED_PART_CHARS = 40
_PART_MEMO_SIZE = 1 << 17


class _PartMemo(dict[str, str]):
    """One independent part of a text -> its cleaned tokens, joined by spaces ("" if none).

    A dict, so that a text's parts are looked up by `map(memo.__getitem__, parts)` with no
    Python call per part that is known: most are (Zipf), and a call per part cost more than
    the rest of cleaning a warm text. Unknown parts go through `__missing__`. Bounded in two
    generations: when full, the memo becomes the previous generation and starts empty, and a
    part found in the previous one moves back, so frequent parts survive the turnover.
    """

    def __init__(self, clean_part: Callable[[str], str]) -> None:
        super().__init__()
        self._clean_part = clean_part
        self._previous: dict[str, str] = {}

    def __missing__(self, part: str) -> str:
        cleaned = self._previous.get(part)
        if cleaned is None:
            cleaned = self._clean_part(part)
            if cleaned == part:  # most words: keep one string, not two equal ones
                cleaned = part
        if len(part) <= _CACHED_PART_CHARS:
            if len(self) >= _PART_MEMO_SIZE:
                self._previous = dict(self)
                self.clear()
            self[part] = cleaned
        return cleaned


@cache
def _part_memo(config: CleaningConfig) -> _PartMemo:
    normalise = _token_normaliser(config)

    # Shortcuts for the three commonest shapes of a part seen for the first time (unless stop
    # words or lemmas may drop or change its tokens), four in five of new parts: a plain ASCII
    # word, whose one token only case and repeats change; an @handle, one token for the mention
    # rule; and such words followed by stops or joined by ellipses ("day!", "dork....nighty"),
    # whose stops are few and cached.
    words_unfiltered = not (config.remove_stopwords or config.lemmatize)

    def clean_word_or_stop(token: str) -> str:
        if token.isalpha():  # no rule but case and repeats changes a plain word
            return _case_and_repeat(token, config)
        return " ".join(normalise(token))  # stops (few, cached) and words with ' or -

    def clean_part(part: str) -> str:
        if words_unfiltered:
            if part.isascii() and part.isalpha():
                return _case_and_repeat(part, config)
            if part[:1] == "@" and plain_handle(part):
                return " ".join(_mention(part, config))
        raw_tokens = words_and_stops(part)
        if raw_tokens is None:
            raw_tokens = other_part_tokens(part)
        elif words_unfiltered:
            return " ".join(filter(None, map(clean_word_or_stop, raw_tokens)))
        tokens = [token for raw in raw_tokens for token in normalise(raw)]
        return _joined(filter_tokens(tokens, config))

    return _PartMemo(clean_part)


def _joined(tokens: list[str]) -> str:
    """Tokens joined by single spaces. The tokenizer keeps whitespace inside a few tokens (a
    spaced ellipsis ". . .", a phone number "555 123 4567"); the model's input is the cleaned
    text split at whitespace, so such a token is its pieces, in training as in serving."""
    return " ".join(" ".join(tokens).split())


def _whole_text_tokens(text: str, config: CleaningConfig) -> list[str]:
    normalise = _token_normaliser(config)
    return filter_tokens([token for raw in tweet_tokens(text) for token in normalise(raw)], config)


def strip_markup(text: str, config: CleaningConfig) -> str:
    """The step before tokenising: HTML tags out, entities decoded (if the config says so)."""
    return _HTML_TAG_RE.sub(" ", html.unescape(text)) if config.strip_html else text


def filter_tokens(tokens: list[str], config: CleaningConfig) -> list[str]:
    """The steps after normalising: stop words (never negations) and lemmas, if configured."""
    if config.remove_stopwords:
        tokens = [t for t in tokens if t in NEGATIONS or t not in STOPWORDS]
    if config.lemmatize:
        tokens = lemmatize_tokens(tokens)
    return tokens


def clean_tokens(text: str, config: CleaningConfig) -> list[str]:
    """Tokenise and normalise one text according to `config`; may return [].

    The tokens the model looks up, in training as in serving: `clean_text` split at spaces.
    """
    return clean_text(text, config).split()


def clean_text(text: str, config: CleaningConfig) -> str:
    """The cleaned tokens joined by single spaces (the form the model and the cache key take);
    no token holds whitespace."""
    return text_cleaner(config)(text)


@cache
def text_cleaner(config: CleaningConfig) -> Callable[[str], str]:
    """`clean_text` with `config` bound, for many texts: the per-config lookups are done once."""
    cleaned_part = _part_memo(config).__getitem__

    def clean(text: str) -> str:
        text = strip_markup(text, config)
        parts = independent_parts(text)
        if parts is None:
            return _joined(_whole_text_tokens(text, config))
        # Stop words and lemmas are per token, so filtering each part filters the whole text.
        return " ".join(filter(None, map(cleaned_part, parts)))

    return clean
