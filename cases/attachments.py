"""Rules for uploaded proof files: allowed types (checked by content, not by name), size, a safe name."""

from __future__ import annotations

import re
import unicodedata

from workflow import InvalidPayload

# extension -> (content type, the bytes a real file of that type starts with)
ALLOWED: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
}
_UNSAFE = re.compile(r"[^\w.\-（）()\u4e00-\u9fff]+")


def safe_name(filename: str) -> str:
    """The last path component, without control characters, separators or leading dots; at most 100 chars."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip("._ ")
    if "." in name:
        stem, ext = name.rsplit(".", 1)
        name = f"{stem[:90]}.{ext[:8]}"
    return name[:100]


def check(filename: str, content: bytes, max_bytes: int) -> tuple[str, str, str]:
    """(safe name, extension, content type) of an acceptable upload, or InvalidPayload naming the rule."""
    name = safe_name(filename)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = "、".join(sorted(ALLOWED))
    if not name or ext not in ALLOWED:
        raise InvalidPayload(
            f"字段 file（附件）：只接受 {allowed} 文件，收到“{name or filename[:50]}”",
            field="file",
            rule="file_type",
        )
    if not content:
        raise InvalidPayload("字段 file（附件）：文件为空", field="file", rule="file_empty")
    if len(content) > max_bytes:
        raise InvalidPayload(
            f"字段 file（附件）：文件大小 {len(content) / 1048576:.1f} MB 超过上限 {max_bytes / 1048576:.0f} MB",
            field="file",
            rule="file_size",
        )
    content_type, magic = ALLOWED[ext]
    if not content.startswith(magic):
        raise InvalidPayload(
            f"字段 file（附件）：文件内容不是 {ext} 格式（扩展名与内容不符）",
            field="file",
            rule="file_content",
        )
    return name, ext, content_type
