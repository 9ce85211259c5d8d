"""Fixtures for the deployment tests.

The live dashboard test needs the real services: it reuses the integration fixtures
(`stack_endpoints`, `topic_factory`, `database_factory`, ...) by importing them here. Run alone
(`python -m pytest tests/deploy`) it starts its own embedded stack; in a full run it gets a
second one, because pytest keys session fixtures by the conftest that defines them.
"""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    bundle_path,
    database_factory,
    fresh_database,
    group_id,
    services,
    stack_endpoints,
    topic_factory,
)
