"""What an owner may upload: video files, recognised by their first bytes, with safe names.

Why magic bytes: the declared Content-Type is whatever the browser guessed from the file name; the
first bytes say what the file is. Both must name an allowed video type.
"""

from __future__ import annotations

import re
import unicodedata

#: Allowed types, with the declared Content-Types that may stand for each.
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "video/mp4": ("video/mp4", "video/x-m4v", "video/quicktime"),
    "video/quicktime": ("video/quicktime", "video/mp4"),
    "video/x-matroska": ("video/x-matroska", "video/webm", "video/mkv"),
    "video/webm": ("video/webm", "video/x-matroska"),
    "video/x-msvideo": ("video/x-msvideo", "video/avi", "video/msvideo"),
    "video/mp2t": ("video/mp2t", "video/MP2T", "video/vnd.dlna.mpeg-tts"),
    "video/x-ms-asf": ("video/x-ms-asf", "video/x-ms-wmv"),
    "video/3gpp": ("video/3gpp", "video/mp4"),
}
SNIFF_BYTES = 512
_FTYP_BRANDS_QT = (b"qt  ",)
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


def sniff_video(head: bytes) -> str | None:
    """The video type the first bytes of a file show, or None when they are not a known video."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _FTYP_BRANDS_QT:
            return "video/quicktime"
        if brand.startswith(b"3g"):
            return "video/3gpp"
        return "video/mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(_ASF_GUID):
        return "video/x-ms-asf"
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "video/mp2t"
    return None


def declared_matches(declared: str, sniffed: str) -> bool:
    declared = declared.split(";")[0].strip().lower()
    if declared in ("", "application/octet-stream"):
        return True  # many phones send no useful type; the bytes decide
    return declared in {t.lower() for t in ACCEPTED_TYPES.get(sniffed, ())}


_NAME_OK = re.compile(r"^[\w .()+,=@\[\]-]+$")


def check_filename(name: str) -> str | None:
    """Why a file name is refused, or None. Names are only shown to people: storage keys are ids."""
    if not name or not name.strip():
        return "the file name is empty"
    if len(name.encode()) > 255:
        return "the file name is longer than 255 bytes"
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        return "the file name must not contain a path or start with a dot"
    if any(unicodedata.category(c).startswith("C") for c in name):
        return "the file name contains control characters"
    if not _NAME_OK.match(name):
        return "the file name may use letters, digits, spaces and . _ - ( ) + , = @ [ ] only"
    return None


def size_words(n: int) -> str:
    """A byte count as people read it in a limit: 4294967296 -> "4 GB"."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"
