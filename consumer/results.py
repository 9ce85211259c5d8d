"""`python -m consumer results ...`: the questions people ask of the results table."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg2

QUERIES = {
    "recent": (
        "SELECT processed_at, label, round(confidence::numeric, 3) AS confidence, post_id,"
        " left(text, 80) AS text FROM latest_results LIMIT %(limit)s"
    ),
    # From the table, not the per-minute view: a filter on the view's minute column cannot
    # use the processed_at index, so it would aggregate the whole table first.
    "counts": (
        "SELECT label, count(*) AS posts, round(avg(confidence)::numeric, 3) AS confidence"
        " FROM results WHERE processed_at >= now() - make_interval(mins => %(minutes)s)"
        " GROUP BY label ORDER BY label"
    ),
    "negative": (
        "SELECT round(positive_probability::numeric, 4) AS p_positive, post_id, source,"
        " left(text, 80) AS text FROM results"
        " WHERE label = 'negative' AND processed_at >= now() - make_interval(mins => %(minutes)s)"
        " ORDER BY positive_probability ASC, processed_at DESC LIMIT %(limit)s"
    ),
    "dead-letters": (
        "SELECT failed_at, reason, source_partition || '@' || source_offset AS position,"
        " left(detail, 80) AS detail FROM dead_letters ORDER BY failed_at DESC LIMIT %(limit)s"
    ),
}


def fetch(dsn: str, query: str, minutes: int, limit: int) -> tuple[list[str], list[tuple]]:  # type: ignore[type-arg]
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(QUERIES[query], {"minutes": minutes, "limit": limit})
        columns = [column.name for column in cursor.description]
        return columns, cursor.fetchall()


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
