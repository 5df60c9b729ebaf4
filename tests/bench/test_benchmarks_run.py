"""Every benchmark in bench/ runs at a tiny size in `make test`, so none can rot unnoticed.

No timing is asserted (speed is what the benchmarks themselves report, beside their anchors): each
must start, run against the real components it names, and print its figures beside those anchors.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.helpers import settings_env

ROOT = Path(__file__).resolve().parents[2]

#: script, tiny arguments, words that must appear in what it prints (its figures and anchors)
BENCHMARKS = [
    ("radius_search.py", "--cameras 2000 --queries 5 --naive 1", ["indexed search", "naive full scan"]),
    ("ledger.py", "--entries 2000 --appends 40 --processes 2 --queries 60", ["inclusion proof", "anchor"]),
    ("audit_query.py", "--entries 3000 --queries 5 --scans 1", ["indexed query", "full scan", "anchor"]),
    ("console.py", "--requests 20 --evidence 5 --rounds 2", ["case page", "anchor"]),
    ("report.py", "--events 20 --file-mib 1", ["[report]", "[verify]", "anchor"]),
    # bench/tus.py's figures come from footage.py's stack here (--tus-mib): one stack start, not two.
    (
        "footage.py",
        "--upload-mib 2 --requests 3 --tus-mib 2",
        ["[upload]", "[verify]", "[requests]", "[tus]", "anchor"],
    ),
    (
        "load.py",
        "--uploads 2 --upload-mib 2 --rate 20 --seconds 2 --clients 2,4 --ceiling-seconds 1",
        ["[reads alone]", "[reads with uploads]", "[uploads]", "[read ceiling]", "anchor"],
    ),
]


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("script", "args", "expected"), BENCHMARKS, ids=[b[0] for b in BENCHMARKS])
def test_benchmark_runs_at_a_tiny_size(script: str, args: str, expected: list[str]) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args.split()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert run.returncode == 0, f"bench/{script} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    for words in expected:
        assert words in run.stdout, f"bench/{script} did not print {words!r}:\n{run.stdout[-3000:]}"


def test_working_copy_benchmark_runs_at_a_tiny_size(stack: Stack) -> None:
    """bench/workcopy.py on a 1 s clip, against the suite's SeaweedFS (no server of its own: < 5 s)."""
    tiny = ["--seconds", "1", "--size", "160x120", "--rounds", "1", "--s3-from-env"]
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "workcopy.py"), *tiny],
        cwd=ROOT,
        env=settings_env(stack.settings()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"bench/workcopy.py failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    for words in ("[workcopy]", "anchor ffmpeg alone", "ratio"):
        assert words in run.stdout, f"bench/workcopy.py did not print {words!r}:\n{run.stdout[-3000:]}"
