"""Fixtures for the deployment tests.

The live dashboard test needs the real services: it reuses the integration fixtures
(`stack_endpoints`, `topic_factory`, `database_factory`, ...) by importing them here. Run alone
(`python -m pytest tests/deploy`) it starts its own embedded stack; in a full run it gets a
second one, because pytest keys session fixtures by the conftest that defines them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import DEFAULT_BUNDLE_PATH
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    database_factory,
    fresh_database,
    group_id,
    services,
    stack_endpoints,
    topic_factory,
)


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model when present; otherwise a tiny one trained for the session."""
    if (DEFAULT_BUNDLE_PATH / "manifest.json").exists():
        return DEFAULT_BUNDLE_PATH
    from training.tiny import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))
