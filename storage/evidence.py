"""Evidence objects: streamed in as S3 multipart uploads, hashed on the way, re-read to verify.

Why multipart even for small files: the object only comes into being at CompleteMultipartUpload.
A file that turns out bad while streaming (too large, wrong hash, not a video) is aborted before it
exists, so nothing has to be deleted from a bucket where COMPLIANCE retention forbids deleting.
Parts are 16 MiB; at most two are in memory at once (one filling, one uploading).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from minio import Minio
from minio.datatypes import Part

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

    def __init__(self, client: Minio, bucket: str, key: str, content_type: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.upload_id = client._create_multipart_upload(bucket, key, {"Content-Type": content_type})
        self.hasher = hashlib.sha256()
        self.size = 0
        self._buffer = bytearray()
        self._parts: list[Part] = []
        self._next_part = 1

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
