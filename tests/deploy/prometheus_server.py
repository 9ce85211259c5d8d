"""A real Prometheus server (Debian's `prometheus` binary) for tests: free port, temporary
storage, 1 s scrape and rule evaluation, stopped at the end."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    def __init__(
        self, workdir: Path, port: int, targets: list[str], rule_files: list[Path]
    ) -> None:
        self.workdir = workdir
        self.port = port
        self.log_path = workdir / "prometheus.log"
        rules = []
        for path in rule_files:
            shutil.copy(path, workdir / path.name)
            rules.append(path.name)
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": rules,
            "scrape_configs": [
                {"job_name": "sentiment-consumer", "static_configs": [{"targets": targets}]}
            ],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> PrometheusServer:
        binary = shutil.which("prometheus")
        assert binary, "prometheus not installed"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready after {timeout}s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, or raises PrometheusError with the API's error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                document = json.load(response)
        except urllib.error.HTTPError as error:
            document = json.load(error)
        if document.get("status") != "success":
            raise PrometheusError(f"{document.get('errorType')}: {document.get('error')}")
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query now; the result as a list of samples (scalars become one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None
