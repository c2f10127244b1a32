"""Files people hand the service (a case's evidence, an email's attachments): which are kept,
and their names made safe. Pure: the bytes are arguments.

A file is kept when its type is one of `TYPES` and its contents are what the type says (binary
types by their first bytes; text must not be binary), so a renamed executable is not kept. Names
that run as programs when opened (`.exe`, `.bat`, …) are refused too: such a file goes in a ZIP.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

FILENAME_LENGTH = 255

MAX_BYTES = 10 * 1024 * 1024  # 10 MiB

# The types kept, in words for messages and forms. Logs are plain text.
TYPES: dict[str, str] = {
    "application/pdf": "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "text/plain": "plain text (logs too)",
    "text/csv": "CSV",
    "application/json": "JSON",
    "message/rfc822": "email message (.eml)",
    "application/zip": "ZIP",
}
# Other names browsers and systems give the same types.
_ALIASES = {
    "application/x-zip-compressed": "application/zip",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
}
# How a file of a binary type starts.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"),
}
_TEXT_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 text has NUL bytes of its own
_SNIFF = 8192  # how much of a text file is looked at for binary content
# Names Windows (or a desktop) runs as a program when the file is opened.
_RUNS = frozenset(
    {
        *("exe", "dll", "com", "scr", "pif", "cpl", "msi", "msp", "msc", "lnk", "jar", "app"),
        *("bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "reg"),
        *("scf", "sh"),
    }
)
_HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # control and format characters (bidi overrides)


def clean_filename(name: str) -> str:
    """The file's own name: no folders, no control or format characters, no leading or
    trailing dots and spaces, at most 255 characters (the extension kept). May be empty."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _HIDDEN)
    name = name.strip(" .\t")
    if len(name) > FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: FILENAME_LENGTH - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:FILENAME_LENGTH].rstrip(" .")
    return name


def normal_type(content_type: str) -> str:
    """'Application/PDF; charset=binary' -> 'application/pdf'."""
    bare = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(bare, bare)


def type_for_name(filename: str) -> str | None:
    """The type a file's extension says, for a browser that sent none of ours."""
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    return {
        "pdf": "application/pdf",
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "txt": "text/plain",
        "log": "text/plain",
        "csv": "text/csv",
        "json": "application/json",
        "eml": "message/rfc822",
        "zip": "application/zip",
    }.get(ext)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def problems(filename: str, content_type: str, data: bytes) -> dict[str, str]:
    """What is wrong with a file, one message per field ({} when nothing is): a name that
    runs as a program, a type not kept, empty, too large, or not what its type says."""
    errors: dict[str, str] = {}
    if not filename:
        errors["filename"] = "Give the file's name, e.g. firewall-log.txt."
    else:
        ext = filename.rpartition(".")[2].lower() if "." in filename else ""
        if ext in _RUNS:
            errors["filename"] = (
                f"Files ending .{ext} run as programs when opened, so they are not kept as "
                "evidence. Put the file in a ZIP and add the ZIP."
            )
    known = ", ".join(f"{words} ({t})" for t, words in TYPES.items())
    if content_type not in TYPES:
        errors["content_type"] = (
            f"Files of type {content_type or '(none given)'} are not kept. Use one of: {known}."
        )
    if not data:
        errors["file"] = "The file is empty. Choose the file again."
    elif len(data) > MAX_BYTES:
        errors["file"] = f"The file is larger than {_size(MAX_BYTES)}. Split it, or compress it."
    elif content_type in _MAGIC and not data.startswith(_MAGIC[content_type]):
        errors["file"] = (
            f"The file is not a {TYPES[content_type]}: its contents do not start as one does. "
            "Give its real type, or put it in a ZIP."
        )
    elif content_type in TYPES and content_type not in _MAGIC:
        head = data[:_SNIFF]
        if b"\x00" in head and not head.startswith(_TEXT_BOMS):
            errors["file"] = (
                f"The file is not {TYPES[content_type]}: it holds binary data. Give its real "
                "type, or put it in a ZIP."
            )
    return errors
