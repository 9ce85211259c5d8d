"""Fault-injection suite: the integration fixtures, a broker behind a proxy, the table.

Short mode (CI): `python -m pytest tests/faults -m faults`. Long mode (≥ 20 kills, bigger
replays): add `--faults-long` or set `SENTIMENT_FAULTS_LONG=1`. `SENTIMENT_FAULTS_SEED` picks
the seed (the fault moments and the ledger); `SENTIMENT_FAULTS_REPORT=path.json` also writes
the outcomes as JSON. The table is printed at the end of the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.errors import BinaryNotFoundError
from inference import DEFAULT_BUNDLE_PATH, BundleError, ModelBundle
from tests.faults.harness import Outcome, ProxiedBroker, format_table
from tests.integration.conftest import *  # noqa: F403 (services, fresh_database, group_id, ...)
from tests.integration.conftest import Services

_HERE = Path(__file__).parent
DEFAULT_SEED = 20261122
_OUTCOMES: list[Outcome] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--faults-long",
        action="store_true",
        default=False,
        help="fault injection long mode (also SENTIMENT_FAULTS_LONG=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault injection against real services")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)
            if long_mode(config):
                item.add_marker(pytest.mark.slow)


def long_mode(config: pytest.Config) -> bool:
    flag = False
    # The option is only known when this conftest was loaded at start-up.
    with contextlib.suppress(ValueError):
        flag = bool(config.getoption("--faults-long"))
    return flag or os.environ.get("SENTIMENT_FAULTS_LONG", "") not in ("", "0")


@pytest.fixture(scope="session")
def faults_seed() -> int:
    return int(os.environ.get("SENTIMENT_FAULTS_SEED", DEFAULT_SEED))


@pytest.fixture(scope="session")
def faults_broker(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxiedBroker]:
    """A broker of the suite's own, reachable only through a proxy the tests can cut.

    Its log stays in pytest's temporary folder (`faults-broker*/tansu.log`).
    """
    workdir = tmp_path_factory.mktemp("faults-broker")
    try:
        broker = ProxiedBroker(workdir).start()
    except BinaryNotFoundError as error:
        pytest.skip(f"no Tansu binary: {error}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def bundle_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model when present and valid; otherwise a tiny one, kept in pytest's cache."""
    if (DEFAULT_BUNDLE_PATH / "manifest.json").exists():
        try:
            ModelBundle.load(DEFAULT_BUNDLE_PATH)
            return DEFAULT_BUNDLE_PATH
        except BundleError:
            pass  # e.g. being rebuilt right now: the faults do not depend on the model
    from training.tiny import make_tiny_bundle

    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    if cache is None:
        return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))
    cached = Path(cache.mkdir("sentiment-tiny-bundle")) / "bundle"
    try:
        ModelBundle.load(cached)
        return cached
    except BundleError:
        shutil.rmtree(cached, ignore_errors=True)
    built = make_tiny_bundle(tmp_path_factory.mktemp("bundle"))
    shutil.copytree(built, cached)
    return cached


@pytest.fixture(scope="session")
def fault_outcomes() -> list[Outcome]:
    """Each scenario appends its outcome; the table is printed at the end of the session."""
    return _OUTCOMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _OUTCOMES:
        return
    seed = _OUTCOMES[0].seed
    terminalreporter.section(f"fault injection (seed {seed})")
    terminalreporter.write_line(format_table(_OUTCOMES))
    for outcome in _OUTCOMES:
        terminalreporter.write_line(f"{outcome.scenario}: {'; '.join(outcome.faults)}")
        if problems := outcome.problems():
            terminalreporter.write_line(f"  PROBLEMS: {problems}")
    terminalreporter.write_line("")
    terminalreporter.write_line(format_table(_OUTCOMES, markdown=True))
    if report := os.environ.get("SENTIMENT_FAULTS_REPORT"):
        Path(report).write_text(
            json.dumps([dataclasses.asdict(o) for o in _OUTCOMES], indent=2) + "\n"
        )
