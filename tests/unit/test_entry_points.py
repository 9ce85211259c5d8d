"""Every stage runs as `python -m <stage> --help`, and the service never needs torch."""

import subprocess
import sys

import pytest

STAGES = ["consumer", "producer", "training", "exporter", "devstack", "schemas"]
BENCHMARKS = [
    f"benchmarks.{name}"
    for name in (
        "e2e", "soak", "compare", "model_speed", "model_gil", "poll_contention", "regex_gil",
        "tokenizer_parity", "instructions", "targets",
    )
]  # fmt: skip


@pytest.mark.parametrize("stage", STAGES + BENCHMARKS)
def test_help(stage: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", stage, "--help"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert "usage" in completed.stdout.lower()


def test_service_imports_without_torch() -> None:
    # An import hook that refuses torch, as if it were not installed.
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is not installed')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import consumer.app, consumer.demo, producer.publisher, inference, textclean\n"
        "assert 'torch' not in sys.modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("flag", ["--limit", "--minutes"])
def test_results_refuses_a_count_below_one(flag: str) -> None:
    # Before: a negative LIMIT reached PostgreSQL and came back as a traceback.
    command = [sys.executable, "-m", "consumer", "results", "recent", flag, "-1"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert "must be at least 1" in finished.stderr


def test_the_demo_checks_its_data_before_starting_the_stack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from consumer.demo import data_problem

    (tmp_path / "empty.csv").write_text("label,text\n")
    (tmp_path / "odd.txt").write_text("a;b\n")
    (tmp_path / "ok.csv").write_text("label,text\n1,good\n")
    assert "no data" in str(data_problem(tmp_path / "missing.csv"))
    assert "no rows" in str(data_problem(tmp_path / "empty.csv"))
    assert "cannot tell the format" in str(data_problem(tmp_path / "odd.txt"))
    assert data_problem(tmp_path / "ok.csv") is None
