"""Run consumer processes from Python: the demo, benchmarks and fault-injection tests use it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


class ConsumerProcess:
    """`python -m consumer run` as a child process with its own HTTP port."""

    def __init__(self, env: dict[str, str], http_port: int, log_path: Path) -> None:
        self.http_port = http_port
        self.log_path = log_path
        self._env = {**os.environ, **env, "SENTIMENT_HTTP_PORT": str(http_port)}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> ConsumerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "consumer", "run"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"consumer exited early; see {self.log_path}")
            if self.readiness().get("ready"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"consumer not ready after {timeout}s: {self.readiness()}")

    def readiness(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)
        except OSError:
            return {}

    def metrics(self) -> dict[str, float]:
        """Sample name (with labels) → value, e.g. 'sentiment_cache_requests_total{result=hit}'."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return values

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then wait; returns the exit code (SIGKILL after the timeout)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def service_env(
    kafka: str, redis_url: str, postgres_dsn: str, **settings: object
) -> dict[str, str]:
    """SENTIMENT_* variables for a consumer pointed at the given servers."""
    env = {
        "SENTIMENT_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "SENTIMENT_REDIS_URL": redis_url,
        "SENTIMENT_POSTGRES_DSN": postgres_dsn,
    }
    env.update({f"SENTIMENT_{key.upper()}": str(value) for key, value in settings.items()})
    return env
