"""A real Kafka-compatible broker, Redis and PostgreSQL on loopback, from pip wheels, no Docker.

`python -m devstack up|down|status`; in code, `with EmbeddedStack(StackConfig()) as endpoints:`.
"""

from devstack.config import SERVICES, StackConfig, StackEndpoints
from devstack.errors import StackError
from devstack.stack import EmbeddedStack

__all__ = ["SERVICES", "EmbeddedStack", "StackConfig", "StackEndpoints", "StackError"]
