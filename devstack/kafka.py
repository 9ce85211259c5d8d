"""Broker readiness and topic creation through kafka-python's admin client."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

logger = logging.getLogger(__name__)


def _admin(bootstrap: str, timeout_ms: int = 5000) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, client_id="devstack"
    )


def metadata_ready(bootstrap: str) -> bool:
    """True once a client can connect and fetch cluster metadata."""
    try:
        admin = _admin(bootstrap, timeout_ms=2000)
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def create_topics(bootstrap: str, topics: Mapping[str, int]) -> list[str]:
    """Create each topic with its partition count; existing ones are left as they are.

    Returns the names created now. One request per topic, because the broker answers a
    batch containing an existing topic with an error for the whole call.
    """
    created: list[str] = []
    admin = _admin(bootstrap)
    try:
        for name, partitions in topics.items():
            try:
                admin.create_topics([NewTopic(name, partitions, 1)])
                created.append(name)
            except TopicAlreadyExistsError:
                logger.debug("topic %s exists", name)
    finally:
        admin.close()
    if created:
        logger.info("created topics %s", ", ".join(f"{t}({topics[t]})" for t in created))
    return created


def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = _admin(bootstrap)
    try:
        admin.delete_topics(names)
    finally:
        admin.close()
