"""One file on its way into the evidence store, written once for every way bytes arrive.

The owner's streamed PUT (api/routes/consent.py), the owner's resumable tus upload (api/routes/tus.py)
and the worker's pull from an integrated camera (activities/requests.py) all do the same thing:

1. keep the first bytes until the type can be told (custody/media.py: is it a video?), refuse
   anything else before a multipart upload is even opened;
2. count bytes against the size limit;
3. cut 16 MiB parts and upload them into one S3 multipart upload, hashing each part as it ships;
4. at the end, compare the SHA-256 with the one announced, and complete the upload (the object comes
   into being) only when everything agreed. On any refusal or failure the multipart upload is
   aborted: the object never existed, so nothing has to be deleted from the WORM bucket.

`Pipeline` is the state and the rules; it does no waiting of its own. `pump` drives it from a
synchronous iterator (the worker), `apump` from an async stream (the API: one part uploading in a
thread while the next one fills, so at most two parts are in memory).

Hashing happens when a part is cut, in the thread that uploads it, and in file order. That is what
lets a resumable upload carry its hash across connections and replicas: the SHA-256 state after the
last stored part is exactly the state of a prefix of the file (`ResumableSha256`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Protocol

from minio import Minio

from custody.errors import (
    BadRequest,
    ConfigurationError,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from custody.media import ACCEPTED_TYPES, SNIFF_BYTES, declared_matches, sniff_video
from storage.evidence import PART_SIZE, MultipartWriter, StoredObject

#: S3's smallest part (every part but the last must be at least this big).
MIN_PART_SIZE = 5 * 1024 * 1024


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


class _Sha256Ctx(ctypes.Structure):
    """OpenSSL's SHA256_CTX (openssl/sha.h): the FIPS 180-4 intermediate hash value, the bit count
    and the not yet compressed bytes of the last block: 112 bytes, nothing else."""

    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("nl", ctypes.c_uint32),
        ("nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint32),
        ("md_len", ctypes.c_uint32),
    ]


def _load_libcrypto() -> ctypes.CDLL:
    """OpenSSL's libcrypto (the one Python's ssl and hashlib use), loaded on first use, so a build
    without it fails only the resumable uploads, and says why."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
        lib.SHA256_Init.argtypes = [ctypes.POINTER(_Sha256Ctx)]
        lib.SHA256_Update.argtypes = [ctypes.POINTER(_Sha256Ctx), ctypes.c_char_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Sha256Ctx)]
    except (OSError, AttributeError) as exc:
        raise ConfigurationError(
            f"Resumable uploads need OpenSSL's libcrypto with SHA256_Init/Update/Final ({exc})."
        ) from exc
    return lib


_lib: list[ctypes.CDLL] = []


def _libcrypto() -> ctypes.CDLL:
    if not _lib:
        _lib.append(_load_libcrypto())
    return _lib[0]


STATE_BYTES = ctypes.sizeof(_Sha256Ctx)


class ResumableSha256:
    """SHA-256 whose state can be written down and taken up again, by another process or replica.

    Why: a resumable upload's bytes go into an S3 multipart upload, and S3 lets nobody read the
    parts of an unfinished upload back; hashing after completion would make the object exist (WORM,
    for ever) before a mismatched hash could refuse it. hashlib cannot export its state, so this is
    OpenSSL's own SHA-256 (the library hashlib uses, same speed, the GIL released) through ctypes,
    whose context is a plain 112-byte struct. The verify activity re-reads the stored object with
    hashlib later anyway, so a wrong state could never pass unnoticed."""

    def __init__(self, state: bytes | None = None) -> None:
        self._ctx = _Sha256Ctx()
        if state:
            if len(state) != STATE_BYTES:
                raise ValueError(f"a SHA-256 state is {STATE_BYTES} bytes, not {len(state)}")
            ctypes.memmove(ctypes.byref(self._ctx), state, STATE_BYTES)
        else:
            _libcrypto().SHA256_Init(ctypes.byref(self._ctx))

    def update(self, data: bytes, /) -> None:
        _libcrypto().SHA256_Update(ctypes.byref(self._ctx), bytes(data), len(data))

    def state(self) -> bytes:
        return ctypes.string_at(ctypes.byref(self._ctx), STATE_BYTES)

    def hexdigest(self) -> str:
        ctx = _Sha256Ctx.from_buffer_copy(self.state())  # finalising a copy keeps this one going
        out = ctypes.create_string_buffer(32)
        _libcrypto().SHA256_Final(out, ctypes.byref(ctx))
        return out.raw.hex()


class Pipeline:
    """The rules for one file: sniff, limit, cut parts, hash, compare; S3 through a MultipartWriter.

    Not thread-safe: bytes are taken by one caller; `ship` (hash + upload a part) may run in a worker
    thread, one part at a time, in the order the parts were cut."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        key: str,
        *,
        limit: int,
        name: str = "The file",
        declared: str = "application/octet-stream",
        expected_sha256: str | None = None,
        hasher: Hasher | None = None,
        retain_until: datetime | None = None,
    ) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        #: The COMPLIANCE retain-until the object is created with (its case's retention class).
        self.retain_until = retain_until
        self.limit, self.name, self.declared, self.expected = limit, name, declared, expected_sha256
        self.hasher: Hasher = hasher if hasher is not None else hashlib.sha256()
        self.writer: MultipartWriter | None = None
        self.content_type: str | None = None
        self.buffer = bytearray()  # bytes taken, not yet in a part (before opening: the head)
        self.size = 0  # bytes taken
        self.shipped = 0  # bytes in uploaded parts (hashed)
        self.parts: list[tuple[int, str, int]] = []  # (number, ETag, size) of each uploaded part
        self.broken = False  # a part upload failed: hash and parts are not a consistent checkpoint

    @classmethod
    def resume(
        cls,
        client: Minio,
        bucket: str,
        key: str,
        *,
        limit: int,
        content_type: str | None,
        upload_id: str,
        parts: list[tuple[int, str, int]],
        tail: bytes,
        hasher: ResumableSha256,
        expected_sha256: str | None = None,
        retain_until: datetime | None = None,
    ) -> Pipeline:
        """A pipeline taken up again where a stored checkpoint left it (tus: another connection,
        maybe another replica): parts already in S3, the hash of their bytes, the tail not in one."""
        p = cls(
            client,
            bucket,
            key,
            limit=limit,
            expected_sha256=expected_sha256,
            hasher=hasher,
            retain_until=retain_until,
        )
        p.content_type = content_type
        if upload_id:
            p.writer = MultipartWriter.resume(client, bucket, key, upload_id, [(n, e) for n, e, _ in parts])
        p.parts = list(parts)
        p.shipped = sum(s for _, _, s in parts)
        p.buffer = bytearray(tail)
        p.size = p.shipped + len(tail)
        return p

    # --- taking bytes (no I/O) -------------------------------------------------------------------
    def take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(f"The file is larger than the limit of {self.limit} bytes.")
        self.buffer += chunk

    @property
    def needs_open(self) -> bool:
        return self.writer is None and len(self.buffer) >= SNIFF_BYTES

    def sniff(self) -> str:
        """The file's video type from its first bytes; 415 for anything else."""
        found = sniff_video(bytes(self.buffer[:SNIFF_BYTES]))
        if found is None:
            raise UnsupportedMediaType(
                f"{self.name} is not a video file this program accepts ({', '.join(sorted(ACCEPTED_TYPES))})."
            )
        if not declared_matches(self.declared, found):
            raise UnsupportedMediaType(f"The file was sent as {self.declared!r} but its content is {found}.")
        return found

    def next_part(self) -> bytes | None:
        """A full 16 MiB part to ship, once open."""
        if self.writer is None or len(self.buffer) < PART_SIZE:
            return None
        part = bytes(self.buffer[:PART_SIZE])
        del self.buffer[:PART_SIZE]
        return part

    def flushable(self) -> bytes | None:
        """The buffer as a (shorter) part when S3 takes it as a middle part (>= 5 MiB): a resumable
        upload ends each connection this way, so what stays outside S3 is less than 5 MiB."""
        if self.writer is None or len(self.buffer) < MIN_PART_SIZE:
            return None
        part = bytes(self.buffer)
        self.buffer.clear()
        return part

    def finish(self) -> bytes | None:
        """Every byte arrived: hash the rest and compare. Returns the last part to ship, if any.
        Refuses an empty file (400) and a hash other than the one announced (422)."""
        if self.size == 0:
            raise BadRequest("The file is empty; choose the video file again.", code="empty_file")
        assert self.writer is not None, "open() before finish()"
        rest = bytes(self.buffer)
        self.buffer.clear()
        self.hasher.update(rest)
        digest = self.hasher.hexdigest()
        if self.expected is not None and digest != self.expected:
            raise Unprocessable(
                f"The file arrived with SHA-256 {digest}, not {self.expected} as announced; it was not "
                "stored. Send it again.",
                code="sha256_mismatch",
            )
        self.shipped += len(rest)
        if not rest and self.writer.part_count:
            return None
        return rest

    # --- S3 (blocking I/O) -----------------------------------------------------------------------
    def open(self, on_open: Callable[[MultipartWriter], None] | None = None) -> None:
        """Sniff, then open the multipart upload; `on_open` writes it down (the API's Upload row).
        If `on_open` fails the multipart upload is aborted at once."""
        self.content_type = self.sniff()
        writer = MultipartWriter(self.client, self.bucket, self.key, self.content_type, self.retain_until)
        if on_open is not None:
            try:
                on_open(writer)
            except BaseException:
                writer.abort()
                raise
        self.writer = writer

    def ship(self, part: bytes, *, hashed: bool = False) -> None:
        """Hash (unless `finish` did) and upload one part, in file order."""
        assert self.writer is not None
        if not hashed:
            self.hasher.update(part)
            self.shipped += len(part)
        try:
            self.writer.upload_part(part)
        except BaseException:
            self.broken = True
            raise
        number, etag = self.writer.parts()[-1]
        self.parts.append((number, etag, len(part)))

    @property
    def digest(self) -> str:
        return self.hasher.hexdigest()

    def complete(self) -> StoredObject:
        assert self.writer is not None
        result = self.writer.complete()
        return StoredObject(self.key, result.version_id, self.size, self.hasher.hexdigest())

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def pump(
    p: Pipeline,
    chunks: Iterable[bytes],
    *,
    on_open: Callable[[MultipartWriter], None] | None = None,
    on_part: Callable[[int], None] | None = None,
    before_complete: Callable[[], None] | None = None,
) -> StoredObject:
    """Drive a pipeline from a blocking iterator to a stored object; abort on any failure."""
    try:
        for chunk in chunks:
            p.take(chunk)
            if p.needs_open:
                p.open(on_open)
            while (part := p.next_part()) is not None:
                p.ship(part)
                if on_part is not None:
                    on_part(p.size)
        if p.writer is None:
            if p.size == 0:
                p.finish()  # raises: empty
            p.open(on_open)
        rest = p.finish()
        if rest is not None:
            p.ship(rest, hashed=True)
        if before_complete is not None:
            before_complete()
    except BaseException:
        p.abort()
        raise
    return p.complete()


async def apump(
    p: Pipeline,
    stream: AsyncIterator[bytes],
    *,
    on_open: Callable[[MultipartWriter], None] | None = None,
    on_part: Callable[[int], None] | None = None,
    at_end: bool = True,
) -> bytes | None:
    """Feed a pipeline from an async stream: one part uploads in a thread while the next one fills.

    With `at_end` (the whole file is this stream) the last part is cut, hashed, compared and
    shipped, and None is returned; the caller completes. Without it (one tus PATCH) whatever is left
    that S3 cannot take as a part is returned, for the caller to keep. Blocking calls run in
    threads; `on_part` (called in a thread) hears the bytes taken so far after each part. Nothing is
    aborted here: the caller decides (a broken tus PATCH keeps its parts)."""
    pending: asyncio.Task[None] | None = None

    async def ship(part: bytes, hashed: bool = False) -> None:
        nonlocal pending
        if pending is not None:
            await pending
        size = p.size

        def run() -> None:
            p.ship(part, hashed=hashed)
            if on_part is not None:
                on_part(size)

        pending = asyncio.create_task(asyncio.to_thread(run))

    try:
        async for chunk in stream:
            if not chunk:
                continue
            p.take(chunk)
            if p.needs_open:
                await asyncio.to_thread(p.open, on_open)
            while (part := p.next_part()) is not None:
                await ship(part)
        if pending is not None:
            await pending
            pending = None
        if not at_end:
            rest = p.flushable()
            if rest is not None:
                await asyncio.to_thread(p.ship, rest)
            return bytes(p.buffer)
        if p.writer is None:
            if p.size == 0:
                p.finish()  # raises: empty
            await asyncio.to_thread(p.open, on_open)
        last = await asyncio.to_thread(p.finish)
        if last is not None:
            await asyncio.to_thread(p.ship, last, hashed=True)
        return None
    except BaseException:
        # A resumable upload waits for the part uploading in its thread, so that its checkpoint
        # says what S3 holds; if that part failed, hash and parts are no checkpoint (`broken`).
        if pending is not None:
            if at_end:  # the caller aborts the whole upload: no need to wait for the part
                pending.cancel()
                p.broken = True
            else:
                try:
                    await asyncio.shield(pending)
                except BaseException:
                    p.broken = True
        raise
