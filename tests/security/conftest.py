"""Security review: the integration fixtures (a real PostgreSQL) and a model bundle."""

from __future__ import annotations

from tests.faults.conftest import bundle_path  # noqa: F401 (a fixture)
from tests.integration.conftest import *  # noqa: F403 (services, fresh_database, ...)
