"""The fast path gives exactly TweetTokenizer's tokens."""

import pytest
from nltk.tokenize import TweetTokenizer

from textclean.tokenize import PLACEHOLDER, tweet_tokens

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
    f"a placeholder {PLACEHOLDER} in the text",
    "Ã¹ mojibake dÃ¹ng \u00b9\u00bd superscripts",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_tokens_as_tweet_tokenizer(text: str) -> None:
    assert tweet_tokens(text) == REFERENCE.tokenize(text)
