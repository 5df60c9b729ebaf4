from __future__ import annotations

import stat
from pathlib import Path

import pytest

from custody.errors import ConfigurationError
from custody.settings import Settings, load_settings


def test_reminders_parse_from_comma_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUSTODY_REMINDERS_S", "5, 10,20")
    assert Settings(home=tmp_path).reminders_s == [5, 10, 20]


def test_bad_reminders_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUSTODY_REMINDERS_S", "5,soon")
    with pytest.raises(ValueError, match="comma-separated"):
        Settings(home=tmp_path)


def test_production_refuses_to_start_without_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in (
        "CUSTODY_JWT_KEY",
        "CUSTODY_S3_ACCESS_KEY",
        "CUSTODY_S3_SECRET_KEY",
        "CUSTODY_LEDGER_SIGNING_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CUSTODY_MODE", "production")
    with pytest.raises(ConfigurationError) as info:
        load_settings(home=tmp_path)
    for var in (
        "CUSTODY_JWT_KEY",
        "CUSTODY_S3_ACCESS_KEY",
        "CUSTODY_S3_SECRET_KEY",
        "CUSTODY_LEDGER_SIGNING_KEY",
    ):
        assert var in info.value.message
    assert not (tmp_path / "secrets.json").exists(), "production mode must not generate secrets"


def test_dev_generates_secrets_once_with_private_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CUSTODY_MODE", "dev")
    first = load_settings(home=tmp_path)
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_settings(home=tmp_path)
    for field in ("jwt_key", "s3_access_key", "s3_secret_key", "ledger_signing_key"):
        assert first.secret(field) == second.secret(field)
    assert "BEGIN PRIVATE KEY" in first.secret("jwt_key")


def test_env_secret_wins_over_generated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUSTODY_MODE", "dev")
    monkeypatch.setenv("CUSTODY_S3_SECRET_KEY", "from-the-environment")
    assert load_settings(home=tmp_path).secret("s3_secret_key") == "from-the-environment"


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        f"CUSTODY_{name.upper()}"
        for name in Settings.model_fields
        if f"`CUSTODY_{name.upper()}`" not in readme
    ]
    assert not missing, f"README's settings table lacks {missing}"
