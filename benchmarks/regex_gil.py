"""What a `regex` call costs when it lets the GIL go while another thread runs Python.

    python -m benchmarks.regex_gil          # a few seconds

The `regex` engine (nltk's tokenizer uses it) releases the GIL while it matches a str, unless
called with concurrent=False. Releasing is cheap; getting the GIL back waits for the thread
that took it, up to the switch interval. The consumer's loop runs beside the inference, I/O
and writer threads, so textclean passes concurrent=False. This times the tokenizer's
expression on typical tweet parts: alone, and beside a busy thread, both ways.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable

from common.cli import documented_parser
from consumer.app import GIL_SWITCH_INTERVAL_S
from textclean.tokenize import _WORDS

PARTS = ["bummer.", "Awww,", "@switchfoot", "that's", "http://twitpic.com/2y1zl", "it.", ":D"]


def microseconds_per_call(findall: Callable[[str], list[str]], calls: int) -> float:
    parts = PARTS * (calls // len(PARTS))
    started = time.perf_counter()
    for part in parts:
        findall(part)
    return round((time.perf_counter() - started) / len(parts) * 1e6, 1)


def busy_python(stop: threading.Event) -> None:
    count = 0
    while not stop.is_set():
        count += 1


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.regex_gil", __doc__)
    parser.add_argument("--calls", type=int, default=3_500)
    args = parser.parse_args(argv)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    ways: dict[str, Callable[[str], list[str]]] = {
        "default": _WORDS.findall,
        "concurrent=False": lambda part: _WORDS.findall(part, concurrent=False),
    }
    for busy in (False, True):
        stop = threading.Event()
        if busy:
            threading.Thread(target=busy_python, args=(stop,), daemon=True).start()
        for name, findall in ways.items():
            result = {
                "busy_thread": busy,
                "call": name,
                "us_per_call": microseconds_per_call(findall, args.calls),
            }
            print(json.dumps(result), flush=True)
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
