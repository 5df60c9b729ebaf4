"""TLS and credentials to Temporal, S3 and PostgreSQL, each against a real server that refuses a
client whose TLS is wrong (devstack/tls.py starts them; certificates from devstack/pki.py).

- Temporal: the session's dev server behind nginx terminating TLS for gRPC, once requiring a client
  certificate (mTLS), once an API key (`authorization: Bearer`, as Temporal Cloud) with a
  certificate that names only `temporal.custody.test` (so the server-name override is needed).
- S3: SeaweedFS serving https with a test-CA certificate.
- PostgreSQL: a throwaway cluster with ssl=on and only `hostssl` lines (the machine's server stays
  as it is), reached with `sslmode=verify-full&sslrootcert=` in CUSTODY_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from minio.commonconfig import COMPLIANCE
from minio.objectlockconfig import DAYS
from sqlalchemy.exc import OperationalError
from temporalio.worker import Worker

from bench.bare_shape import BareInput, BareShape, bare_step
from custody.db import create_db_engine, migrate
from custody.errors import ConfigurationError
from custody.settings import Settings
from devstack.pki import TestCA
from devstack.procs import Child, free_port
from devstack.servers import S3Identity, seaweed_child, wait_s3_and_bucket
from devstack.tls import GrpcTlsProxy, TlsPostgres, grpc_tls_proxy, pg_bin_dir
from storage.evidence import MultipartWriter, hash_object
from storage.s3 import check, make_client
from tests.conftest import Stack
from worker import connect
from workflows.client import TemporalConnectError, connect_temporal

API_KEY = "tk_" + uuid.uuid4().hex
CLOUD_NAME = "temporal.custody.test"  # the only name on the API-key endpoint's certificate


@dataclass
class Pki:
    ca: TestCA
    other: TestCA  # a CA nobody here trusts
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = TestCA(folder / "ca")
    client = ca.client("worker", "custody-worker")
    return Pki(ca, TestCA(folder / "other", name="untrusted CA"), client.cert_file, client.key_file)


@dataclass
class Proxies:
    mtls: GrpcTlsProxy
    api_key: GrpcTlsProxy


@pytest.fixture(scope="module")
def proxies(stack: Stack, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxies]:
    """nginx in front of the session's Temporal: one port requiring mTLS, one an API key."""
    folder = tmp_path_factory.mktemp("nginx")
    mtls = grpc_tls_proxy(
        folder / "mtls", upstream=stack.temporal_port, cert=pki.ca.server("temporal-proxy"),
        client_ca=pki.ca.ca_file,
    )  # fmt: skip
    try:
        keyed = grpc_tls_proxy(
            folder / "key", upstream=stack.temporal_port, api_key=API_KEY,
            cert=pki.ca.server("temporal-cloud", hosts=(CLOUD_NAME,)),
        )  # fmt: skip
        try:
            yield Proxies(mtls, keyed)
        finally:
            keyed.stop()
    finally:
        mtls.stop()


def mtls_settings(stack: Stack, pki: Pki, proxy: GrpcTlsProxy, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "temporal_port": proxy.port,
        "temporal_ca_file": pki.ca.ca_file,
        "temporal_client_cert_file": pki.client_cert,
        "temporal_client_key_file": pki.client_key,
        "task_queue": f"tls-{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return stack.settings(**values)


async def run_bare_workflow(settings: Settings) -> int:
    """A worker and a client, both connected the one way custody connects (worker.connect), run a
    workflow with two activities and a signal to the end."""
    client = await connect(settings, timeout_s=10)
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            client, task_queue=settings.task_queue, workflows=[BareShape], activities=[bare_step],
            activity_executor=pool,
        ):  # fmt: skip
            handle = await client.start_workflow(
                BareShape.run, BareInput(7), id=f"tls-{uuid.uuid4().hex}", task_queue=settings.task_queue
            )
            await handle.signal(BareShape.proceed)
            return await asyncio.wait_for(handle.result(), 30)


# --- Temporal ------------------------------------------------------------------------------------


async def test_worker_with_ca_and_client_certificate_runs_a_workflow_through_mtls(
    stack: Stack, pki: Pki, proxies: Proxies
) -> None:
    settings = mtls_settings(stack, pki, proxies.mtls)
    assert settings.temporal_uses_tls  # implied by the CA and certificate settings
    before = proxies.mtls.access_log.read_text() if proxies.mtls.access_log.exists() else ""
    assert await run_bare_workflow(settings) == 7
    calls = proxies.mtls.access_log.read_text()[len(before) :]
    # Every call went through the TLS terminator: polls, the start, the signal, the result.
    for rpc in ("PollWorkflowTaskQueue", "StartWorkflowExecution", "SignalWorkflowExecution"):
        assert f"WorkflowService/{rpc}" in calls


async def test_without_the_client_certificate_the_server_refuses_at_once(
    stack: Stack, pki: Pki, proxies: Proxies
) -> None:
    settings = mtls_settings(
        stack, pki, proxies.mtls, temporal_client_cert_file=None, temporal_client_key_file=None
    )
    started = time.monotonic()
    with pytest.raises(TemporalConnectError) as info:
        await connect(settings, timeout_s=30)  # refused credentials are not retried for 30 s
    assert time.monotonic() - started < 5
    assert "refused this client's credentials" in info.value.message
    assert "a client certificate is required (mTLS)" in info.value.message
    assert "CUSTODY_TEMPORAL_CLIENT_CERT_FILE" in info.value.message


async def test_a_client_certificate_from_another_ca_is_refused(
    stack: Stack, pki: Pki, proxies: Proxies
) -> None:
    stranger = pki.other.client("stranger", "not-custody")
    settings = mtls_settings(
        stack, pki, proxies.mtls,
        temporal_client_cert_file=stranger.cert_file, temporal_client_key_file=stranger.key_file,
    )  # fmt: skip
    with pytest.raises(TemporalConnectError, match="not signed by a CA this server trusts"):
        await connect_temporal(settings)


async def test_a_server_certificate_from_an_untrusted_ca_is_refused(
    stack: Stack, pki: Pki, proxies: Proxies
) -> None:
    settings = mtls_settings(stack, pki, proxies.mtls, temporal_ca_file=pki.other.ca_file)
    started = time.monotonic()
    with pytest.raises(TemporalConnectError) as info:
        await connect(settings, timeout_s=30)
    assert time.monotonic() - started < 5
    assert "UnknownIssuer" in info.value.message
    assert "CUSTODY_TEMPORAL_CA_FILE" in info.value.message


async def test_a_plain_client_is_told_the_server_wants_tls(stack: Stack, proxies: Proxies) -> None:
    settings = stack.settings(temporal_port=proxies.mtls.port)
    assert not settings.temporal_uses_tls
    with pytest.raises(TemporalConnectError, match="CUSTODY_TEMPORAL_TLS=true"):
        await connect_temporal(settings)


async def test_the_api_key_reaches_the_server(stack: Stack, pki: Pki, proxies: Proxies) -> None:
    settings = stack.settings(
        temporal_port=proxies.api_key.port,
        temporal_api_key=API_KEY,  # implies TLS
        temporal_ca_file=pki.ca.ca_file,
        temporal_server_name=CLOUD_NAME,  # the certificate does not name 127.0.0.1
        task_queue=f"key-{uuid.uuid4().hex[:8]}",
    )
    assert await run_bare_workflow(settings) == 7
    log = proxies.api_key.access_log.read_text()
    assert 'StartWorkflowExecution HTTP/2.0" 200 api_key=valid' in log


async def test_a_wrong_api_key_or_none_is_refused(stack: Stack, pki: Pki, proxies: Proxies) -> None:
    common: dict[str, object] = {
        "temporal_port": proxies.api_key.port,
        "temporal_ca_file": pki.ca.ca_file,
        "temporal_server_name": CLOUD_NAME,
    }
    with pytest.raises(TemporalConnectError) as info:
        await connect_temporal(stack.settings(temporal_api_key="tk_wrong", **common))
    assert "missing or wrong API key" in info.value.message
    assert "Check CUSTODY_TEMPORAL_API_KEY." in info.value.message
    with pytest.raises(TemporalConnectError, match="missing or wrong API key"):
        await connect_temporal(stack.settings(temporal_tls=True, **common))
    assert "api_key=other" in proxies.api_key.access_log.read_text()


async def test_a_certificate_without_the_dialled_name_needs_the_server_name_setting(
    stack: Stack, pki: Pki, proxies: Proxies
) -> None:
    settings = stack.settings(
        temporal_port=proxies.api_key.port, temporal_api_key=API_KEY, temporal_ca_file=pki.ca.ca_file
    )
    with pytest.raises(TemporalConnectError, match="CUSTODY_TEMPORAL_SERVER_NAME"):
        await connect_temporal(settings)


# --- S3 over https -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_s3(stack: Stack, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """SeaweedFS serving S3 over https only, with a certificate from the test CA; the settings of a
    client that trusts that CA and signs for a region other than the old fixed us-east-1."""
    folder = tmp_path_factory.mktemp("s3-tls")
    cert = pki.ca.server("s3")
    port = free_port(grpc_pair=True)
    child: Child = seaweed_child(
        s3_port=port, data_dir=folder / "data", log=folder / "seaweedfs.log",
        identity=S3Identity(stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"]),
        volume_size_mb=64, min_free_mb=0, cert_file=cert.cert_file, key_file=cert.key_file,
    ).start()  # fmt: skip
    try:
        settings = stack.settings(
            s3_port=port, s3_secure=True, s3_ca_file=pki.ca.ca_file, s3_region="eu-west-3",
            s3_bucket="evidence-tls", evidence_retention_days=1,
        )  # fmt: skip
        wait_s3_and_bucket(child, client=make_client(settings), bucket=settings.s3_bucket, retention_days=1)
        yield settings
    finally:
        child.stop()


def test_the_evidence_store_works_over_https(https_s3: Settings) -> None:
    client = make_client(https_s3)
    bucket = https_s3.s3_bucket
    lock = client.get_object_lock_config(bucket)  # created by wait_s3_and_bucket, over https
    assert (lock.mode, lock.duration, lock.duration_unit) == (COMPLIANCE, 1, DAYS)
    # Stored as owners' uploads are (multipart), re-read as verification does.
    writer = MultipartWriter(client, bucket, f"cases/tls/{uuid.uuid4().hex}", "video/mp4")
    writer.add(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 100)
    rest = writer.take_rest()
    assert rest is not None
    writer.upload_part(rest)
    stored = writer.complete()
    assert stored.version_id
    assert hash_object(client, bucket=bucket, key=stored.key, version_id=stored.version_id) == (
        stored.sha256,
        stored.size,
    )
    assert check(client, bucket=bucket) == f"bucket {bucket} reachable"


def test_an_https_client_without_the_ca_is_told_to_set_it(https_s3: Settings) -> None:
    no_ca = https_s3.model_copy(update={"s3_ca_file": None})
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as info:
        check(make_client(no_ca), bucket=https_s3.s3_bucket)
    assert "presented a certificate this client does not trust" in info.value.message
    assert "Set CUSTODY_S3_CA_FILE" in info.value.message
    assert time.monotonic() - started < 10


# --- PostgreSQL with ssl=on ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_postgres(pki: Pki) -> Iterator[TlsPostgres]:
    try:
        pg_bin_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    cluster = TlsPostgres(pki.ca.server("postgres")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_database_url_with_verify_full_connects_over_tls_and_migrates(
    tls_postgres: TlsPostgres, pki: Pki
) -> None:
    engine = create_db_engine(tls_postgres.url(ca_file=pki.ca.ca_file))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).one()
        assert row.ssl is True
        assert row.version.startswith("TLSv1.")
        migrate(engine)  # alembic takes the same URL, TLS parameters included
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()


def test_database_url_with_the_wrong_ca_or_no_tls_is_refused(tls_postgres: TlsPostgres, pki: Pki) -> None:
    wrong_ca = create_db_engine(tls_postgres.url(ca_file=pki.other.ca_file))
    with pytest.raises(OperationalError, match="certificate verify failed"):
        wrong_ca.connect()
    wrong_ca.dispose()
    plain = create_db_engine(tls_postgres.url(ca_file=None, sslmode="disable"))
    with pytest.raises(OperationalError, match=r"no pg_hba.conf entry .* no encryption"):
        plain.connect()
    plain.dispose()


# --- all three at once: the API's health --------------------------------------------------------


def test_the_api_reaches_every_component_over_tls(
    stack: Stack, pki: Pki, proxies: Proxies, https_s3: Settings, tls_postgres: TlsPostgres
) -> None:
    """The API built from settings alone talks TLS to PostgreSQL, Temporal (mTLS) and S3."""
    from api.app import create_app

    settings = mtls_settings(
        stack, pki, proxies.mtls,
        database_url=tls_postgres.url(ca_file=pki.ca.ca_file),
        **{k: getattr(https_s3, k) for k in ("s3_port", "s3_secure", "s3_ca_file", "s3_region", "s3_bucket")},
    )  # fmt: skip
    with TestClient(create_app(settings)) as api:
        health = api.get("/health").json()
    for component in ("db", "temporal", "s3"):
        assert health["components"][component]["ok"], health
