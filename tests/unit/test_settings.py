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


# --- processes and production guards ----------------------------------------------------------------


def _clear_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from custody.settings import secret_field_names

    for name in secret_field_names():
        monkeypatch.delenv(f"CUSTODY_{name.upper()}", raising=False)
        monkeypatch.delenv(f"CUSTODY_{name.upper()}_FILE", raising=False)
    monkeypatch.delenv("CUSTODY_DATABASE_URL", raising=False)
    monkeypatch.delenv("CUSTODY_ALLOW_SQLITE", raising=False)


def _production_secrets(tmp_path: Path) -> dict[str, str]:
    """Fresh keys, as an operator makes them: not the ones in $CUSTODY_HOME/secrets.json."""
    from custody.devsecrets import _generate, _report_certificate

    made = {k: v for k, v in _generate().items() if isinstance(v, str)}
    made["report_signing_cert"], made["report_signing_key"] = _report_certificate()
    return made


def _set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"CUSTODY_{name.upper()}", value)


def test_every_secret_reads_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CUSTODY_<NAME>_FILE for every SecretStr field, PEMs with real newlines, surrounding
    whitespace (a trailing newline from `echo`) stripped."""
    from custody.settings import secret_field_names

    _clear_secrets(monkeypatch)
    values = _production_secrets(tmp_path)
    for name in secret_field_names():
        path = tmp_path / f"{name}.secret"
        path.write_text(values.get(name, f"value-of-{name}") + "\n")
        monkeypatch.setenv(f"CUSTODY_{name.upper()}_FILE", str(path))
    # Secrets that need a companion setting get it (SMTP AUTH: a password goes with a user name).
    monkeypatch.setenv("CUSTODY_SMTP_USERNAME", "custody")
    monkeypatch.setenv("CUSTODY_TSA_USERNAME", "custody")
    monkeypatch.setenv("CUSTODY_TSA_URL", "https://tsa.example/")
    settings = load_settings(mode="test", home=tmp_path / "home")
    for name in secret_field_names():
        assert settings.secret(name) == values.get(name, f"value-of-{name}").strip()
    from custody.security import TokenService

    TokenService(settings)  # the PEM from a file loads


def test_variable_and_its_file_together_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_secrets(monkeypatch)
    (tmp_path / "k").write_text("from-a-file")
    monkeypatch.setenv("CUSTODY_S3_SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("CUSTODY_S3_SECRET_KEY_FILE", str(tmp_path / "k"))
    with pytest.raises(ConfigurationError) as info:
        Settings(home=tmp_path)
    assert "CUSTODY_S3_SECRET_KEY and CUSTODY_S3_SECRET_KEY_FILE" in info.value.message


def test_an_unreadable_secret_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_secrets(monkeypatch)
    monkeypatch.setenv("CUSTODY_JWT_KEY_FILE", str(tmp_path / "absent.pem"))
    with pytest.raises(ConfigurationError, match=r"CUSTODY_JWT_KEY_FILE names .*absent\.pem"):
        Settings(home=tmp_path)


def test_pems_load_with_escaped_newlines_alike(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The one-line form .env files need (`\\n` escapes) for the JWT key and the report certificate
    and key: the report signer used to fail on it with 'Unable to load PEM file'."""
    from custody.security import TokenService
    from reports.signing import ReportSigner

    _clear_secrets(monkeypatch)
    values = _production_secrets(tmp_path)
    one_line = {k: v.replace("\n", "\\n") if "-----BEGIN" in v else v for k, v in values.items()}
    assert "\n" not in one_line["report_signing_cert"]
    _set_env(monkeypatch, one_line)
    settings = load_settings(mode="test", home=tmp_path)
    for name in ("jwt_key", "report_signing_cert", "report_signing_key"):
        assert settings.secret(name) == values[name]
    TokenService(settings)
    signer = ReportSigner(settings.secret("report_signing_cert"), settings.secret("report_signing_key"))
    assert signer.sign(_tiny_pdf()).startswith(b"%PDF")


def test_production_needs_a_database_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_secrets(monkeypatch)
    _set_env(monkeypatch, _production_secrets(tmp_path))
    with pytest.raises(ConfigurationError, match="CUSTODY_DATABASE_URL is not set"):
        load_settings(mode="production", home=tmp_path)


def test_production_refuses_sqlite_unless_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_secrets(monkeypatch)
    _set_env(monkeypatch, _production_secrets(tmp_path))
    monkeypatch.setenv("CUSTODY_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ConfigurationError, match="CUSTODY_ALLOW_SQLITE=true"):
        load_settings(mode="production", home=tmp_path)
    monkeypatch.setenv("CUSTODY_ALLOW_SQLITE", "true")
    assert load_settings(mode="production", home=tmp_path).allow_sqlite
    monkeypatch.setenv("CUSTODY_DATABASE_URL", "postgresql://custody@db.example.org/custody")
    monkeypatch.delenv("CUSTODY_ALLOW_SQLITE")
    load_settings(mode="production", home=tmp_path)  # PostgreSQL needs no permission


def test_production_refuses_generated_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A key from $CUSTODY_HOME/secrets.json (what `make run` generated) is refused by name, even
    when given as a one-line PEM."""
    from custody.devsecrets import ensure_dev_secrets

    _clear_secrets(monkeypatch)
    generated = ensure_dev_secrets(tmp_path)
    fresh = _production_secrets(tmp_path)
    _set_env(monkeypatch, fresh)
    monkeypatch.setenv("CUSTODY_DATABASE_URL", "postgresql://custody@db.example.org/custody")
    load_settings(mode="production", home=tmp_path)  # fresh keys: fine
    monkeypatch.setenv("CUSTODY_LEDGER_SIGNING_KEY", generated["ledger_signing_key"])
    monkeypatch.setenv("CUSTODY_REPORT_SIGNING_KEY", generated["report_signing_key"].replace("\n", "\\n"))
    with pytest.raises(ConfigurationError) as info:
        load_settings(mode="production", home=tmp_path)
    assert "CUSTODY_LEDGER_SIGNING_KEY, CUSTODY_REPORT_SIGNING_KEY" in info.value.message
    assert "CUSTODY_JWT_KEY" not in info.value.message
    load_settings(mode="test", home=tmp_path)  # test mode may use them (the test stacks do)


def test_an_empty_secret_is_a_missing_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_secrets(monkeypatch)
    _set_env(monkeypatch, _production_secrets(tmp_path))
    monkeypatch.setenv("CUSTODY_JWT_KEY", "")
    with pytest.raises(ConfigurationError, match="CUSTODY_JWT_KEY"):
        load_settings(mode="test", home=tmp_path)


def _tiny_pdf() -> bytes:
    import io

    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, "custody")
    page.save()
    return out.getvalue()
