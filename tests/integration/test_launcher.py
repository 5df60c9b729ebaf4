"""`custody dev` (what `make run` runs): starts everything, answers, stops cleanly, keeps its data."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from devstack.procs import free_port


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "dev"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    dev_json = home / "dev.json"
    deadline = time.monotonic() + 120
    while not dev_json.exists():
        if proc.poll() is not None:
            raise AssertionError(f"launcher exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        assert time.monotonic() < deadline, "the stack did not come up within 120 s"
        time.sleep(0.3)
    time.sleep(0.2)
    return proc, json.loads(dev_json.read_text())


def _stop(proc: subprocess.Popen[str]) -> str:
    kids = _descendants(proc.pid)
    assert len(kids) >= 5, f"expected smtp, temporal, seaweedfs, api and worker, found {kids}"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    leftover = [pid for pid in kids if _alive(pid)]
    assert not leftover, f"processes left behind: {leftover}"
    return out


def test_launcher_runs_the_stack_and_stops_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "custody-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env.update(
        CUSTODY_HOME=str(home), CUSTODY_MODE="dev", CUSTODY_API_PORT=str(free_port()),
        CUSTODY_TEMPORAL_PORT=str(free_port()), CUSTODY_TEMPORAL_UI_PORT=str(free_port()),
        CUSTODY_S3_PORT=str(free_port(grpc_pair=True)), CUSTODY_SMTP_PORT=str(free_port()),
    )  # fmt: skip

    proc, facts = _start(home, env)
    try:
        assert stat.S_IMODE((home / "dev.json").stat().st_mode) == 0o600
        for key in ("api", "temporal", "temporal_namespace", "temporal_ui", "s3", "smtp", "maildir",
                    "database_url", "users"):  # fmt: skip
            assert key in facts
        assert set(facts["users"]) == {"investigator", "prosecutor", "auditor", "admin"}
        assert set(facts["s3"]) == {"endpoint", "access_key", "secret_key", "bucket"}
        health = httpx.get(f"{facts['api']}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert httpx.get(facts["temporal_ui"], timeout=10).status_code == 200
        assert httpx.get(f"{facts['api']}/docs", timeout=10).status_code == 200
        inv = facts["users"]["investigator"]
        token = httpx.post(f"{facts['api']}/auth/token", data=inv, timeout=10).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        owner = httpx.post(f"{facts['api']}/owners", json={"name": "Kept", "email": "kept@example.org"},
                           headers=auth, timeout=10)  # fmt: skip
        assert owner.status_code == 201, owner.text
        owner_id = owner.json()["id"]
    finally:
        if proc.poll() is None:
            out = _stop(proc)
    assert "custody is running" in out
    assert not (home / "dev.json").exists()

    # A second run finds the first one's data, secrets and logins.
    proc, facts2 = _start(home, env)
    try:
        assert facts2["users"] == facts["users"]
        assert facts2["s3"] == facts["s3"]
        inv = facts2["users"]["investigator"]
        token = httpx.post(f"{facts2['api']}/auth/token", data=inv, timeout=10).json()["access_token"]
        got = httpx.get(f"{facts2['api']}/owners/{owner_id}", headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200 and got.json()["name"] == "Kept"
    finally:
        if proc.poll() is None:
            _stop(proc)
