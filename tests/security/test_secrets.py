"""No secret in the repository; secrets are read from the environment and never printed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from consumer.settings import ConsumerSettings

ROOT = Path(__file__).resolve().parents[2]

# Development defaults that are documented as such (the embedded stack's and the dev
# overlay's throwaway password); each must be described in the docs as a dev default.
DEV_DEFAULTS = {"sentiment-dev"}
PLACEHOLDERS = {"...", "***", "password", "<password>", "xxx", ""}

URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s:@'\"]*:([^@\s/'\"]+)@", re.I)
ASSIGNED = re.compile(
    r"(?:password|passwd|secret|api_?key|access_?key|secret_?key|auth_?token|private_?key)"
    r"\w*\s*[:=]\s*(?:SecretStr\()?[\"']([^\"']*)[\"']",
    re.I,
)
ENV_FILE = re.compile(r"^\s*[A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|API_KEY)[A-Z0-9_]*=(\S*)", re.M)
# Formats of real credentials: these are refused anywhere, tests included.
TOKENS = re.compile(
    r"AKIA[0-9A-Z]{16}"
    r"|-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
    r"|gh[pousr]_[A-Za-z0-9]{36}"
    r"|xox[baprs]-[A-Za-z0-9-]{10,}"
    r"|sk-[A-Za-z0-9]{32,}"
)
SECRET_FILES = re.compile(r"(^|/)(\.env|stack\.json|id_rsa|id_ed25519|.*\.pem|.*\.key|.*\.p12)$")


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def allowed(value: str) -> bool:
    lowered = value.lower()
    return (
        value in DEV_DEFAULTS
        or lowered in PLACEHOLDERS
        or lowered.startswith(("change-me", "changeme", "$", "{", "<", "%("))
        or value.isupper()  # a name standing for the value, e.g. PASSWORD
    )


def findings(path: Path, text: str) -> list[str]:
    relative = path.relative_to(ROOT).as_posix()
    found = [f"{relative}: token {m.group(0)[:12]}..." for m in TOKENS.finditer(text)]
    if relative == "tests/security/test_secrets.py":
        return found
    # Unit tests build throwaway DSNs ("postgresql://u:pw@db/..."): only real formats count there.
    if relative.startswith("tests/"):
        return found
    for pattern in (URL_CREDENTIALS, ASSIGNED, ENV_FILE):
        for match in pattern.finditer(text):
            if not allowed(match.group(1)):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{relative}:{line}: {match.group(0)[:60]!r}")
    return found


def test_no_secret_in_tracked_files() -> None:
    problems = []
    for path in tracked_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        problems += findings(path, data.decode("utf-8", errors="replace"))
    assert not problems, "possible secrets:\n" + "\n".join(problems)


def test_no_secret_files_are_tracked() -> None:
    names = [p.relative_to(ROOT).as_posix() for p in tracked_files()]
    assert not [name for name in names if SECRET_FILES.search(name)]


def test_the_scanner_catches_what_it_should() -> None:
    path = ROOT / "consumer" / "example.py"
    assert findings(path, 'DSN = "postgresql://svc:hunter2@db:5432/x"')
    assert findings(path, 'password = "hunter2"')
    assert findings(path, 'SecretStr("hunter2")  # api_key: "hunter2"')
    assert findings(path, "REDIS_PASSWORD=hunter2\n")
    assert findings(path, "AKIA" + "ABCDEFGHIJKLMNOP")
    assert not findings(path, "postgresql://sentiment:sentiment-dev@127.0.0.1/s")
    assert not findings(path, "REDIS_PASSWORD=change-me-redis\nX=${REDIS_PASSWORD:?set}\n")
    assert not findings(path, 'password="$GRAFANA_DB_PASSWORD"')


@pytest.mark.parametrize("default", sorted(DEV_DEFAULTS))
def test_dev_defaults_are_documented_as_such(default: str) -> None:
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    mentions = [
        line
        for doc in docs
        if doc.is_file()
        for line in doc.read_text().splitlines()
        if default in line
    ]
    assert any("dev" in line.lower() for line in mentions), f"{default} is not documented"


def test_settings_keep_credentials_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_POSTGRES_DSN", "postgresql://svc:pg-s3cret@db:5432/sentiment")
    monkeypatch.setenv("SENTIMENT_REDIS_URL", "redis://:redis-s3cret@cache:6379/0")
    monkeypatch.setenv("SENTIMENT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SENTIMENT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SENTIMENT_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("SENTIMENT_KAFKA_SASL_PASSWORD", "kafka-s3cret")
    monkeypatch.setenv("SENTIMENT_KAFKA_SSL_CAFILE", "/etc/ssl/ca.pem")
    settings = ConsumerSettings()
    for field in ("postgres_dsn", "redis_url", "kafka_sasl_password"):
        assert isinstance(getattr(settings, field), SecretStr)
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in ("pg-s3cret", "redis-s3cret", "kafka-s3cret"):
        assert secret not in shown
    options = settings.kafka_client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "svc"
    assert options["sasl_plain_password"] == "kafka-s3cret"
    assert options["ssl_cafile"] == "/etc/ssl/ca.pem"
