"""python -m consumer: the streaming sentiment service and its companions.

  run       consume posts, classify them in batches, store results (the service)
  results   query the results table (recent, counts, negative, dead-letters)
  demo      the whole thing on the embedded stack: stack, consumers, replay, summary
  migrate   apply pending SQL migrations and exit

Settings come from SENTIMENT_* environment variables (see README); flags override them.
"""

from __future__ import annotations

import sys

from common.cli import documented_parser, positive_int
from common.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = documented_parser("python -m consumer", __doc__)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the service (default)")
    run.add_argument("--http-port", type=int, help="env SENTIMENT_HTTP_PORT (default 8000)")
    run.add_argument("--group-id", help="env SENTIMENT_GROUP_ID")
    run.add_argument("--bundle-path", help="env SENTIMENT_BUNDLE_PATH (default: shipped model)")

    results = commands.add_parser("results", help="query the results table")
    results.add_argument("query", choices=["recent", "counts", "negative", "dead-letters"])
    results.add_argument(
        "--minutes", type=positive_int, default=60, help="window of counts and negative (60)"
    )
    results.add_argument("--limit", type=positive_int, default=20, help="rows at most (20)")

    commands.add_parser("migrate", help="apply pending SQL migrations")

    demo = commands.add_parser("demo", help="run the main job on the embedded stack")
    from consumer.demo import add_demo_arguments

    add_demo_arguments(demo)

    args = parser.parse_args(argv)
    command = args.command or "run"

    from consumer.settings import ConsumerSettings

    overrides = {
        key: value
        for key, value in vars(args).items()
        if key in ConsumerSettings.model_fields and value is not None
    }
    settings = ConsumerSettings(**overrides)
    configure_logging(settings.log_level, settings.log_format if command == "run" else "text")

    if command == "run":
        from consumer.app import run as run_service

        return run_service(settings)
    if command == "migrate":
        from consumer.app import migrate_with_retry

        migrate_with_retry(settings.postgres_dsn.get_secret_value(), attempts=1)
        return 0
    if command == "results":
        from consumer.results import fetch, format_table

        columns, rows = fetch(
            settings.postgres_dsn.get_secret_value(), args.query, args.minutes, args.limit
        )
        print(format_table(columns, rows))
        return 0
    from consumer.demo import run_demo

    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
