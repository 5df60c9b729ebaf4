"""docker-compose.yml and the Dockerfile, read as data (no Docker daemon needed): pinned, maintained
images; a healthcheck and a condition on every dependency; least-privilege credentials for the app;
secrets as files. Also `docker compose config` where a compose tool can run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEPRECATED = ("temporalio/auto-setup", "minio/minio", "minio/mc", "bitnami/")
PINNED = re.compile(r"^[\w./-]+:[\w.-]+(@sha256:[0-9a-f]{64})?$")
ONE_SHOT = {"temporal-schema", "temporal-setup", "s3-setup", "migrate"}
CUSTODY_SECRETS = ("JWT_KEY", "LEDGER_SIGNING_KEY", "REPORT_SIGNING_CERT", "REPORT_SIGNING_KEY",
                   "S3_ACCESS_KEY", "S3_SECRET_KEY")  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def test_every_image_is_pinned_and_maintained(compose: dict[str, Any]) -> None:
    for name, svc in _services(compose).items():
        if "build" in svc:
            continue
        image = svc["image"]
        assert PINNED.match(image), f"{name}: {image} is not pinned to a version tag"
        tag = image.split("@")[0].rsplit(":", 1)[1]
        assert tag not in ("latest", "stable", "main") and any(c.isdigit() for c in tag), f"{name}: {image}"
        assert not image.startswith(DEPRECATED), f"{name}: {image} is deprecated or no longer published"


def test_every_service_has_a_healthcheck_and_every_dependency_a_condition(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if name in ONE_SHOT:
            assert check == {"disable": True}, f"{name}: a one-shot job is waited for by completion"
            assert str(svc["restart"]).startswith("on-failure")
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name
            assert svc["restart"] == "unless-stopped", name
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on as a list has no condition"
        for dep, how in deps.items():
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert how == {"condition": expected}, f"{name} -> {dep}: {how}"


def test_api_and_worker_wait_for_migrations_temporal_and_s3(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        for needed in ("migrate", "temporal", "temporal-setup", "seaweedfs", "s3-setup"):
            assert needed in deps, f"{name} does not wait for {needed}"
        assert services[name]["command"] == [{"api": "serve", "worker": "worker"}[name]]
    # The owner migrates and grants the app role its rows (read and append only on the ledger).
    assert services["migrate"]["command"] == ["migrate", "--app-role", "custody"]
    assert services["temporal"]["depends_on"] == {
        "temporal-schema": {"condition": "service_completed_successfully"}
    }


def test_the_app_has_no_root_credentials(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name in ("api", "worker"):
        env = services[name]["environment"]
        url = env["CUSTODY_DATABASE_URL"]
        assert url.startswith("postgresql://custody@"), f"{name} connects as {url}"
        assert ":" not in url.split("//", 1)[1].split("@", 1)[0], "no password in the URL"
        assert env["PGPASSWORD_FILE"] == "/run/secrets/db_app_password"
        for secret in CUSTODY_SECRETS:
            assert f"CUSTODY_{secret}" not in env, f"{name}: {secret} in the environment, not a file"
            assert env[f"CUSTODY_{secret}_FILE"].startswith("/run/secrets/")
        assert env["CUSTODY_S3_ACCESS_KEY_FILE"].endswith("s3_app_access_key")
        secrets = set(services[name]["secrets"])
        assert not {s for s in secrets if "admin" in s or "superuser" in s or "owner" in s}, secrets
    # The admin S3 identity only where the bucket is made; the owner role only where the schema is.
    assert services["s3-setup"]["environment"]["CUSTODY_S3_ACCESS_KEY_FILE"].endswith("s3_admin_access_key")
    assert services["migrate"]["environment"]["CUSTODY_DATABASE_URL"].startswith(
        "postgresql://custody_owner@"
    )
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE ROLE custody LOGIN" in init and "NOCREATEDB" in init
    assert "CREATE DATABASE temporal OWNER temporal" in init
    start = (ROOT / "deploy" / "seaweedfs-start.sh").read_text()
    assert '"actions": ["Read:${bucket}", "Write:${bucket}", "List:${bucket}"]' in start
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./deploy/secrets/")
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text().splitlines()


def test_dockerfile_installs_the_lock_before_the_code_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    lock = next(
        i for i, line in enumerate(lines) if "--require-hashes" in line and "requirements.lock" in line
    )
    first_code = next(i for i, line in enumerate(lines) if line.startswith("COPY custody"))
    assert lock < first_code, "dependencies must be installed before the code is copied (layer cache)"
    assert "requirements-dev.lock" not in text
    assert "USER 10001" in text and "HEALTHCHECK" in text and "/health/live" in text
    assert lines.count("FROM ${PYTHON_IMAGE}") == 1 and "AS build" in text  # multi-stage
    assert 'ENTRYPOINT ["custody-entrypoint"]' in text and 'CMD ["serve"]' in text


def _compose_tool() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("no docker compose / docker-compose on this machine (the checks above read the file)")
    (tmp_path / ".env").write_text("TEMPORAL_DB_PASSWORD=x\nCUSTODY_PUBLIC_URL=http://localhost:8000\n")
    out = subprocess.run(
        [*tool, "--env-file", str(tmp_path / ".env"), "-f", str(COMPOSE), "config", "--no-interpolate"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (tmp_path / "empty.env").write_text("")
    refused = subprocess.run(
        [*tool, "--env-file", str(tmp_path / "empty.env"), "-f", str(COMPOSE), "config"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert refused.returncode != 0, "compose must refuse to start without TEMPORAL_DB_PASSWORD"
