"""The one upload pipeline (storage/pipeline.py) against an in-memory S3: parts, refusals before the
object exists, and a resumable upload's hash carried across connections."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from api.routes.tus import parse_metadata
from custody.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from storage.evidence import PART_SIZE
from storage.pipeline import MIN_PART_SIZE, Pipeline, ResumableSha256, apump, pump
from tests.flow import video_bytes


class FakeS3:
    """The four multipart calls MultipartWriter makes, kept in memory."""

    def __init__(self) -> None:
        self.open: dict[str, dict[int, bytes]] = {}
        self.objects: dict[str, bytes] = {}
        self.aborted: list[str] = []

    def _create_multipart_upload(self, bucket: str, key: str, headers: dict[str, str]) -> str:
        upload_id = f"u{len(self.open) + len(self.aborted) + len(self.objects)}"
        self.open[upload_id] = {}
        return upload_id

    def _upload_part(self, bucket: str, key: str, data: bytes, h: Any, upload_id: str, number: int) -> str:
        self.open[upload_id][number] = bytes(data)
        return hashlib.md5(data).hexdigest()  # noqa: S324 (an ETag, as S3 makes it)

    def _complete_multipart_upload(self, bucket: str, key: str, upload_id: str, parts: list[Any]) -> Any:
        stored = self.open.pop(upload_id)
        sizes = [len(stored[p.part_number]) for p in parts]
        assert all(s >= MIN_PART_SIZE for s in sizes[:-1]), f"S3 refuses a short middle part: {sizes}"
        self.objects[key] = b"".join(stored[p.part_number] for p in parts)
        return SimpleNamespace(version_id="v1")

    def _abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.open.pop(upload_id, None)
        self.aborted.append(upload_id)


def _chunks(data: bytes, size: int = 1 << 20) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_resumable_sha256_state_survives_a_round_trip() -> None:
    data = os.urandom(3_000_017)
    for cut in (0, 1, 63, 64, 65, 1_000_000, len(data)):
        first = ResumableSha256()
        first.update(data[:cut])
        again = ResumableSha256(first.state())
        again.update(data[cut:])
        assert again.hexdigest() == hashlib.sha256(data).hexdigest()
    assert ResumableSha256().hexdigest() == hashlib.sha256(b"").hexdigest()


def test_pump_stores_parts_and_refuses_before_the_object_exists() -> None:
    s3 = FakeS3()
    data = video_bytes(PART_SIZE * 2 + 12345)
    pipe = Pipeline(s3, "b", "k", limit=len(data), expected_sha256=hashlib.sha256(data).hexdigest())  # type: ignore[arg-type]
    stored = pump(pipe, _chunks(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and s3.objects["k"] == data
    assert [s for _, _, s in pipe.parts] == [PART_SIZE, PART_SIZE, 12345]

    with pytest.raises(PayloadTooLarge):
        pump(Pipeline(s3, "b", "big", limit=len(data) - 1), _chunks(data))  # type: ignore[arg-type]
    with pytest.raises(Unprocessable):
        pump(Pipeline(s3, "b", "bad", limit=len(data), expected_sha256="0" * 64), _chunks(data))  # type: ignore[arg-type]
    opened = len(s3.aborted)
    with pytest.raises(UnsupportedMediaType):
        pump(Pipeline(s3, "b", "text", limit=10**9), [b"hello, not a video" * 100])  # type: ignore[arg-type]
    assert len(s3.aborted) == opened, "a file that is not a video never opens a multipart upload"
    with pytest.raises(BadRequest):
        pump(Pipeline(s3, "b", "empty", limit=10), [])  # type: ignore[arg-type]
    assert set(s3.objects) == {"k"} and not s3.open


async def _stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


def test_a_resumed_upload_keeps_short_tails_out_of_s3_and_hashes_right() -> None:
    """Three connections ending at awkward offsets: each leaves < 5 MiB outside S3 (the tail kept in
    the database), every middle part S3 holds is >= 5 MiB, and the digest is the whole file's."""
    s3 = FakeS3()
    data = video_bytes(4096) + os.urandom(PART_SIZE + 9 * 2**20)
    cuts = [300, 7 * 2**20 + 5, PART_SIZE + 2 * 2**20 + 11, len(data)]
    state: dict[str, Any] = {"upload_id": "", "parts": [], "tail": b"", "hash": ResumableSha256().state()}
    start = 0
    for end in cuts:
        hasher = ResumableSha256(state["hash"])
        pipe = Pipeline.resume(
            s3, "b", "k", limit=len(data), content_type="video/mp4" if state["upload_id"] else None,  # type: ignore[arg-type]
            upload_id=state["upload_id"], parts=state["parts"], tail=state["tail"], hasher=hasher,
        )  # fmt: skip
        assert pipe.size == start
        tail = asyncio.run(apump(pipe, _stream(_chunks(data[start:end], 65536)), at_end=False))
        assert tail is not None and len(tail) < MIN_PART_SIZE
        if end == len(data):
            last = pipe.finish()
            if last is not None:
                pipe.ship(last, hashed=True)
            assert pipe.complete().sha256 == hashlib.sha256(data).hexdigest()
            break
        assert pipe.shipped + len(tail) == end
        writer_id = pipe.writer.upload_id if pipe.writer else ""
        state = {"upload_id": writer_id, "parts": pipe.parts, "tail": tail, "hash": hasher.state()}
        start = end
    assert s3.objects["k"] == data


def test_tus_metadata() -> None:
    assert parse_metadata("filename Zm9vLm1wNA==,is_confidential, sha256 YQ==") == {
        "filename": "foo.mp4",
        "is_confidential": "",
        "sha256": "a",
    }
    with pytest.raises(BadRequest):
        parse_metadata("filename not*base64")
