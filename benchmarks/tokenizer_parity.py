"""Check that cleaning per space-separated part gives exactly what whole-text cleaning gives.

    python -m benchmarks.tokenizer_parity                 # every CSV under ../shared/data
    python -m benchmarks.tokenizer_parity --data DIR_OR_FILE ... --bundle BUNDLE_DIR

For every text: the reference is nltk's `TweetTokenizer.tokenize` on the whole text followed by
the per-token normalisation; the fast paths are `textclean.clean_tokens` (parts, part memo)
and `textclean.clean_text`, which must equal the reference tokens joined by spaces. Prints one
JSON object: texts checked, differences (must be 0, exit status 1 otherwise), the first
differences, and microseconds per text of each path on one core.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from nltk.tokenize import TweetTokenizer

from common.cli import documented_parser
from inference import DEFAULT_BUNDLE_PATH, ModelBundle
from producer.sources import read_rows
from textclean import CleaningConfig, clean_text, clean_tokens
from textclean.clean import _normalise_token, filter_tokens, strip_markup

_TWEET_TOKENIZER = TweetTokenizer(preserve_case=True, reduce_len=False, strip_handles=False)


def reference_tokens(text: str, config: CleaningConfig) -> list[str]:
    """The cleaning pipeline with the whole text through TweetTokenizer and no caches."""
    raw_tokens = _TWEET_TOKENIZER.tokenize(strip_markup(text, config))
    tokens = filter_tokens([t for raw in raw_tokens for t in _normalise_token(raw, config)], config)
    return " ".join(tokens).split()  # a token with whitespace inside is its pieces


def read_texts(paths: list[Path]) -> list[str]:
    files = [
        p for path in paths for p in (sorted(path.rglob("*.csv*")) if path.is_dir() else [path])
    ]
    return [row.text for file in files for row in read_rows(file)]


def timed(function, texts: list[str]) -> tuple[list[list[str]], float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    results = [function(text) for text in texts]
    return results, (time.perf_counter() - started) / max(len(texts), 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.tokenizer_parity", __doc__)
    parser.add_argument("--data", type=Path, nargs="+", default=[Path("../shared/data")])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_PATH)
    args = parser.parse_args(argv)

    config = ModelBundle.load(args.bundle).cleaning
    texts = read_texts(args.data)
    reference, reference_us = timed(lambda text: reference_tokens(text, config), texts)
    fast, fast_us = timed(lambda text: clean_tokens(text, config), texts)
    joined, joined_us = timed(lambda text: clean_text(text, config), texts)
    differences = [
        {"text": text, "reference": ref, "fast": got, "fast_text": got_text}
        for text, ref, got, got_text in zip(texts, reference, fast, joined, strict=True)
        if ref != got or " ".join(ref) != got_text
    ]
    print(
        json.dumps(
            {
                "texts": len(texts),
                "differences": len(differences),
                "first_differences": differences[:5],
                "reference_us_per_text": round(reference_us, 1),
                "fast_us_per_text": round(fast_us, 1),
                "fast_clean_text_us_per_text": round(joined_us, 1),
            },
            indent=2,
        )
    )
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
