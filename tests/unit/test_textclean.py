"""Behaviour of the shared text cleaner."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from textclean import CleaningConfig, TextCleanError, clean_text, clean_tokens
from textclean import lemmatize as lemmatize_module
from textclean.clean import _part_memo, _whole_text_tokens, strip_markup

DEFAULT = CleaningConfig()


def test_urls_and_mentions_become_placeholders() -> None:
    tokens = clean_tokens("@Bob look http://t.co/abc and www.example.com", DEFAULT)
    assert tokens == ["@user", "look", "<url>", "and", "<url>"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("keep", ["@bob", "hi"]), ("token", ["@user", "hi"]), ("remove", ["hi"])],
)
def test_mention_modes(mode: str, expected: list[str]) -> None:
    assert clean_tokens("@Bob hi", CleaningConfig(mentions=mode)) == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("keep", ["#happy", "day"]), ("strip", ["happy", "day"]), ("remove", ["day"])],
)
def test_hashtag_modes(mode: str, expected: list[str]) -> None:
    assert clean_tokens("#Happy day", CleaningConfig(hashtags=mode)) == expected


def test_lowercase_keeps_emoticons() -> None:
    assert clean_tokens("GREAT :D", DEFAULT) == ["great", ":D"]
    assert clean_tokens("GREAT :D", CleaningConfig(lowercase=False)) == ["GREAT", ":D"]


def test_repeated_characters_are_capped() -> None:
    assert clean_tokens("sooooo goooood", DEFAULT) == ["soo", "good"]
    assert clean_tokens("sooooo", CleaningConfig(max_repeat=0)) == ["sooooo"]
    for cap, expected in [(1, "so yes"), (3, "sooo yesss"), (4, "soooo yesss")]:
        assert clean_text("sooooo yesss", CleaningConfig(max_repeat=cap)) == expected


def test_html_tags_and_entities() -> None:
    assert clean_tokens("bad<br /><br />movie &amp;amp; plot", DEFAULT) == [
        "bad",
        "movie",
        "&",
        "plot",
    ]


def test_punctuation_removal_keeps_emoticons() -> None:
    config = CleaningConfig(punctuation="remove")
    assert clean_tokens("wow!!! ... great :) , ok", config) == ["wow", "great", ":)", "ok"]
    assert "!" in clean_tokens("wow!!!", DEFAULT)


def test_stopword_removal_never_drops_negations() -> None:
    config = CleaningConfig(remove_stopwords=True)
    text = "I am not happy, it was never good and I don't like it. no way, nothing"
    tokens = clean_tokens(text, config)
    for negation in ("not", "never", "don't", "no", "nothing"):
        assert negation in tokens
    for stopword in ("i", "am", "it", "was", "and"):
        assert stopword not in tokens


def test_contractions_split_in_treebank_style() -> None:
    config = CleaningConfig(contractions="split", remove_stopwords=True)
    assert clean_tokens("it doesn't work", config) == ["n't", "work"]


def test_numbers_token() -> None:
    assert clean_tokens("at 5pm on 2009", CleaningConfig(numbers="token")) == [
        "at",
        "<num>",
        "on",
        "<num>",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\u200d", "<br />"])
def test_empty_input_gives_empty_output(text: str) -> None:
    assert clean_tokens(text, DEFAULT) == []
    assert clean_text(text, DEFAULT) == ""


def test_clean_text_round_trips_to_tokens() -> None:
    text = "@x I LOVE it 😂😂 http://a.b #yes !!!"
    assert clean_text(text, DEFAULT).split(" ") == clean_tokens(text, DEFAULT)


@pytest.mark.parametrize(
    "config",
    [
        DEFAULT,
        CleaningConfig(lowercase=False, max_repeat=0),
        CleaningConfig(numbers="token", remove_stopwords=True),
        CleaningConfig(punctuation="remove", contractions="split", hashtags="remove"),
        CleaningConfig(mentions="keep", lowercase=False),
        CleaningConfig(mentions="remove"),
    ],
)
def test_cleaning_by_parts_equals_cleaning_the_whole_text(config: CleaningConfig) -> None:
    # The service cleans each space-separated part once and remembers it, with shortcuts for
    # common shapes of part; the result must be the tokenizer's over the whole text.
    texts = [
        "Soooo HAPPY today!!! @bob_1 http://x.co/a #WinNING 2nd :D don't can't",
        "@Bob @a____b @8) @o8 @oprah @x:) @ @@y @bob! (@bob) @Zoë",
        "the the The THE tHe worrrrd Worrrrd w0rd x-ray rock'n'roll ...wait... well...ok",
        'I\'m sooo TIRED.. , !! ?? ;) (yes) "quoted" café ÇA VA ÓÓÓÓ straße',
        "day! Tonight..... wowww!!!!! ok?!?! Yes,, no.! it's. Hmm:",
    ]
    _part_memo.cache_clear()  # fresh memos: the first round takes the paths of new parts
    for text in texts * 2:  # the second round is served from the memo
        by_parts = clean_tokens(text, config)
        whole = _whole_text_tokens(strip_markup(text, config), config)
        assert by_parts == whole, text  # no token of these holds whitespace


@pytest.mark.parametrize(
    "text", ["so tired . . . night", "call me on 555 123 4567 ok", "x .\t. y", "a\nb  c"]
)
def test_training_tokens_are_the_tokens_the_service_looks_up(text: str) -> None:
    # The service splits the cleaned text at whitespace; training must see the same tokens,
    # including where the tokenizer keeps whitespace inside one (spaced dots, phone numbers).
    for config in (DEFAULT, CleaningConfig(numbers="keep", punctuation="remove")):
        assert clean_tokens(text, config) == clean_text(text, config).split(), text
    assert clean_tokens("so tired . . . night", DEFAULT) == ["so", "tired", ".", ".", ".", "night"]


def test_emoji_variation_selectors_are_dropped() -> None:
    assert clean_tokens("love ❤️", DEFAULT) == ["love", "❤"]


def test_config_round_trip_and_validation() -> None:
    config = CleaningConfig(urls="remove", remove_stopwords=True, max_repeat=3)
    assert CleaningConfig.from_dict(config.to_dict()) == config
    with pytest.raises(TextCleanError, match="unknown cleaning settings"):
        CleaningConfig.from_dict({**config.to_dict(), "new_step": True})
    with pytest.raises(TextCleanError):
        CleaningConfig(urls="drop")  # type: ignore[arg-type]
    with pytest.raises(TextCleanError):
        CleaningConfig(max_repeat=-1)


def test_config_hash_follows_equality_and_is_not_pickled() -> None:
    config = CleaningConfig(urls="remove")
    assert hash(config) == hash(CleaningConfig(urls="remove"))
    assert {config: 1}.get(CleaningConfig()) is None
    assert "_hash" not in pickle.loads(pickle.dumps(config)).__dict__
    assert config.__getstate__() == config.to_dict()


def test_lemmatize_fails_loudly_without_wordnet(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(lemmatize_module, "_CANDIDATE_DIRS", (str(tmp_path),))
    monkeypatch.delenv("TEXTCLEAN_WORDNET_DIR", raising=False)
    lemmatize_module._wordnet.cache_clear()
    try:
        with pytest.raises(TextCleanError, match="wordnet-base"):
            clean_tokens("cats", CleaningConfig(lemmatize=True))
    finally:
        lemmatize_module._wordnet.cache_clear()


def test_lemmatize_with_a_small_wordnet(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for pos in ("noun", "verb"):
        (tmp_path / f"index.{pos}").write_text("  licence header\ncat n 1\ngoose n 1\nrun v 1\n")
        (tmp_path / f"{pos}.exc").write_text("geese goose\nran run\n")
    monkeypatch.setenv("TEXTCLEAN_WORDNET_DIR", str(tmp_path))
    lemmatize_module._wordnet.cache_clear()
    try:
        tokens = clean_tokens("cats geese ran runs :)", CleaningConfig(lemmatize=True))
    finally:
        lemmatize_module._wordnet.cache_clear()
    assert tokens == ["cat", "goose", "run", "run", ":)"]


def test_textclean_imports_without_torch() -> None:
    code = "import sys, textclean; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
