"""The real servers: /health, the WORM evidence bucket, the Maildir SMTP server, the worker."""

from __future__ import annotations

import asyncio
import io
import mailbox
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from minio.commonconfig import COMPLIANCE, ENABLED
from minio.error import S3Error
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from activities.email import EmailInput, SmtpConfig, build_message, send_message
from api.app import create_app
from custody.settings import Settings
from devstack.procs import free_port
from storage.s3 import make_client
from tests.conftest import Stack, migrated
from worker import build_worker
from workflows.client import connect_temporal


def test_health_reports_every_component(api: TestClient) -> None:
    resp = api.get("/health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    assert set(body["components"]) == {"db", "temporal", "s3", "smtp"}
    assert all(c["ok"] for c in body["components"].values())


def test_health_is_503_when_a_component_is_down(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    dead_smtp, dead_s3 = free_port(), free_port()
    db = migrated(f"sqlite:///{tmp_path_factory.mktemp('h') / 'h.db'}")
    settings = stack.settings(database_url=db, smtp_port=dead_smtp, s3_port=dead_s3)
    with TestClient(create_app(settings)) as client:
        resp = client.get("/health")
    assert resp.status_code == 503  # S3 is required; SMTP alone only degrades (test_observability)
    comps = resp.json()["components"]
    assert resp.json()["status"] == "unavailable"
    assert comps["db"]["ok"] and comps["temporal"]["ok"]
    assert not comps["smtp"]["ok"] and not comps["s3"]["ok"]
    assert comps["smtp"]["detail"] == comps["s3"]["detail"] == "not answering"  # no exception text


def test_evidence_bucket_is_versioned_and_compliance_locked(stack: Stack) -> None:
    settings = stack.settings()
    client = make_client(settings)
    assert client.get_bucket_versioning(settings.s3_bucket).status == ENABLED
    lock = client.get_object_lock_config(settings.s3_bucket)
    assert lock.mode == COMPLIANCE
    key = f"test/{uuid.uuid4()}"
    put = client.put_object(settings.s3_bucket, key, io.BytesIO(b"evidence"), 8)
    retention = client.get_object_retention(settings.s3_bucket, key)
    assert retention is not None and retention.mode == COMPLIANCE
    with pytest.raises(S3Error) as info:
        client.remove_object(settings.s3_bucket, key, version_id=put.version_id)
    assert info.value.code == "AccessDenied"
    # Overwriting makes a new version; the original bytes stay readable by version id.
    client.put_object(settings.s3_bucket, key, io.BytesIO(b"tampered"), 8)
    original = client.get_object(settings.s3_bucket, key, version_id=put.version_id)
    assert original.read() == b"evidence"


def test_mail_is_delivered_to_the_maildir(stack: Stack) -> None:
    settings = stack.settings()
    config = SmtpConfig("127.0.0.1", settings.smtp_port, settings.smtp_from)
    key = f"notice-{uuid.uuid4().hex}"
    to = f"{uuid.uuid4().hex[:8]}@example.org"
    msg = build_message(EmailInput(key, to, "Footage request", "Hello", "<p>Hello</p>"), config.sender)
    send_message(config, msg)
    mid = str(msg["Message-ID"])
    assert key in mid
    box = mailbox.Maildir(str(stack.maildir), create=False)
    found = [m for m in box if m["To"] == to]
    assert len(found) == 1
    assert found[0]["Message-ID"] == mid
    assert found[0].is_multipart()


async def test_worker_polls_the_task_queue(stack: Stack) -> None:
    settings: Settings = stack.settings(task_queue=f"tq-{uuid.uuid4().hex[:8]}")
    client = await connect_temporal(settings)
    worker = build_worker(client, settings)
    async with worker:
        for _ in range(50):
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=settings.temporal_namespace,
                    task_queue=TaskQueue(name=settings.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                ),
                timeout=timedelta(seconds=5),
            )
            if resp.pollers:
                break
            await asyncio.sleep(0.2)
        assert resp.pollers, "the worker never polled its task queue"
