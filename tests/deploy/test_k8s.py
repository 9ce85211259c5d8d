"""k8s/: every overlay rendered, every manifest validated offline, and consistent with the code.

- Built-in kinds: the Kubernetes OpenAPI schemas of `kubernetes-validate`, strict (unknown
  fields are errors), for the oldest and newest Kubernetes versions in SUPPORTED_VERSIONS.
- KEDA, Strimzi and Prometheus Operator resources: their CRD schemas (schemas/crds.yaml says
  where each comes from and what is abridged), with unknown fields refused as
  `kubectl apply --validate=strict` would.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from consumer.settings import ConsumerSettings
from tests.deploy.kustomize import build
from tests.deploy.render_prometheusrule import render as render_prometheusrule

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = sorted(path.parent.name for path in (K8S / "overlays").glob("*/kustomization.yaml"))
SUPPORTED_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CRD_SCHEMAS = Path(__file__).parent / "schemas" / "crds.yaml"
CUSTOM_GROUPS = {"keda.sh", "kafka.strimzi.io", "monitoring.coreos.com"}
HTTP_PORT = ConsumerSettings.model_fields["http_port"].default
# A batch (at most SENTIMENT_BATCH_MAX_SIZE posts through the model and one transaction) must
# fit in the grace period on top of the shutdown timeout.
BATCH_BUDGET_SECONDS = 10

Resource = dict[str, Any]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    return request.param, build(K8S / "overlays" / request.param)


def find(resources: list[Resource], kind: str, name: str | None = None) -> Resource:
    found = [r for r in resources if r["kind"] == kind and name in (None, r["metadata"]["name"])]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def kinds(resources: list[Resource]) -> set[str]:
    return {resource["kind"] for resource in resources}


def group(resource: Resource) -> str:
    return resource["apiVersion"].split("/")[0] if "/" in resource["apiVersion"] else ""


def test_the_overlays_exist() -> None:
    assert {"dev", "prod", "prod-hpa"} <= set(OVERLAYS)


# ---- rendering ----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("name", OVERLAYS)
def test_renderer_agrees_with_kubectl_kustomize(name: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    expected = [document for document in yaml.safe_load_all(result.stdout) if document]

    def key(resource: Resource) -> tuple[str, str, str]:
        metadata = resource["metadata"]
        return resource["kind"], metadata.get("namespace", ""), metadata["name"]

    ours = build(K8S / "overlays" / name)
    assert sorted(ours, key=key) == sorted(expected, key=key)


def test_every_resource_is_in_the_overlay_namespace(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    namespaces = {resource["metadata"].get("namespace") for resource in resources}
    assert len(namespaces) == 1 and None not in namespaces, f"{name}: {namespaces}"


# ---- schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_builtin_resources_match_the_kubernetes_schemas(
    overlay: tuple[str, list[Resource]], version: str
) -> None:
    name, resources = overlay
    builtin = [resource for resource in resources if group(resource) not in CUSTOM_GROUPS]
    assert builtin
    for resource in builtin:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(
                f"{name}: {resource['kind']}/{resource['metadata']['name']} ({version}): "
                f"{'.'.join(map(str, error.path))}: {error.message}"
            )


def crd_validators() -> dict[tuple[str, str], jsonschema.Validator]:
    validators = {}
    for entry in yaml.safe_load(CRD_SCHEMAS.read_text())["schemas"]:
        schema = strict(entry["openAPIV3Schema"])
        validators[entry["apiVersion"], entry["kind"]] = jsonschema.Draft7Validator(schema)
    return validators


def strict(schema: Any) -> Any:
    """Refuse unknown fields, as the API server's strict field validation does."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: strict(value) for key, value in schema.items()}
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    return schema


def test_custom_resources_match_their_crd_schemas(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    validators = crd_validators()
    custom = [resource for resource in resources if group(resource) in CUSTOM_GROUPS]
    assert {"KafkaTopic", "ServiceMonitor", "PrometheusRule"} <= kinds(custom)
    for resource in custom:
        validator = validators.get((resource["apiVersion"], resource["kind"]))
        assert validator, f"no schema for {resource['apiVersion']} {resource['kind']}"
        errors = [
            f"{'.'.join(map(str, error.path))}: {error.message}"
            for error in validator.iter_errors(resource)
        ]
        assert not errors, f"{name}: {resource['kind']}/{resource['metadata']['name']}: {errors}"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", resource["metadata"]["name"])


def test_the_crd_validation_refuses_unknown_and_mistyped_fields() -> None:
    validators = crd_validators()
    topic = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": "t"},
        "spec": {"partitions": 3, "config": {"anything.goes": 1}},
    }
    assert validators["kafka.strimzi.io/v1beta2", "KafkaTopic"].is_valid(topic)
    topic["spec"]["partition"] = 3
    assert not validators["kafka.strimzi.io/v1beta2", "KafkaTopic"].is_valid(topic)
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "s"},
        "spec": {"scaleTargetRef": {"name": "d"}, "triggers": [{"type": "kafka", "metadata": {}}]},
    }
    assert validators["keda.sh/v1alpha1", "ScaledObject"].is_valid(scaled)
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5  # must be a string
    assert not validators["keda.sh/v1alpha1", "ScaledObject"].is_valid(scaled)


# ---- the consumer Deployment --------------------------------------------------------------


def consumer_container(resources: list[Resource]) -> dict[str, Any]:
    deployment = find(resources, "Deployment", "sentiment-consumer")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def settings_env(resources: list[Resource], container: dict[str, Any]) -> dict[str, Any]:
    config = find(resources, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    env = dict(config["data"])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", variable.get("valueFrom"))
    return env


def cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_consumer_settings_are_settings_fields(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    for kind, name in (("Deployment", "sentiment-consumer"), ("Job", "sentiment-migrate")):
        (container,) = find(resources, kind, name)["spec"]["template"]["spec"]["containers"]
        env = settings_env(resources, container)
        for key in env:
            field = key.removeprefix("SENTIMENT_").lower()
            assert key.startswith("SENTIMENT_") and field in ConsumerSettings.model_fields, key
        plain = {
            key.removeprefix("SENTIMENT_").lower(): value
            for key, value in env.items()
            if isinstance(value, str)
        }
        ConsumerSettings(**plain)  # the values parse (types, bounds)


def test_secrets_referenced_exist_in_the_examples(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    secrets = [example] + [r for r in resources if r["kind"] == "Secret"]
    for resource in resources:
        for container in (
            resource.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    for secret in secrets:
                        assert secret["metadata"]["name"] == ref["name"]
                        assert ref["key"] in secret["stringData"], f"{name}: {ref}"


def test_probes_and_ports_match_the_consumer_http_server(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    container = consumer_container(resources)
    (port,) = container["ports"]
    assert port["containerPort"] == HTTP_PORT
    env = settings_env(resources, container)
    assert int(env["SENTIMENT_HTTP_PORT"]) == HTTP_PORT and env["SENTIMENT_HTTP_HOST"] == "0.0.0.0"
    http_source = (REPO / "consumer" / "http.py").read_text()
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": port["name"]}
        assert f'"{path}"' in http_source
    assert container["args"] == ["consumer", "run"]


def test_grace_period_covers_a_batch_and_the_shutdown_timeout(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    deployment = find(resources, "Deployment", "sentiment-consumer")
    env = settings_env(resources, consumer_container(resources))
    shutdown = float(env["SENTIMENT_SHUTDOWN_TIMEOUT_SECONDS"])
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= shutdown + BATCH_BUDGET_SECONDS


def test_consumer_runs_non_root_and_read_only(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    dockerfile_user = re.search(r"^USER (\d+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert dockerfile_user
    for kind, name in (("Deployment", "sentiment-consumer"), ("Job", "sentiment-migrate")):
        pod = find(resources, kind, name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == int(dockerfile_user[1])
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"] and container["resources"]["requests"]


def test_onnx_threads_follow_the_cpu_limit(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    container = consumer_container(resources)
    env = {variable["name"]: variable for variable in container["env"]}
    source = env["SENTIMENT_ONNX_THREADS"]["valueFrom"]["resourceFieldRef"]
    assert source == {"containerName": container["name"], "resource": "limits.cpu", "divisor": "1"}
    # What the kubelet puts in: the limit in cores, rounded up.
    threads = math.ceil(cpu_cores(container["resources"]["limits"]["cpu"]))
    assert threads >= 1
    expected = {"dev": 1, "prod": 2, "prod-hpa": 2}
    if name in expected:
        assert threads == expected[name]


def test_migration_job_runs_the_migrate_command(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    job = find(resources, "Job", "sentiment-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["consumer", "migrate"]
    assert container["image"] == consumer_container(resources)["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


# ---- selectors, scaling, topics, monitoring ----------------------------------------------


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_selectors_find_the_consumer_pods(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    deployment = find(resources, "Deployment", "sentiment-consumer")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = find(resources, "Service", "sentiment-consumer")
    assert selects(service["spec"]["selector"], pod_labels)
    assert selects(
        find(resources, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels
    )
    policy = find(resources, "NetworkPolicy", "sentiment-consumer")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)

    monitor = find(resources, "ServiceMonitor", "sentiment-consumer")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The job label is the Service name, as the alert rules and dashboards expect.
    assert service["metadata"]["name"] == "sentiment-consumer"
    assert 'job="sentiment-consumer"' in (REPO / "monitoring/prometheus/alerts.yml").read_text()


def test_network_policy_lets_the_consumer_reach_its_servers(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    policy = find(resources, "NetworkPolicy", "sentiment-consumer")
    allowed_out = {port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]}
    env = settings_env(resources, consumer_container(resources))
    kafka_port = int(env["SENTIMENT_KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    assert {53, kafka_port, 6379, 5432} <= allowed_out
    allowed_in = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    assert allowed_in == {HTTP_PORT}


def test_topics_match_the_consumer_settings(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    env = settings_env(resources, consumer_container(resources))
    topics = {r["spec"]["topicName"]: r for r in resources if r["kind"] == "KafkaTopic"}
    assert set(topics) == {env["SENTIMENT_POSTS_TOPIC"], env["SENTIMENT_DEAD_LETTER_TOPIC"]}
    bootstrap_host = env["SENTIMENT_KAFKA_BOOTSTRAP_SERVERS"].split(":")[0]
    for topic in topics.values():
        cluster = topic["metadata"]["labels"]["strimzi.io/cluster"]
        assert bootstrap_host == f"{cluster}-kafka-bootstrap"
        assert topic["spec"]["config"]["min.insync.replicas"] <= topic["spec"]["replicas"]


def test_autoscaling_is_capped_at_the_partition_count(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    env = settings_env(resources, consumer_container(resources))
    posts = next(
        r for r in resources if r["kind"] == "KafkaTopic" and r["spec"]["topicName"] == "posts"
    )
    partitions = posts["spec"]["partitions"]
    scalers = kinds(resources) & {"ScaledObject", "HorizontalPodAutoscaler"}
    assert len(scalers) <= 1, f"{name}: KEDA and an HPA would fight over the replicas"
    assert scalers == {
        "dev": set(),
        "prod": {"ScaledObject"},
        "prod-hpa": {"HorizontalPodAutoscaler"},
    }.get(name, scalers)
    if "ScaledObject" in scalers:
        scaled = find(resources, "ScaledObject")
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"] == "sentiment-consumer"
        assert spec["maxReplicaCount"] == partitions
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        metadata = trigger["metadata"]
        assert metadata["consumerGroup"] == env["SENTIMENT_GROUP_ID"]
        assert metadata["topic"] == env["SENTIMENT_POSTS_TOPIC"]
        # KEDA's operator resolves names from its own namespace: the trigger needs the full one.
        host, port = env["SENTIMENT_KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)
        namespace = scaled["metadata"]["namespace"]
        assert metadata["bootstrapServers"] == f"{host}.{namespace}.svc:{port}"
        assert int(metadata["lagThreshold"]) > 0
    if "HorizontalPodAutoscaler" in scalers:
        hpa = find(resources, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "sentiment-consumer",
        }
        assert hpa["spec"]["maxReplicas"] == partitions
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"


def test_prod_images_are_pinned(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    if not name.startswith("prod"):
        pytest.skip("dev may run a local image")
    image = consumer_container(resources)["image"]
    assert ":" in image and not image.endswith(":latest"), image


def test_prometheus_rule_is_alerts_yml() -> None:
    ours = yaml.safe_load((K8S / "base" / "prometheusrule.yaml").read_text())
    assert ours == yaml.safe_load(render_prometheusrule()), (
        "k8s/base/prometheusrule.yaml is stale: "
        "python -m tests.deploy.render_prometheusrule > k8s/base/prometheusrule.yaml"
    )
    alerts = yaml.safe_load((REPO / "monitoring/prometheus/alerts.yml").read_text())
    assert ours["spec"]["groups"] == alerts["groups"]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_secret_example_matches_the_kubernetes_schema(version: str) -> None:
    secret = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    kubernetes_validate.validate(secret, version, strict=True)
    assert all("CHANGE-ME" in value for value in secret["stringData"].values())
