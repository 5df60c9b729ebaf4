"""`custody dev` (what `make run` runs): starts everything, answers, restarts what crashes, stops
cleanly, keeps its data, and writes no secret into its logs."""

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
from tests.flow import wait_for
from tests.helpers import secrets_in_logs


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


def _child_running(launcher: int, *module: str) -> int | None:
    """The pid of the launcher's child started as `python -m <module>`."""
    for pid in _descendants(launcher):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if argv[1:3] == ["-m", *module] and _alive(pid):
            return pid
    return None


def _health(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _kill_api_and_worker_and_see_them_back(proc: subprocess.Popen[str], home: Path, api: str) -> None:
    """SIGKILL the API and the worker: the launcher keeps running and starts both again."""
    logs = home / "logs"
    api_pid, worker_pid = _child_running(proc.pid, "api.serve"), _child_running(proc.pid, "worker")
    assert api_pid and worker_pid, "the API and the worker are the launcher's children"
    ready_before = (logs / "worker.log").read_text().count("worker ready")
    os.kill(api_pid, signal.SIGKILL)
    os.kill(worker_pid, signal.SIGKILL)
    wait_for("a new API process", lambda: _child_running(proc.pid, "api.serve") not in (None, api_pid), 30)
    wait_for("the restarted API's /health", lambda: _health(api), 60)
    wait_for(
        "the restarted worker to say it is ready",
        lambda: (logs / "worker.log").read_text().count("worker ready") > ready_before,
        60,
    )
    assert proc.poll() is None, "the launcher ended when a child died"
    assert _child_running(proc.pid, "worker") not in (None, worker_pid)
    assert "[custody dev] api was killed by SIGKILL; restarting it in 1 s" in (logs / "api.log").read_text()
    assert "[custody dev] worker restarted (pid" in (logs / "worker.log").read_text()


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

        _kill_api_and_worker_and_see_them_back(proc, home, facts["api"])
        token = httpx.post(f"{facts['api']}/auth/token", data=inv, timeout=10).json()["access_token"]
        got = httpx.get(f"{facts['api']}/owners/{owner_id}", headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200, got.text
    finally:
        if proc.poll() is None:
            out = _stop(proc)
    assert "custody is running" in out
    assert "api was killed by SIGKILL; restarting it in 1 s" in out
    assert "worker restarted (pid" in out
    assert not (home / "dev.json").exists()
    secrets = json.loads((home / "secrets.json").read_text())
    known = [token, facts["s3"]["secret_key"], *(u["password"] for u in facts["users"].values())]
    known += [v for k, v in secrets.items() if isinstance(v, str) and "\n" not in v and k != "s3_access_key"]
    assert secrets_in_logs(home / "logs", known) == []

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
