"""docker-compose.yml, .env.example and the Dockerfile, checked without a Docker engine:
the Compose specification's JSON schema, and consistency with the code (settings, ports,
topics, paths, the monitoring files)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from consumer.settings import ConsumerSettings
from producer.settings import ProducerSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
THIRD_PARTY_IMAGES = {"kafka", "redis", "postgres", "init-topics", "prometheus", "grafana"}
SENTIMENT_SERVICES = {"init-db": ConsumerSettings, "consumer": ConsumerSettings}
SENTIMENT_SERVICES["producer"] = ProducerSettings  # type: ignore[assignment]
HTTP_PORT = ConsumerSettings.model_fields["http_port"].default

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[^}]+)\}|(?P<plain>[A-Za-z_]\w*)|(?P<escaped>\$))")


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(value: Any, env: dict[str, str], used: set[str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`."""
    if isinstance(value, dict):
        return {key: interpolate(item, env, used) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env, used) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        expression = match["braced"] or match["plain"]
        name, operator, argument = re.match(r"(\w+)(:?[-?]?)(.*)", expression).groups()  # type: ignore[union-attr]
        used.add(name)
        if name in env and (env[name] or not operator.startswith(":")):
            return env[name]
        if operator.endswith("?"):
            raise AssertionError(f"${{{name}}} is required: {argument}")
        return argument if operator.endswith("-") else ""

    return _VARIABLE.sub(replace, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as compose sees it with .env copied from .env.example."""
    return interpolate(raw, env_example(), set())


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


# ---- the Compose specification ----------------------------------------------------------


def test_compose_file_matches_the_compose_specification(raw: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_file_matches_the_specification_after_interpolation(
    compose: dict[str, Any],
) -> None:
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(compose)


def test_the_schema_rejects_what_compose_rejects(raw: dict[str, Any]) -> None:
    """The vendored schema is strict enough to catch a misspelt key or a bad condition."""
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(raw))
    broken["services"]["consumer"]["depends_on"]["init-db"]["condition"] = "service_done"
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)
    broken = json.loads(json.dumps(raw))
    broken["services"]["consumer"]["helthcheck"] = {}
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_every_variable_has_a_value_or_default_in_env_example(raw: dict[str, Any]) -> None:
    used: set[str] = set()
    interpolate(raw, env_example(), used)
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required <= set(env_example()), sorted(required - set(env_example()))
    unused = set(env_example()) - used
    assert not unused, f".env.example sets variables compose never reads: {sorted(unused)}"


def test_env_example_passwords_are_placeholders() -> None:
    for key, value in env_example().items():
        if "PASSWORD" in key:
            assert value.startswith("change-me"), key


# ---- Docker Compose itself ----------------------------------------------------------------


def compose_command() -> list[str]:
    """Docker Compose v2 (`docker-compose` or the `docker compose` plugin); no engine needed."""
    candidates = [["docker-compose"], ["docker", "compose"]]
    for command in candidates:
        if shutil.which(command[0]) is None:
            continue
        result = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=30
        )
        if result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2."):
            return command
    pytest.skip("Docker Compose v2 not found (bash .ci/system-packages.sh installs it)")


def run_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Variables in the environment override the env file: run with a clean one.
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    files = ["--project-directory", str(REPO), "-f", str(COMPOSE), "--env-file", str(env_file)]
    return subprocess.run(
        [*compose_command(), *files, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )


def test_docker_compose_accepts_the_file_and_agrees_with_these_tests(
    compose: dict[str, Any],
) -> None:
    """The real Compose loader (current specification, interpolation, references) accepts
    the file with .env.example, and resolves it as the checks in this module assume."""
    result = run_compose(ENV_EXAMPLE, "--profile", "producer", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert set(resolved["services"]) == set(compose["services"])
    for name, service in resolved["services"].items():
        assert environment(service) == environment(compose["services"][name]), name
        assert service["image"] == compose["services"][name]["image"], name
    consumer = resolved["services"]["consumer"]
    assert consumer["depends_on"]["init-db"]["condition"] == "service_completed_successfully"
    assert "ports" not in consumer


def test_docker_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "incomplete.env"
    lines = ENV_EXAMPLE.read_text().splitlines()
    env_file.write_text("\n".join(line for line in lines if "POSTGRES_PASSWORD" not in line))
    result = run_compose(env_file, "config", "--quiet")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


# ---- the stack's shape ------------------------------------------------------------------


def test_the_stack_has_every_service_the_issue_asks_for(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "redis", "postgres", "consumer", "producer", "prometheus", "grafana"} <= set(
        services
    )
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = environment(services["kafka"])
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, no ZooKeeper"
    assert "zookeeper" not in json.dumps(compose).lower()
    assert services["producer"]["profiles"] == ["producer"]


def test_consumers_wait_for_the_init_jobs_and_healthy_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    depends = services["consumer"]["depends_on"]
    for job in ("init-topics", "init-db"):
        assert depends[job]["condition"] == "service_completed_successfully"
        assert services[job]["restart"] == "no"
    for server in ("kafka", "redis", "postgres"):
        assert depends[server]["condition"] == "service_healthy"
    for name, service in services.items():
        for target, condition in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"


def test_consumer_scales_without_port_clashes(compose: dict[str, Any]) -> None:
    consumer = compose["services"]["consumer"]
    assert "ports" not in consumer and "container_name" not in consumer
    assert consumer["expose"] == [str(HTTP_PORT)]
    assert "healthcheck" in consumer


def test_images_are_pinned_and_ours_is_built_here(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if name in THIRD_PARTY_IMAGES:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
        else:
            assert image.startswith("sentiment-stream:"), name
            assert service["build"] == ".", name
            assert service["read_only"] is True, name
    assert {n for n, s in compose["services"].items() if "build" not in s} == THIRD_PARTY_IMAGES


def test_stateful_servers_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    data_paths = {
        "kafka": environment(compose["services"]["kafka"])["KAFKA_LOG_DIRS"],
        "redis": "/data",
        "postgres": "/var/lib/postgresql/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    for name, path in data_paths.items():
        mounts = [volume.split(":") for volume in compose["services"][name]["volumes"]]
        named = {target for source, target, *_ in mounts if source in compose["volumes"]}
        assert path in named, f"{name}: {path} is not on a named volume"


# ---- consistency with the code ------------------------------------------------------------


def test_sentiment_variables_are_settings_fields(compose: dict[str, Any]) -> None:
    for name, settings in SENTIMENT_SERVICES.items():
        for key in environment(compose["services"][name]):
            assert key.startswith("SENTIMENT_"), f"{name}: {key}"
            field = key.removeprefix("SENTIMENT_").lower()
            assert field in settings.model_fields, f"{name}: {key} not in {settings.__name__}"
    for key in env_example():
        if key.startswith("SENTIMENT_"):
            assert key.removeprefix("SENTIMENT_").lower() in ConsumerSettings.model_fields, key


def test_sentiment_variables_parse_as_settings(compose: dict[str, Any]) -> None:
    """The values compose passes are valid for the settings classes (types and bounds)."""
    for name, settings in SENTIMENT_SERVICES.items():
        values = {
            key.removeprefix("SENTIMENT_").lower(): value
            for key, value in environment(compose["services"][name]).items()
        }
        parsed = settings(**values)
        assert parsed.kafka_bootstrap_servers == "kafka:9092"


def test_ports_agree_with_the_consumer_and_prometheus(compose: dict[str, Any]) -> None:
    consumer = compose["services"]["consumer"]
    env = environment(consumer)
    assert int(env["SENTIMENT_HTTP_PORT"]) == HTTP_PORT
    assert env["SENTIMENT_HTTP_HOST"] == "0.0.0.0", "the default 127.0.0.1 is unreachable"
    assert f"127.0.0.1:{HTTP_PORT}/readyz" in " ".join(consumer["healthcheck"]["test"])
    assert '"/readyz"' in (REPO / "consumer" / "http.py").read_text()

    prometheus = yaml.safe_load((REPO / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "sentiment-consumer"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["consumer"] and discovery["port"] == HTTP_PORT
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_topics_agree_with_the_settings(compose: dict[str, Any]) -> None:
    defaults = ConsumerSettings.model_fields
    posts = defaults["posts_topic"].default
    dead_letters = defaults["dead_letter_topic"].default
    for name in SENTIMENT_SERVICES:
        env = environment(compose["services"][name])
        assert env.get("SENTIMENT_POSTS_TOPIC", posts) == posts
        assert env.get("SENTIMENT_DEAD_LETTER_TOPIC", dead_letters) == dead_letters
    script = compose["services"]["init-topics"]["command"][-1]
    created = re.findall(r"--create --if-not-exists --topic (\S+) --partitions (\S+)", script)
    assert {topic for topic, _ in created} == {posts, dead_letters}
    assert dict(created)[posts] == env_example()["POSTS_PARTITIONS"]


def test_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            # The producer's data set is the user's (PRODUCER_DATA_DIR), not the project's.
            if source.startswith((".", "/")) and "/shared/data" not in source:
                assert (REPO / source).exists(), f"{name}: {source} does not exist"


def test_producer_replays_the_demo_data_by_default(compose: dict[str, Any]) -> None:
    from consumer.demo import DEFAULT_DATA

    env = env_example()
    assert Path(env["PRODUCER_DATA_DIR"]) == DEFAULT_DATA.parent
    assert env["PRODUCER_DATA_FILE"] == DEFAULT_DATA.name
    command = compose["services"]["producer"]["command"]
    assert command[:2] == ["producer", "replay"] and command[2] == f"/data/{DEFAULT_DATA.name}"
    from producer.__main__ import build_parser

    build_parser().parse_args(command[1:])  # flags the producer knows


def test_monitoring_mounts_match_the_provisioning(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (REPO / "monitoring/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )["providers"][0]
    assert mounts["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "monitoring/grafana/dashboards" / Path(home).name).exists()

    datasources = (REPO / "monitoring/grafana/provisioning/datasources/datasources.yml").read_text()
    for variable in re.findall(r"\$\{(\w+)\}", datasources):
        assert variable in environment(grafana), f"Grafana needs {variable}"
    assert "http://prometheus:9090" in datasources and "url: postgres:5432" in datasources

    postgres_env = environment(compose["services"]["postgres"])
    script = (REPO / "monitoring/postgres/10-grafana-reader.sh").read_text()
    for variable in set(re.findall(r'"\$(\w+)"', script)):
        assert variable in postgres_env, f"the init script needs {variable}"
    assert environment(grafana)["GRAFANA_DB_USER"] == postgres_env["GRAFANA_DB_USER"]

    prometheus_mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    assert prometheus_mounts["./monitoring/prometheus"] == "/etc/prometheus"
    assert (
        "--config.file=/etc/prometheus/prometheus.yml"
        in compose["services"]["prometheus"]["command"]
    )


# ---- the Dockerfile -----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    instructions = dockerfile_instructions()
    stages = [args for op, args in instructions if op == "FROM"]
    assert len(stages) >= 2 and all("-slim" in stage for stage in stages)
    users = [args for op, args in instructions if op == "USER"]
    assert users and not users[-1].startswith(("root", "0")), "runs as root"
    last_stage = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    runtime = instructions[last_stage:]
    assert not any(op == "RUN" and "pip install" in args for op, args in runtime)
    text = DOCKERFILE.read_text()
    assert "[training]" not in text and "torch" not in re.sub(r"#.*", "", text).replace(
        'import torch"', ""
    )


def test_dockerfile_copies_exist_and_the_bundle_is_the_default_one() -> None:
    from inference import DEFAULT_BUNDLE_PATH

    args = {}
    for op, arguments in dockerfile_instructions():
        if op == "ARG" and "=" in arguments:
            key, value = arguments.split("=", 1)
            args[key] = value
        if op == "COPY" and "--from" not in arguments:
            *sources, _ = [a for a in shlex.split(arguments) if not a.startswith("--")]
            for source in sources:
                if source == "${BUNDLE_DIR}":
                    bundle = REPO / args["BUNDLE_DIR"]
                    assert bundle == DEFAULT_BUNDLE_PATH, "bake in the bundle the code loads"
                else:
                    assert (REPO / source).exists(), f"COPY {source}: no such path"
    env = " ".join(arguments for op, arguments in dockerfile_instructions() if op == "ENV")
    for key in re.findall(r"\b(SENTIMENT_\w+)=", env):
        assert key.removeprefix("SENTIMENT_").lower() in ConsumerSettings.model_fields, key
    assert f"SENTIMENT_HTTP_PORT={HTTP_PORT}" in env and "SENTIMENT_HTTP_HOST=0.0.0.0" in env


def copied_packages() -> list[str]:
    return [
        args.split()[0]
        for op, args in dockerfile_instructions()
        if op == "COPY" and (REPO / args.split()[0] / "__init__.py").exists()
    ]


def test_dockerignore_lets_every_copied_path_through() -> None:
    allowed = {
        line.strip().lstrip("!").rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for package in [*copied_packages(), "pyproject.toml", "README.md", "models"]:
        assert package in allowed, f".dockerignore hides {package}"


def test_the_image_s_packages_run_the_services_without_torch(tmp_path: Path) -> None:
    """The packages the Dockerfile copies are enough for both services, and torch is not needed.

    The build stage's `pip install --no-deps .` is repeated here as a wheel build of exactly
    what the Dockerfile copies; the services are then imported from that wheel with torch,
    devstack and training made unimportable."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ["pyproject.toml", "README.md"]:
        (context / name).write_bytes((REPO / name).read_bytes())
    packages = copied_packages()
    assert {"consumer", "producer", "inference", "schemas", "common", "textclean"} <= set(packages)
    for package in packages:
        subprocess.run(
            ["cp", "-r", str(REPO / package), str(context / package)], check=True, timeout=60
        )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(context)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("schemas/migrations/") and name.endswith(".sql") for name in names)
    assert not any(name.startswith(("training/", "devstack/", "exporter/")) for name in names)

    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    probe = f"""
import sys
sys.path.insert(0, {str(installed)!r})
BLOCKED = {{"torch", "training", "devstack", "exporter", "tests"}}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is not in the image")

sys.meta_path.insert(0, Block())
import consumer.__main__, consumer.app, producer.__main__, schemas.migrate
assert consumer.app.__file__.startswith({str(installed)!r}), consumer.app.__file__
"""
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_the_dependency_layer_builds_from_pyproject_alone(tmp_path: Path) -> None:
    """The build stage installs the dependencies from pyproject.toml and a stub package before
    copying the code (a cached layer): that stub must build, and pull in no torch."""
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "__init__.py").touch()
    for name in ["pyproject.toml", "README.md"]:
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    assert "mkdir -p common && touch common/__init__.py" in DOCKERFILE.read_text()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "wheels"), str(tmp_path)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]
    assert requires and not any(r.lower().startswith("torch") for r in requires), requires
