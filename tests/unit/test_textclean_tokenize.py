"""Cleaning by space-separated parts gives exactly what cleaning the whole text gives."""

import pytest
from nltk.tokenize import TweetTokenizer

from benchmarks.tokenizer_parity import reference_tokens
from textclean import CleaningConfig, clean_tokens
from textclean.tokenize import independent_parts, part_tokens

REFERENCE = TweetTokenizer(preserve_case=True, reduce_len=False, strip_handles=False)

SAMPLES = [
    "",
    "   ",
    "just plain words here",
    "@switchfoot http://twitpic.com/2y1zl - Awww, that's a bummer.  You shoulda got David :D",
    "call me at (555) 123-4567 or +1 800 555 1234 now",
    "numbers 12 345 6789 and 3.14 and 1,000,000 and 9/11",
    "I <3 you so much!!!!!! :-) ;) xD >:( </3",
    "#happy #sad_day @user_1 email me at a.b@c.com www.example.com",
    "&amp; &lt;3 &quot;quoted&quot; caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001f600\U0001f600",
    "don't can't won't it's y'all rock-n-roll well-known",
    "soooooo goooood ... ?!?! ---> <--- ***** ____",
    "tab\tseparated\nnew line\r\nwords",
    "Ã¹ mojibake dÃ¹ng \u00b9\u00bd superscripts",
    # Matches that span a space: phone numbers, spaced ellipses, entities decoding to spaces.
    "ring 555 1234 now",
    "ring 555 - 1234 or (555) 555-1234 or +1 (555) 555 1234",
    "wait . . . what",
    "wait .\t. what",
    "a&nbsp;b &#32;c",
    "rock & roll, me & you &",
    "unknown &foo; entities &#x41; &a\x1cb; dropped",
    "x@8ball @o8 @O8 @8 8)",
    "4    spaces and !!!!    runs ....    ",
    "no\u00a0break\u00a0spaces\u2003em space",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_parts_give_the_tokenizers_tokens(text: str) -> None:
    parts = independent_parts(text)
    tokens = REFERENCE.tokenize(text)
    if parts is not None:
        assert [token for part in parts for token in part_tokens(part)] == tokens


@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize(
    "config",
    [CleaningConfig(), CleaningConfig(numbers="token", hashtags="keep", punctuation="remove")],
)
def test_cleaning_by_parts_matches_whole_text_cleaning(text: str, config: CleaningConfig) -> None:
    assert clean_tokens(text, config) == reference_tokens(text, config)
    assert clean_tokens(text, config) == reference_tokens(text, config)  # from the caches


@pytest.mark.parametrize("text", ["ring 555 1234", "wait . . .", "me &amp; you", "+1 (800) 555"])
def test_texts_where_a_token_may_span_a_space_are_tokenised_whole(text: str) -> None:
    assert independent_parts(text) is None


def test_an_ampersand_alone_is_no_entity() -> None:
    assert independent_parts("me & you") == ["me", "&", "you"]


def test_plain_text_is_split_on_spaces() -> None:
    assert independent_parts("  good  day, isn't it?! ") == ["good", "day,", "isn't", "it?!"]
