"""Evidence objects: streamed in as S3 multipart uploads, hashed on the way, re-read to verify.

Why multipart even for small files: the object only comes into being at CompleteMultipartUpload.
A file that turns out bad while streaming (too large, wrong hash, not a video) is aborted before it
exists, so nothing has to be deleted from a bucket where COMPLIANCE retention forbids deleting.
Parts are 16 MiB; at most two are in memory at once (one filling, one uploading).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.datatypes import Part
from minio.error import S3Error
from minio.retention import Retention

from custody.errors import InsufficientStorage, ServiceUnavailable

PART_SIZE = 16 * 1024 * 1024
READ_CHUNK = 1024 * 1024


def object_key(*, case_id: str, request_id: str, evidence_id: str) -> str:
    """Keys are built from ids only, never from an owner's file name."""
    return f"cases/{case_id}/requests/{request_id}/{evidence_id}"


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    version_id: str | None
    size: int
    sha256: str


class MultipartWriter:
    """Feeds bytes into one multipart upload. Not thread-safe: one producer, parts uploaded by
    whoever calls `upload_part` (the API runs that in a worker thread)."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        key: str,
        content_type: str,
        retain_until: datetime | None = None,
        *,
        upload_id: str | None = None,
    ) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.retain_until = retain_until
        if upload_id is None:
            headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": content_type}
            if retain_until is not None:
                # The object is born with its class's COMPLIANCE retention (the bucket's default
                # applies only when none is given): set at creation, never a moment without it.
                headers |= lock_headers(retain_until)
            upload_id = client._create_multipart_upload(bucket, key, headers)
        self.upload_id = upload_id
        self.hasher = hashlib.sha256()
        self.size = 0
        self._buffer = bytearray()
        self._parts: list[Part] = []
        self._next_part = 1

    @classmethod
    def resume(
        cls, client: Minio, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> MultipartWriter:
        """A writer for a multipart upload opened earlier (a resumed upload), its parts so far known."""
        writer = cls(client, bucket, key, "", upload_id=upload_id)
        writer._parts = [Part(n, etag) for n, etag in parts]
        writer._next_part = max((n for n, _ in parts), default=0) + 1
        return writer

    @property
    def part_count(self) -> int:
        return len(self._parts)

    def parts(self) -> list[tuple[int, str]]:
        """(part number, ETag) of every part uploaded so far."""
        return [(p.part_number, p.etag) for p in self._parts]

    def add(self, chunk: bytes) -> bytes | None:
        """Take bytes; return a full part to upload when one is ready."""
        self.hasher.update(chunk)
        self.size += len(chunk)
        self._buffer += chunk
        if len(self._buffer) >= PART_SIZE:
            part = bytes(self._buffer[:PART_SIZE])
            del self._buffer[:PART_SIZE]
            return part
        return None

    def take_rest(self) -> bytes | None:
        if not self._buffer and self._parts:
            return None
        part = bytes(self._buffer)
        self._buffer.clear()
        return part

    def upload_part(self, data: bytes) -> None:
        number = self._next_part
        self._next_part += 1
        etag = self.client._upload_part(self.bucket, self.key, data, None, self.upload_id, number)
        self._parts.append(Part(number, etag))

    def complete(self) -> StoredObject:
        self._parts.sort(key=lambda p: p.part_number)
        result = self.client._complete_multipart_upload(self.bucket, self.key, self.upload_id, self._parts)
        return StoredObject(self.key, result.version_id, self.size, self.hasher.hexdigest())

    def abort(self) -> None:
        self.client._abort_multipart_upload(self.bucket, self.key, self.upload_id)


def lock_headers(retain_until: datetime) -> dict[str, str]:
    """S3 headers giving a new object COMPLIANCE retention until `retain_until`."""
    when = retain_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"x-amz-object-lock-mode": COMPLIANCE, "x-amz-object-lock-retain-until-date": when}


def extend_retention(
    client: Minio, *, bucket: str, key: str, version_id: str | None, until: datetime
) -> None:
    """Lengthen one version's COMPLIANCE retention (the store refuses to shorten it)."""
    client.set_object_retention(
        bucket, key, Retention(COMPLIANCE, until.astimezone(UTC)), version_id=version_id
    )


def object_retention(client: Minio, *, bucket: str, key: str, version_id: str | None) -> datetime | None:
    found = client.get_object_retention(bucket, key, version_id=version_id)
    return found.retain_until_date if found is not None else None


def set_legal_hold(client: Minio, *, bucket: str, key: str, version_id: str | None, on: bool) -> None:
    """Place (or release) the S3 object-lock legal hold on one exact version."""
    if on:
        client.enable_object_legal_hold(bucket, key, version_id=version_id)
    else:
        client.disable_object_legal_hold(bucket, key, version_id=version_id)


def legal_hold_on(client: Minio, *, bucket: str, key: str, version_id: str | None) -> bool:
    return bool(client.is_object_legal_hold_enabled(bucket, key, version_id=version_id))


def delete_version(client: Minio, *, bucket: str, key: str, version_id: str | None) -> None:
    """Delete one exact version (the store refuses while its retention or a legal hold lasts). A
    version already gone is not an error (a retried round)."""
    try:
        client.remove_object(bucket, key, version_id=version_id)
    except S3Error as exc:
        if exc.code not in ("NoSuchKey", "NoSuchVersion"):
            raise


def hash_object(
    client: Minio,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[str, int]:
    """Re-read a stored object and return its SHA-256 and size (what verification compares).
    `progress` is called every 8 MiB with the bytes read so far (activities heartbeat with it)."""
    response = client.get_object(bucket, key, version_id=version_id)
    try:
        hasher, size = hashlib.sha256(), 0
        while chunk := response.read(READ_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            if progress is not None and size % (8 * READ_CHUNK) < len(chunk):
                progress(size)
        return hasher.hexdigest(), size
    finally:
        response.close()
        response.release_conn()


class EvidenceStore:
    """The API's handle on the evidence bucket: one client for every request, and a store that is
    down, slow or full turned into an answer the person waiting can act on (503 or 507, nothing kept)."""

    def __init__(self, client: Minio, *, bucket: str, data_dir: Path | None, min_free_bytes: int) -> None:
        self.client, self.bucket = client, bucket
        self.data_dir, self.min_free_bytes = data_dir, min_free_bytes

    def free_bytes(self) -> int | None:
        """Free space on the store's disk, when custody runs the store itself (embedded SeaweedFS)."""
        if self.data_dir is None or not self.data_dir.exists():
            return None
        return shutil.disk_usage(self.data_dir).free

    def room_bytes(self) -> int | None:
        """What evidence may still take: free space less the reserve (None: not custody's disk)."""
        free = self.free_bytes()
        return None if free is None else free - self.min_free_bytes

    def check_room(self, size: int) -> None:
        room = self.room_bytes()
        if room is not None and room < size:
            raise InsufficientStorage(
                f"The evidence store is full ({max(room, 0) // 2**20} MiB free beyond the "
                f"{self.min_free_bytes // 2**20} MiB kept in reserve); nothing was kept. The program's "
                "administrators have to add space; try again later."
            )

    def explain(self, exc: BaseException) -> BaseException:
        """What the person waiting is told when a store call failed (other errors pass unchanged)."""
        if isinstance(exc, S3Error):
            text = f"{exc.code} {exc.message}".lower()
            if exc.code in FULL_CODES or any(w in text for w in ("no writable volume", "no space", "full")):
                return store_full()
            if exc.code in ("InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"):
                return store_down()
            return exc
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            room = self.room_bytes()
            return store_full() if room is not None and room < 0 else store_down()
        return exc


FULL_CODES = frozenset({"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull", "NoSpace"})


def store_full() -> InsufficientStorage:
    return InsufficientStorage(
        "The evidence store has no room for this file; nothing was kept. The program's "
        "administrators have to add space; try again later."
    )


def store_down() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The evidence store is not answering; nothing was kept. Try again in a minute.",
        retry_after_s=60,
        code="store_unavailable",
    )


@dataclass(frozen=True, slots=True)
class OpenMultipart:
    key: str
    upload_id: str
    initiated: datetime | None


def open_multiparts(client: Minio, *, bucket: str, prefix: str = "cases/") -> list[OpenMultipart]:
    """Every multipart upload still open in the bucket (S3 ListMultipartUploads, all pages)."""
    found: list[OpenMultipart] = []
    key_marker: str | None = None
    id_marker: str | None = None
    while True:
        page = client._list_multipart_uploads(
            bucket, prefix=prefix, key_marker=key_marker, upload_id_marker=id_marker, max_uploads=1000
        )
        for u in page.uploads:
            found.append(OpenMultipart(u.object_name, u.upload_id or "", u.initiated_time))
        if not page.is_truncated or not page.uploads:
            return found
        key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker


def abort_multipart(client: Minio, *, bucket: str, key: str, upload_id: str) -> None:
    """Abort an open multipart upload; one already gone (completed or aborted) is not an error."""
    try:
        client._abort_multipart_upload(bucket, key, upload_id)
    except S3Error as exc:
        if exc.code not in ("NoSuchUpload", "NoSuchKey"):
            raise


def stored_version(client: Minio, *, bucket: str, key: str) -> tuple[bool, str | None]:
    """Whether an object exists at `key`, and its version id."""
    try:
        stat = client.stat_object(bucket, key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"):
            return False, None
        raise
    return True, stat.version_id
