"""Reading the queries out of Grafana dashboards and alert rules, and filling in Grafana's
variables the way Grafana would before it sends them to Prometheus or PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "monitoring" / "grafana" / "dashboards"
RULES = REPO / "monitoring" / "prometheus" / "alerts.yml"

# Series names in the expressions: our metrics and Prometheus's own `up`.
_METRIC = re.compile(r"\b(sentiment_[a-z0-9_]+|process_[a-z0-9_]+|python_[a-z0-9_]+|up)\b")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def exported_metric_names() -> set[str]:
    """Series names a consumer's /metrics exposes (ours and the process collector's), and `up`."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    from consumer.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    ProcessCollector(registry=registry)
    names = {"up"}
    for family in registry.collect():
        names.update(sample.name for sample in family.samples)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (label values in quotes are ignored)."""
    return set(_METRIC.findall(_STRING.sub('""', expr)))


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    datasource: str  # "prometheus" or "postgres"
    query: str  # PromQL or SQL, with Grafana's variables and macros still in it
    instant: bool = False
    format: str = ""  # the target's format: time_series, table, heatmap

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def dashboards() -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def iter_panels(panels: list[dict]) -> Iterator[dict]:  # type: ignore[type-arg]
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))  # rows may hold collapsed panels


def datasource_kind(datasource: dict | str | None) -> str:  # type: ignore[type-arg]
    kind = datasource.get("type", "") if isinstance(datasource, dict) else datasource or ""
    if "postgres" in kind:
        return "postgres"
    if "prometheus" in kind:
        return "prometheus"
    raise ValueError(f"unexpected datasource {datasource!r}")


def panel_queries() -> list[PanelQuery]:
    queries = []
    for name, dashboard in dashboards().items():
        for panel in iter_panels(dashboard["panels"]):
            if panel["type"] == "row":
                continue
            for target in panel.get("targets", []):
                kind = datasource_kind(target.get("datasource") or panel.get("datasource"))
                text = target.get("expr") if kind == "prometheus" else target.get("rawSql")
                queries.append(
                    PanelQuery(
                        dashboard=name,
                        panel=panel["title"],
                        ref_id=target["refId"],
                        datasource=kind,
                        query=text or "",
                        instant=bool(target.get("instant")),
                        format=target.get("format", ""),
                    )
                )
    return queries


def variable_queries() -> list[PanelQuery]:
    """The queries of the dashboards' query variables (`label_values(...)` or SQL)."""
    queries = []
    for name, dashboard in dashboards().items():
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable["type"] != "query":
                continue
            query = variable["query"]
            text = query.get("query", "") if isinstance(query, dict) else query
            queries.append(
                PanelQuery(
                    dashboard=name,
                    panel=f"variable ${variable['name']}",
                    ref_id=variable["name"],
                    datasource=datasource_kind(variable["datasource"]),
                    query=text,
                )
            )
    return queries


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


# ---- Grafana's variables ---------------------------------------------------------------------

_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)\s*$")


def label_values_selector(query: str) -> tuple[str, str]:
    """`label_values(up{job="x"}, instance)` -> ('up{job="x"}', 'instance')."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(f"not a label_values() query: {query}")
    return match["selector"] or "", match["label"]


def fill_promql(expr: str, variables: dict[str, str], rate_interval: str, range_: str) -> str:
    """Replace Grafana's built-in and dashboard variables as Grafana would (`$x`, `${x}`)."""
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": range_,
        "__range_s": str(_seconds(range_)),
    }
    return _fill(expr, {**builtins, **variables})


def fill_sql(sql: str, variables: dict[str, str], interval_seconds: int, hours: int) -> str:
    """Expand the PostgreSQL data source's macros as Grafana does, then the variables."""
    window = f"now() - interval '{hours} hours' AND now() + interval '5 minutes'"

    def time_group(match: re.Match[str], alias: bool) -> str:
        column = match["column"].strip()
        grouped = f"floor(extract(epoch from {column})/{interval_seconds})*{interval_seconds}"
        return f'{grouped} AS "time"' if alias else grouped

    sql = re.sub(
        r"\$__timeGroupAlias\((?P<column>[^,()]+),[^)]*\)", lambda m: time_group(m, True), sql
    )
    sql = re.sub(r"\$__timeGroup\((?P<column>[^,()]+),[^)]*\)", lambda m: time_group(m, False), sql)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m[1].strip()} BETWEEN {window}", sql)
    sql = sql.replace("$__timeFrom()", f"now() - interval '{hours} hours'")
    sql = sql.replace("$__timeTo()", "now() + interval '5 minutes'")
    builtins = {"__interval": f"{interval_seconds}s", "__interval_ms": str(interval_seconds * 1000)}
    return _fill(sql, {**builtins, **variables})


def _fill(text: str, values: dict[str, str]) -> str:
    # Longest names first, so `$__range_s` is not read as `$__range` + "_s".
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    leftover = re.findall(r"\$\{?\w+", text)
    if leftover:
        raise ValueError(f"unknown Grafana variables {leftover} in: {text}")
    return text


def _seconds(duration: str) -> int:
    number, unit = int(duration[:-1]), duration[-1]
    return number * {"s": 1, "m": 60, "h": 3600}[unit]
