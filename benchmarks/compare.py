"""A/B: the same saturation run with the consumer of two checkouts, alternating, one stack.

    git worktree add /tmp/before <commit>
    python -m benchmarks.compare /tmp/before . --rounds 3

This machine's speed drifts by the hour (docs/performance.md), so two benchmark runs minutes
apart do not compare two versions; runs that alternate on one embedded stack do. Each round
measures the model alone, then fills a topic and drains it with one consumer started from
each checkout in turn (its code and its own bundle; the model-alone rate is this checkout's).
Prints one JSON line per run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from benchmarks.e2e import DATA_DIR, Bench, embedded_stack, load_tweets, model_only, run_saturation
from benchmarks.targets import saturation_rate
from common.cli import documented_parser
from inference import DEFAULT_BUNDLE_PATH

# Where a checkout keeps its released bundle: a change to the bundle is part of what it compares.
BUNDLE_IN_CHECKOUT = DEFAULT_BUNDLE_PATH.relative_to(Path(__file__).resolve().parents[1])


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m benchmarks.compare", __doc__)
    parser.add_argument("checkouts", type=Path, nargs="+", help="repository folders to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--posts", type=int, default=60_000)
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument(
        "--no-inference-thread",
        action="store_true",
        help="consumers do all their work on one thread (bound by their own Python)",
    )
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    checkouts = [path.resolve() for path in args.checkouts]
    texts = load_tweets(args.data, args.posts)
    home, pythonpath = Path.cwd(), os.environ.get("PYTHONPATH")
    settings = {"inference_thread": False} if args.no_inference_thread else {}
    with embedded_stack("compare-") as (stack, workdir):
        bench = Bench(stack, workdir, DEFAULT_BUNDLE_PATH, texts)
        for round_ in range(args.rounds):
            model = model_only(DEFAULT_BUNDLE_PATH, texts[:20_000])["model_posts_per_s"]
            for index, checkout in enumerate(checkouts):
                # `python -m consumer` imports from the working directory first.
                os.chdir(checkout)
                os.environ["PYTHONPATH"] = str(checkout)
                own = dataclasses.replace(bench, bundle=checkout / BUNDLE_IN_CHECKOUT)
                try:
                    record = run_saturation(
                        own, f"ab{round_}{index}", texts, args.consumers, **settings
                    )
                finally:
                    os.chdir(home)
                    os.environ.pop("PYTHONPATH")
                    if pythonpath is not None:
                        os.environ["PYTHONPATH"] = pythonpath
                summary = {
                    "round": round_,
                    "checkout": str(checkout),
                    "model_posts_per_s": model,
                    "stored_per_s": saturation_rate(record),
                    "consumer_cpu_us_per_post": record["consumer_cpu_us_per_post"],
                    # What the same posts cost the servers: a change may move work there.
                    **{
                        key: value
                        for key, value in record.items()
                        if key.endswith("_cpu_us_per_post") and not key.startswith("consumer")
                    },
                }
                print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
