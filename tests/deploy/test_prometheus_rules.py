"""The Prometheus config and alert rules: promtool checks, rule unit tests, runbook notes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import exported_metric_names, metric_names

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "monitoring" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
OPERATIONS_DOC = REPO / "docs" / "operations.md"

# The alerts issue 5 asks for, by the condition each one watches.
REQUIRED_ALERTS = {
    "consumers down": {"SentimentConsumerDown", "SentimentNoConsumers"},
    "lag growing": {"SentimentConsumerLagGrowing"},
    "dead-letter rate": {"SentimentDeadLetterRateHigh"},
    "error rate": {"SentimentProcessingErrors"},
    "p99 end-to-end latency": {"SentimentEndToEndLatencyHigh"},
    "cache hit ratio collapse": {"SentimentCacheHitRatioCollapsed"},
    "negative share shift": {"SentimentNegativeShareShift"},
    "model version mismatch": {"SentimentModelVersionMismatch"},
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not found: install Debian's `prometheus` package "
            "(bash .ci/system-packages.sh does, and CI runs it)"
        )
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def alert_rules() -> list[dict]:  # type: ignore[type-arg]
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_config_and_its_rule_files() -> None:
    output = run_promtool("check", "config", CONFIG)
    assert "1 rule files found" in output


def test_promtool_accepts_the_rules() -> None:
    output = run_promtool("check", "rules", RULES)
    assert f"{len(alert_rules())} rules found" in output


def test_rule_unit_tests_pass(tmp_path: Path) -> None:
    """`promtool test rules`, against a copy of the rules without annotations (see the file)."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    output = run_promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert "SUCCESS" in output


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired: set[str] = set()
    silent: set[str] = set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested staying silent"


def test_the_issue_s_alerts_exist() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    for condition, wanted in REQUIRED_ALERTS.items():
        assert wanted <= names, f"no alert for {condition}"


def test_every_alert_has_severity_summary_and_a_runbook() -> None:
    doc = OPERATIONS_DOC.read_text().lower()
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        for key in ("summary", "description", "runbook", "runbook_url"):
            assert annotations.get(key, "").strip(), f"{name}: no {key}"
        assert annotations["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert re.search(rf"^#+ .*\b{name.lower()}\b", doc, re.MULTILINE), (
            f"{name}: docs/operations.md has no heading for it"
        )


def test_rules_use_only_metrics_the_consumer_exports() -> None:
    exported = exported_metric_names()
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']}: {sorted(unknown)}"
