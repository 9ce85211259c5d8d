"""The Grafana provisioning and dashboard JSON, checked without Grafana (see also the live test)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import (
    alert_expressions,
    dashboards,
    exported_metric_names,
    iter_panels,
    metric_names,
    panel_queries,
)

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "monitoring" / "grafana" / "provisioning"

# What issue 5 asks the dashboards to show, and the panel that shows it.
REQUIRED_PANELS = {
    "throughput in and out": "Throughput in and out",
    "latency percentiles per stage": "Stage latency p99 per batch",
    "end-to-end latency percentiles": "End-to-end latency percentiles",
    "batch sizes": "Batch size",
    "cache hit ratio": "Cache hit ratio",
    "consumer lag per partition": "Consumer lag per partition",
    "dead letters by reason": "Dead letters by reason",
    "predictions by label over time": "Predictions by label",
    "confidence distribution": "Confidence distribution",
    "model version per replica": "Model version per replica",
    "sentiment share over time by source": "Negative share by source",
    "latest most negative posts": "Latest most negative posts",
}
# Exported metrics no panel or alert needs to show, and why.
NOT_SHOWN = {
    "sentiment_posts_failed_total": "counts the same refusals as sentiment_dead_letters_total",
}


def datasources() -> dict[str, str]:
    """Provisioned data source uid -> type."""
    document = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    return {source["uid"]: source["type"] for source in document["datasources"]}


def test_provisioning_points_at_the_dashboards_folder() -> None:
    document = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    assert set(datasources()) == {"prometheus", "postgres"}


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_is_well_formed(name: str) -> None:
    dashboard = dashboards()[name]
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = list(iter_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    sources = datasources()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel.get("description"), f"{panel['title']}: no description"
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for source in [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]:
            assert sources.get(source["uid"]) == source["type"], f"{panel['title']}: {source}"
    for first, second in combinations(panels, 2):
        assert not overlap(first["gridPos"], second["gridPos"]), (first["title"], second["title"])


def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_dashboard_uids_are_unique() -> None:
    uids = [dashboard["uid"] for dashboard in dashboards().values()]
    assert len(uids) == len(set(uids))


def test_the_issue_s_panels_exist() -> None:
    titles = {panel["title"] for d in dashboards().values() for panel in iter_panels(d["panels"])}
    for what, title in REQUIRED_PANELS.items():
        assert title in titles, f"no panel for {what}"


def test_panels_query_only_metrics_the_consumer_exports() -> None:
    exported = exported_metric_names()
    for query in panel_queries():
        if query.datasource == "prometheus":
            assert metric_names(query.query) <= exported, f"{query}: {query.query}"


def test_every_consumer_metric_is_on_a_dashboard_or_in_an_alert() -> None:
    used: set[str] = set()
    for query in panel_queries():
        if query.datasource == "prometheus":
            used |= metric_names(query.query)
    for expr in alert_expressions().values():
        used |= metric_names(expr)
    ours = {
        family(name)
        for name in exported_metric_names()
        if name.startswith("sentiment_") and not name.endswith("_created")
    }
    missing = ours - {family(name) for name in used}
    assert missing <= set(NOT_SHOWN), sorted(missing - set(NOT_SHOWN))


def family(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name
