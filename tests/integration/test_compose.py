"""docker-compose.yml is valid (checked with `docker compose config` where a compose tool exists)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_is_valid(tmp_path: Path) -> None:
    compose = _compose()
    if compose is None:
        pytest.skip("no docker compose / docker-compose on this machine")
    env = (ROOT / ".env.example").read_text()
    for var in (
        "CUSTODY_JWT_KEY",
        "CUSTODY_LEDGER_SIGNING_KEY",
        "CUSTODY_REPORT_SIGNING_CERT",
        "CUSTODY_REPORT_SIGNING_KEY",
    ):
        env = env.replace(f"{var}=\n", f"{var}=x\n")
    (tmp_path / ".env").write_text(env)
    out = subprocess.run(
        [*compose, "--env-file", str(tmp_path / ".env"), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    for service in (
        "postgres",
        "temporal",
        "temporal-ui",
        "minio",
        "minio-bucket",
        "mailpit",
        "api",
        "worker",
    ):
        assert f"  {service}:" in out.stdout
    # Without the secrets, compose must refuse to start.
    (tmp_path / "empty.env").write_text("")
    empty = str(tmp_path / "empty.env")
    refused = subprocess.run(
        [*compose, "--env-file", empty, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode != 0
