"""python -m producer: publish posts to the posts topic.

  replay FILE   replay a data set (label,text CSV, original Sentiment140 CSV, JSON lines;
                gzip or not) at a rate, as fast as possible, or at its own pace sped up
  send TEXT     publish one post

Kafka settings come from SENTIMENT_* environment variables (SENTIMENT_KAFKA_BOOTSTRAP_SERVERS,
SENTIMENT_POSTS_TOPIC, ...); flags override them. `replay` exits 1 if any post was not
delivered, if it published nothing (an empty file, every row skipped) or if the file cannot be
read, and 130 on Ctrl-C, printing its report in every case.
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from pathlib import Path

from common.cli import documented_parser, positive_int
from common.logs import configure_logging
from producer.pacing import Pacer
from producer.publisher import ReplayReport, encode, looped, make_producer, replay
from producer.settings import ProducerSettings
from producer.sources import SourceError
from schemas.messages import IncomingPost

logger = logging.getLogger("producer")
INTERRUPTED = 130  # the shell's exit status for Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    parser = documented_parser("python -m producer", __doc__)
    parser.add_argument("--bootstrap-servers", help="env SENTIMENT_KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--topic", help="env SENTIMENT_POSTS_TOPIC (default posts)")
    commands = parser.add_subparsers(dest="command", required=True)

    replay_cmd = commands.add_parser("replay", help="replay a data set")
    replay_cmd.add_argument("path", type=Path)
    replay_cmd.add_argument(
        "--format", default="auto", choices=["auto", "labelled-csv", "sentiment140", "jsonl"]
    )
    pace = replay_cmd.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="posts per second (default: as fast as possible)")
    pace.add_argument(
        "--speedup",
        type=float,
        help="replay at the data's own pace, N times faster (rows without a timestamp are sent "
        "at full speed, with a warning)",
    )
    replay_cmd.add_argument("--limit", type=positive_int, help="stop after this many posts")
    replay_cmd.add_argument(
        "--loop", action="store_true", help="start over at the end; later rounds get new post ids"
    )
    replay_cmd.add_argument(
        "--key",
        default="post_id",
        choices=["post_id", "author", "none"],
        help="message key, which decides the partition (default post_id)",
    )
    replay_cmd.add_argument("--source", default="replay", help="the posts' source field")
    replay_cmd.add_argument("--no-progress", action="store_true")

    send_cmd = commands.add_parser("send", help="publish one post")
    send_cmd.add_argument("text")
    send_cmd.add_argument("--post-id", help="default: a random id")
    send_cmd.add_argument("--author")
    send_cmd.add_argument("--source", default="cli")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {"kafka_bootstrap_servers": args.bootstrap_servers, "posts_topic": args.topic}
    settings = ProducerSettings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, "text")
    producer = make_producer(settings)
    try:
        if args.command == "send":
            return send_one(producer, settings.posts_topic, args)
        return replay_file(producer, settings.posts_topic, args)
    except KeyboardInterrupt:
        return INTERRUPTED
    finally:
        producer.close(timeout=10)


def replay_file(producer, topic: str, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    if args.loop and args.limit is None and args.speedup is None and args.rate is None:
        logger.warning("--loop without --limit or a pace runs until interrupted")
    report = ReplayReport()
    try:
        replay(
            producer,
            topic,
            looped(args.path, args.format, args.loop),
            source=args.source,
            limit=args.limit,
            pacer=Pacer(args.rate, args.speedup),
            key=args.key,
            progress=not args.no_progress,
            report=report,
        )
    except KeyboardInterrupt:
        return finish(report, "interrupted", INTERRUPTED)
    except (SourceError, OSError) as error:  # OSError: a missing or unreadable file
        return finish(report, str(error), 1)
    problem = replay_problem(report)
    return finish(report, problem, 1 if problem else 0)


def finish(report: ReplayReport, problem: str | None, exit_code: int) -> int:
    print(describe(report))
    if problem:
        print(f"replay: {problem}", file=sys.stderr)
    return exit_code


def describe(report: ReplayReport) -> str:
    reasons = ", ".join(f"{reason} {count}" for reason, count in report.skip_reasons.most_common())
    return (
        f"sent {report.sent}, delivered {report.delivered}, failed {report.failed}, "
        f"skipped {report.skipped}{f' ({reasons})' if reasons else ''}, "
        f"{report.rate:,.0f} posts/s"
    )


def replay_problem(report: ReplayReport) -> str | None:
    """Why a finished replay should exit non-zero, or None if it published everything it could."""
    if report.failed or report.delivered < report.sent:
        return f"{report.sent - report.delivered} of {report.sent} posts were not delivered"
    if report.rows_read == 0:
        return "nothing published: the file has no rows"
    if report.sent == 0:
        return f"nothing published: all {report.rows_read} rows were skipped"
    return None


def send_one(producer, topic: str, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    post = IncomingPost(
        post_id=args.post_id or f"cli-{uuid.uuid4().hex[:12]}",
        text=args.text,
        author=args.author,
        source=args.source,
    )
    metadata = producer.send(topic, value=encode(post), key=post.post_id.encode()).get(timeout=30)
    print(f"sent {post.post_id} to {metadata.topic}[{metadata.partition}]@{metadata.offset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
