"""Print k8s/base/prometheusrule.yaml: monitoring/prometheus/alerts.yml as a PrometheusRule.

python -m tests.deploy.render_prometheusrule > k8s/base/prometheusrule.yaml
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "prometheus" / "alerts.yml"
HEADER = """\
# The alert rules of monitoring/prometheus/alerts.yml for the Prometheus Operator.
# Generated from that file, and tests/deploy/test_k8s.py fails when the two differ: edit
# alerts.yml, then regenerate this file with
#   python -m tests.deploy.render_prometheusrule > k8s/base/prometheusrule.yaml
# Your Prometheus must select this PrometheusRule (its ruleSelector, often a `release: <name>`
# label: add it with a patch in your overlay), as for the ServiceMonitor.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _string)


def render() -> str:
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "sentiment-consumer",
            "labels": {
                "app.kubernetes.io/name": "sentiment-consumer",
                "app.kubernetes.io/part-of": "sentiment-stream",
            },
        },
        "spec": {"groups": yaml.safe_load(RULES.read_text())["groups"]},
    }
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)


if __name__ == "__main__":
    print(render(), end="")
