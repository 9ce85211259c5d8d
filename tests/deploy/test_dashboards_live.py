"""The dashboards and alerts against live data, since Grafana itself cannot run here.

A real consumer processes posts (and a few bad messages) on the test services, a real
Prometheus scrapes it every second with the alert rules loaded, and then:
- every PromQL expression of every dashboard panel must be valid and return data, and every
  alert expression must be valid (most alerts rightly return nothing) and evaluate without error;
- every SQL panel query, with Grafana's macros expanded, must run and return rows on the
  PostgreSQL database the consumer wrote to, as the read-only login Grafana uses in compose
  (created by monitoring/postgres/10-grafana-reader.sh before the migrations ran).
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest

from consumer.processes import ConsumerProcess
from devstack import StackEndpoints
from devstack.postgres import apply_migrations
from tests.deploy.prometheus_server import PrometheusError, PrometheusServer
from tests.deploy.promql import (
    RULES,
    alert_expressions,
    fill_promql,
    fill_sql,
    label_values_selector,
    panel_queries,
    variable_queries,
)
from tests.integration.streaming import (
    StreamSetup,
    free_port,
    new_marker,
    post_json,
    stored_count,
    wait_for,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="prometheus not found: install Debian's `prometheus` package "
        "(bash .ci/system-packages.sh does, and CI runs it)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
READER_SCRIPT = REPO / "monitoring" / "postgres" / "10-grafana-reader.sh"
WORDS = ["love this", "hate this", "great game", "awful service", "the bus leaves at noon"]
SOURCES = ["replay", "news", "forum"]
BAD_MESSAGES = [
    b"{not json",
    b"\xff\xfe binary",
    post_json("empty-1", ""),
    post_json("huge-1", "x" * 6000),
    json.dumps({"text": "no id"}).encode(),
]


@pytest.fixture
def reader_database(
    stack_endpoints: StackEndpoints, database_factory: Callable[..., str]
) -> Iterator[tuple[str, str | None]]:
    """A database set up as compose does: reader login first, then the migrations.

    Yields (admin DSN, reader role). The reader role is cluster-wide, so it is dropped again.
    """
    dsn = database_factory(migrated=False)
    reader = f"grafana_{uuid.uuid4().hex[:10]}"
    database = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    script = READER_SCRIPT.read_text()
    sql = script.split("<<'SQL'\n", 1)[1].split("\nSQL\n", 1)[0]
    sql = (
        sql.replace(':"reader"', f'"{reader}"')
        .replace(":'password'", "'reader-test'")
        .replace(':"DBNAME"', f'"{database}"')
    )
    try:
        execute(dsn, sql)
    except psycopg2.errors.InsufficientPrivilege:
        # Your own server (SENTIMENT_TEST_POSTGRES_DSN) without CREATEROLE: the panels are
        # then checked as the admin login.
        warnings.warn("no CREATEROLE: SQL panels checked as the admin login", stacklevel=1)
        reader = None
    assert apply_migrations(dsn) is not None, "schemas.migrate is not importable"
    try:
        yield dsn, reader
    finally:
        if reader is not None:
            execute(dsn, f'DROP OWNED BY "{reader}"; DROP ROLE "{reader}"')


def execute(dsn: str, sql: str) -> None:
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture
def live(
    stack_endpoints: StackEndpoints,
    topic_factory: Callable[..., str],
    reader_database: tuple[str, str | None],
    group_id: str,
    bundle_path: Path,
    tmp_path: Path,
) -> Iterator[tuple[StreamSetup, ConsumerProcess, PrometheusServer]]:
    setup = StreamSetup(
        endpoints=stack_endpoints,
        posts_topic=topic_factory(partitions=2),
        dead_letter_topic=topic_factory(partitions=1),
        dsn=reader_database[0],
        group_id=group_id,
        bundle_path=bundle_path,
        logs=tmp_path / "logs",
        marker=new_marker(),
    )
    consumer = setup.consumer("live")
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()
    prometheus = PrometheusServer(
        prometheus_dir, free_port(), [f"127.0.0.1:{consumer.http_port}"], [RULES]
    )
    try:
        consumer.start()
        prometheus.start()
        consumer.wait_ready(timeout=60)
        yield setup, consumer, prometheus
    finally:
        prometheus.stop()
        consumer.kill()


def test_every_dashboard_query_and_alert_runs_on_live_data(
    live: tuple[StreamSetup, ConsumerProcess, PrometheusServer],
    reader_database: tuple[str, str | None],
) -> None:
    setup, consumer, prometheus = live
    good = [
        (f"p-{i}", setup.text(f"{WORDS[i % len(WORDS)]} {i}"), SOURCES[i % len(SOURCES)])
        for i in range(240)
    ]
    messages = [
        (pid.encode(), post_json(pid, text, source=source, author=f"user{i % 7}"))
        for i, (pid, text, source) in enumerate(good)
    ]
    # Twice: the second round hits the cache and counts as duplicates.
    setup.publish(messages[:120] + BAD_MESSAGES + messages[120:] + messages[:40])
    predict(consumer, {"texts": ["what a lovely day", "this is terrible"]})
    predict(consumer, {"texts": []})  # refused: the outcome label gets both values

    wait_for(lambda: stored_count(setup.dsn) == len(good), 60, "every good post stored")
    wait_for(
        lambda: (
            prometheus.value("sum(sentiment_dead_letters_total)") == len(BAD_MESSAGES)
            and prometheus.value("sum(sentiment_posts_consumed_total)") == len(messages) + 45
        ),
        30,
        "Prometheus to scrape the final counts",
    )

    # A series born in the last scrape has one sample, too few for rate(): give the newest
    # series (the dead letters') a few more scrapes before judging the panels.
    deadline = time.monotonic() + 15
    while (failures := check_prometheus_queries(prometheus)) and time.monotonic() < deadline:
        time.sleep(1)
    failures += check_sql_queries(*reader_database)
    assert not failures, "\n".join(failures)


def predict(consumer: ConsumerProcess, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        f"{consumer.url}/predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as error:
        assert error.code == 400


def check_prometheus_queries(prometheus: PrometheusServer) -> list[str]:
    failures = []
    variables = {}
    for variable in variable_queries():
        if variable.datasource != "prometheus":
            continue
        selector, label = label_values_selector(variable.query)
        values = prometheus.api(f"label/{label}/values", **{"match[]": selector})
        if not values:
            failures.append(f"{variable}: no values")
        # "All" with allValue ".*", as the dashboards set it.
        variables[variable.ref_id] = ".*"

    queries = [q for q in panel_queries() if q.datasource == "prometheus"]
    assert len(queries) >= 20, "the service dashboard lost its panels?"
    for panel in queries:
        expr = fill_promql(panel.query, variables, rate_interval="20s", range_="5m")
        try:
            result = prometheus.query(expr)
        except PrometheusError as error:
            failures.append(f"{panel}: invalid: {error}\n    {expr}")
            continue
        if not result:
            failures.append(f"{panel}: no data\n    {expr}")

    for name, expr in alert_expressions().items():
        try:
            prometheus.query(expr)
        except PrometheusError as error:
            failures.append(f"alert {name}: invalid: {error}")

    # The server loaded the rule file and evaluated every rule without an error.
    groups = prometheus.api("rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    for name in alert_expressions():
        rule = loaded.get(name)
        if rule is None:
            failures.append(f"alert {name}: not loaded by Prometheus")
        elif rule.get("health") == "err":
            failures.append(f"alert {name}: evaluation error {rule.get('lastError')}")
    return failures


def check_sql_queries(admin_dsn: str, reader: str | None) -> list[str]:
    failures = []
    connection = psycopg2.connect(admin_dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            # What Grafana's login may do: the reader role, nothing more.
            if reader is not None:
                cursor.execute(f'SET ROLE "{reader}"')
            variables = {}
            for variable in variable_queries():
                if variable.datasource != "postgres":
                    continue
                cursor.execute(variable.query)
                values = [row[0] for row in cursor.fetchall()]
                if sorted(values) != sorted(SOURCES):
                    failures.append(f"{variable}: {values}, expected {SOURCES}")
                # "All" without allValue: Grafana puts in every value, quoted.
                variables[variable.ref_id] = ",".join(f"'{value}'" for value in values)

            queries = [q for q in panel_queries() if q.datasource == "postgres"]
            assert len(queries) >= 8, "the results dashboard lost its panels?"
            for panel in queries:
                sql = fill_sql(panel.query, variables, interval_seconds=60, hours=6)
                try:
                    cursor.execute(sql)
                    rows = cursor.fetchall()
                    columns = [column.name for column in cursor.description]
                except psycopg2.Error as error:
                    failures.append(f"{panel}: {error.pgerror or error}\n    {sql}")
                    continue
                if not rows:
                    failures.append(f"{panel}: no rows\n    {sql}")
                if panel.format == "time_series" and "time" not in columns:
                    failures.append(f"{panel}: a time series needs a `time` column")
    finally:
        connection.close()
    return failures
