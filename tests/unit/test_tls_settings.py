"""The TLS settings of Temporal and S3: what they imply, what they refuse, before anything connects.
(Each TLS path is shown against a real server in tests/integration/test_tls.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from custody.errors import ConfigurationError
from custody.settings import Settings
from devstack.pki import TestCA
from storage.s3 import ca_bundle, make_client
from workflows.client import temporal_tls


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(mode="test", home=tmp_path, s3_access_key="a", s3_secret_key="b", **values)  # type: ignore[arg-type]


def test_temporal_is_plain_grpc_unless_asked(tmp_path: Path) -> None:
    assert temporal_tls(settings(tmp_path)) is False


def test_tls_alone_trusts_the_system_cas(tmp_path: Path) -> None:
    assert temporal_tls(settings(tmp_path, temporal_tls=True)) is True


def test_an_api_key_implies_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODY_TEMPORAL_API_KEY", "tk_cloud")
    s = Settings(mode="test", home=tmp_path)
    assert s.temporal_uses_tls
    assert temporal_tls(s) is True
    assert "tk_cloud" not in repr(s)  # a secret


def test_ca_client_certificate_and_server_name_make_the_tls_config(tmp_path: Path, ca: TestCA) -> None:
    client = ca.client("worker", "custody-worker")
    config = temporal_tls(
        settings(
            tmp_path,
            temporal_ca_file=ca.ca_file,
            temporal_client_cert_file=client.cert_file,
            temporal_client_key_file=client.key_file,
            temporal_server_name="temporal.example",
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == ca.ca_file.read_bytes()
    assert config.client_cert == client.cert_file.read_bytes()
    assert config.client_private_key == client.key_file.read_bytes()
    assert config.domain == "temporal.example"


def test_a_client_certificate_needs_its_key(tmp_path: Path, ca: TestCA) -> None:
    with pytest.raises(ValueError, match="CUSTODY_TEMPORAL_CLIENT_KEY_FILE go together"):
        settings(tmp_path, temporal_client_cert_file=ca.ca_file)


def test_tls_off_with_a_ca_is_refused(tmp_path: Path, ca: TestCA) -> None:
    with pytest.raises(ValueError, match="CUSTODY_TEMPORAL_TLS=false"):
        settings(tmp_path, temporal_tls=False, temporal_ca_file=ca.ca_file)


def test_unreadable_or_non_pem_files_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"CUSTODY_TEMPORAL_CA_FILE=.*cannot be read"):
        temporal_tls(settings(tmp_path, temporal_ca_file=tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match=r"CUSTODY_TEMPORAL_CA_FILE=.*not a PEM file"):
        temporal_tls(settings(tmp_path, temporal_ca_file=junk))


def test_s3_ca_and_region(tmp_path: Path, ca: TestCA) -> None:
    s = settings(tmp_path, s3_secure=True, s3_ca_file=ca.ca_file, s3_region="eu-west-3")
    assert ca_bundle(s) == str(ca.ca_file)
    make_client(s)  # builds with that CA, nothing contacted
    with pytest.raises(ValueError, match="CUSTODY_S3_SECURE is false"):
        settings(tmp_path, s3_ca_file=ca.ca_file)
    with pytest.raises(ValueError, match="at least 1 character"):
        settings(tmp_path, s3_region="")
    junk = tmp_path / "junk.pem"
    junk.write_text("nothing")
    with pytest.raises(ConfigurationError, match=r"CUSTODY_S3_CA_FILE=.*no PEM certificate"):
        ca_bundle(settings(tmp_path, s3_secure=True, s3_ca_file=junk))
