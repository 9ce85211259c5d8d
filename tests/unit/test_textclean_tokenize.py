"""Cleaning by space-separated parts gives exactly what cleaning the whole text gives."""

import random

import pytest
from nltk.tokenize import TweetTokenizer

from benchmarks.tokenizer_parity import reference_tokens
from textclean import CleaningConfig, clean_text, clean_tokens
from textclean import clean as clean_module
from textclean.tokenize import independent_parts, part_tokens, tweet_tokens

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
    # Runs the tokenizer cuts to three, in ASCII and not: letters and digits of any script stay.
    "caf\u00e9!!!!! \u00bf\u00bf\u00bf\u00bf \u00e9\u00e9\u00e9\u00e9",
    "\u2019\u2019\u2019\u2019x \u0661\u0661\u0661\u0661 \u00e9....",
    "me &amp; you!!!!! ____ 0000 aaaa ????",
    "no\u00a0break\u00a0spaces\u2003em space",
    "dork....nighty airport......heading ...and France..got it..com",
    "loud...don't well-...ok me..you!!",
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
    expected = reference_tokens(text, config)
    for _ in range(2):  # the second time from the memo
        assert clean_tokens(text, config) == expected
        assert clean_text(text, config) == " ".join(expected)


@pytest.mark.parametrize("text", ["ring 555 1234", "wait . . .", "me &amp; you", "+1 (800) 555"])
def test_texts_where_a_token_may_span_a_space_are_tokenised_whole(text: str) -> None:
    assert independent_parts(text) is None


def test_an_ampersand_alone_is_no_entity() -> None:
    assert independent_parts("me & you") == ["me", "&", "you"]


def test_plain_text_is_split_on_spaces() -> None:
    parts = independent_parts(" good  day, isn't it?!")
    assert parts == ["", "good", "", "day,", "isn't", "it?!"]
    assert part_tokens("") == []  # runs of spaces leave empty parts, which hold no tokens


def test_the_part_memo_stays_bounded_and_keeps_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clean_module, "_PART_MEMO_SIZE", 4)
    memo = clean_module._PartMemo(lambda part: part.upper())
    words = [f"w{i}" for i in range(10)]
    for _ in range(3):
        assert list(map(memo.__getitem__, words)) == [w.upper() for w in words]
        assert len(memo) <= 4
    long_part = "x" * (clean_module._CACHED_PART_CHARS + 1)
    assert memo[long_part] == long_part.upper()
    assert long_part not in memo  # long parts (URLs, mostly) are computed, not kept


@pytest.mark.parametrize("text", SAMPLES)
def test_whole_text_tokens_are_the_tokenizers(text: str) -> None:
    assert tweet_tokens(text) == REFERENCE.tokenize(text)


def test_random_parts_give_the_tokenizers_tokens() -> None:
    # Characters that the shortcuts in part_tokens must tell apart: letters that are emoticon
    # mouths or noses, eyes, stops, apostrophes, hyphens, handles, hashtags, arrows, hearts.
    alphabet = "aDdoOpPxz83.,!?:;'-_@#()<>/"
    generator = random.Random(20261202)
    parts = {"".join(generator.choices(alphabet, k=generator.randint(1, 7))) for _ in range(30_000)}
    handle_alphabet = "aDdoOpP8x_z3"
    parts |= {
        "@" + "".join(generator.choices(handle_alphabet, k=generator.randint(1, 6)))
        for _ in range(3_000)
    }
    # Words, dot runs and stops, as in "dork....nighty" or "it..co.uk" (naked domains).
    word_alphabet = "acoukmt.'-!,"
    parts |= {
        "".join(generator.choices(word_alphabet, k=generator.randint(3, 12))) for _ in range(20_000)
    }
    different = [p for p in parts if part_tokens(p) != REFERENCE.tokenize(p)]
    assert different == []
