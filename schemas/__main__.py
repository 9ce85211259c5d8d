"""`python -m schemas`: write the JSON Schemas, or apply the SQL migrations."""

from __future__ import annotations

import argparse
import logging
import os

from schemas.export_json import write_all
from schemas.migrate import apply_migrations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("json", help="regenerate schemas/json/*.schema.json from the models")
    migrate = commands.add_parser("migrate", help="apply pending SQL migrations")
    migrate.add_argument(
        "--dsn",
        default=os.environ.get("SENTIMENT_POSTGRES_DSN"),
        help="PostgreSQL DSN (default: $SENTIMENT_POSTGRES_DSN)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "json":
        for path in write_all():
            print(path)
        return 0
    if not args.dsn:
        parser.error("--dsn or SENTIMENT_POSTGRES_DSN is required")
    applied = apply_migrations(args.dsn)
    print("applied: " + (", ".join(applied) if applied else "nothing, already up to date"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
