"""python -m producer: publish posts to the posts topic.

  replay FILE   replay a data set (label,text CSV, original Sentiment140 CSV, JSON lines;
                gzip or not) at a rate, as fast as possible, or at its own pace sped up
  send TEXT     publish one post

Kafka settings come from SENTIMENT_* environment variables (SENTIMENT_KAFKA_BOOTSTRAP_SERVERS,
SENTIMENT_POSTS_TOPIC, ...); flags override them. Exits non-zero if any post was not delivered.
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from pathlib import Path

from common.logs import configure_logging
from producer.pacing import Pacer
from producer.publisher import encode, looped, make_producer, replay
from producer.settings import ProducerSettings
from schemas.messages import IncomingPost

logger = logging.getLogger("producer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m producer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        help="replay at the data's own pace, N times faster (needs timestamps)",
    )
    replay_cmd.add_argument("--limit", type=int, help="stop after this many posts")
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
        if args.loop and args.limit is None and args.speedup is None and args.rate is None:
            logger.warning("--loop without --limit or a pace runs until interrupted")
        report = replay(
            producer,
            settings.posts_topic,
            looped(args.path, args.format, args.loop),
            source=args.source,
            limit=args.limit,
            pacer=Pacer(args.rate, args.speedup),
            key=args.key,
            progress=not args.no_progress,
        )
    finally:
        producer.close(timeout=10)
    print(
        f"sent {report.sent}, delivered {report.delivered}, failed {report.failed}, "
        f"skipped {report.skipped} (schema), {report.rate:,.0f} posts/s"
    )
    return 1 if report.failed or report.delivered < report.sent else 0


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
