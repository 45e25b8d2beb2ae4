"""HTML letters to PDF with WeasyPrint and real CJK fonts.

Fonts come from a configurable family stack (setting DEGREEFLOW_LETTER_FONTS, e.g.
`FangSong, 仿宋_GB2312, "Noto Serif CJK SC"`), resolved through fontconfig. Before rendering, every character
of the document is checked against the fonts of the stack that are installed: a character none of them has
stops the rendering with its name and code point, so a letter never goes out with empty boxes.
Fonts are loaded once per process (one FontConfiguration, one cmap per font).

Speed and size: a CJK font has some 65,000 glyphs, and a PDF embeds the glyphs it uses with their glyph ids
kept, so a letter set in the full font weighs about 155 KB. At start-up each process therefore builds a
*working copy* of the first installed font of each stack with HarfBuzz (uharfbuzz, about 0.1 s): the
characters of GB 2312 plus punctuation and Latin, renumbered compactly, without layout tables. Letters are set
in the working copy first and the full font second, so a rare character (a name outside GB 2312) still prints
from the full font, and the glyph check always runs against the full fonts. Rendering pauses Python's cyclic
garbage collector, whose full passes over a heap filling with layout boxes were a third of a long form's time
(`_collector_paused`).
"""

from __future__ import annotations

import atexit
import gc
import logging
import shutil
import subprocess
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser

DEFAULT_FONTS = 'FangSong, "仿宋_GB2312", "Noto Serif CJK SC"'
DEFAULT_TITLE_FONTS = '"方正小标宋简体", "FZXiaoBiaoSong-B05S", "Noto Serif CJK SC"'
# Characters the stylesheet itself prints (page numbers "— 1 —").
GENERATED_TEXT = "— 0123456789"


class FontError(Exception):
    code = "missing_glyph"

    def __init__(self, message: str, characters: str = ""):
        super().__init__(message)
        self.message = message
        self.characters = characters

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "rule": "glyph_coverage", "message": self.message}


def working_set() -> list[int]:
    """Code points of the working copy: GB 2312, ASCII and Latin-1, general and CJK punctuation, full-width forms."""
    points = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100)) | set(range(0x2000, 0x2070))
    points |= (
        set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0)) | {0x2116, 0x2160, 0x25CB, 0x25A1, 0x2605}
    )
    for first in range(0xA1, 0xF8):
        for second in range(0xA1, 0xFF):
            try:
                points.add(ord(bytes([first, second]).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return sorted(points)


_WORK_DIR: str | None = None


@cache
def working_copy(font: ResolvedFont) -> str | None:
    """A compact copy of `font` for letters (see the module's doc); None if HarfBuzz's subsetter is missing."""
    global _WORK_DIR
    try:
        import uharfbuzz as hb
    except ImportError:  # pragma: no cover - uharfbuzz is a dependency
        return None
    face = hb.Face(hb.Blob.from_file_path(font.path), font.index)
    request = hb.SubsetInput()
    for point in working_set():
        request.unicode_set.add(point)
    drop = request.sets(hb.SubsetInputSets.DROP_TABLE_TAG)
    for tag in ("GSUB", "GPOS", "BASE", "JSTF", "VORG", "vhea", "vmtx", "DSIG"):
        drop.add(int.from_bytes(tag.encode("ascii"), "big"))
    subset = hb.subset(face, request)
    if subset is None:  # pragma: no cover
        return None
    if _WORK_DIR is None:
        _WORK_DIR = tempfile.mkdtemp(prefix="degreeflow-fonts-")
        atexit.register(shutil.rmtree, _WORK_DIR, True)
    path = f"{_WORK_DIR}/{abs(hash((font.path, font.index)))}.otf"
    with open(path, "wb") as handle:
        handle.write(subset.blob.data)
    return path


def families(stack: str) -> list[str]:
    return [part.strip().strip("\"'") for part in stack.split(",") if part.strip().strip("\"'")]


@dataclass(frozen=True)
class ResolvedFont:
    family: str
    path: str
    index: int


@cache
def resolve(family: str) -> ResolvedFont | None:
    """The installed font file of a family (exact family name), or None."""
    try:
        listing = subprocess.run(
            ["fc-list", f":family={family}:style=Regular", "file", "index", "family"],
            capture_output=True, text=True, check=False, timeout=20,
        ).stdout  # fmt: skip
    except FileNotFoundError:  # pragma: no cover - fontconfig is a WeasyPrint dependency
        return None
    for line in sorted(listing.splitlines()):
        path, _, rest = line.partition(": ")
        names = rest.split(":")[0].split(",")
        index = 0
        for part in rest.split(":"):
            if part.startswith("index="):
                index = int(part.removeprefix("index="))
        if family in [n.strip() for n in names]:
            return ResolvedFont(family, path, index)
    return None


@cache
def _cmap(path: str, index: int) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=index, lazy=True)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "".join(parser.parts)


class PdfRenderer:
    def __init__(self, body_fonts: str = DEFAULT_FONTS, title_fonts: str = DEFAULT_TITLE_FONTS):
        self.body_stack = families(body_fonts)
        self.title_stack = families(title_fonts)
        self.fonts = [
            f for f in (resolve(name) for name in dict.fromkeys(self.body_stack + self.title_stack)) if f
        ]
        if not [f for f in self.fonts if f.family in self.body_stack]:
            raise FontError(
                f"没有安装字体设置中的任何中文字体（{body_fonts}）。请安装 fonts-noto-cjk（make run 会自动安装）"
                "或修改 DEGREEFLOW_LETTER_FONTS。"
            )
        self._covered: frozenset[int] = frozenset().union(*(_cmap(f.path, f.index) for f in self.fonts))
        faces: dict[str, str] = {}
        body, title = list(self.body_stack), list(self.title_stack)
        for stack in (body, title):
            first = next((f for f in self.fonts if f.family in stack), None)
            copy = working_copy(first) if first else None
            if copy and first:
                alias = f"degreeflow {first.family}"
                faces[alias] = f'@font-face {{ font-family: "{alias}"; src: url("file://{copy}"); }}'
                stack.insert(0, alias)
        self._font_css = "\n".join(faces.values()) + (
            f"\nbody, .letter, .form, .colophon {{ font-family: {_css_stack(body)}; }}\n"
            f".organ-mark, h1.title, .form h2 {{ font-family: {_css_stack(title)}; }}\n"
            f"@page {{ @bottom-right {{ font-family: {_css_stack(body)}; }} "
            f"@bottom-left {{ font-family: {_css_stack(body)}; }} }}"
        )
        self._weasy: tuple[object, object] | None = None

    def check_glyphs(self, html: str) -> None:
        missing = sorted(
            {
                ch
                for ch in visible_text(html) + GENERATED_TEXT
                if not ch.isspace() and ord(ch) not in self._covered
            }
        )
        if missing:
            shown = "、".join(f"“{ch}”(U+{ord(ch):04X} {unicodedata.name(ch, '?')})" for ch in missing[:10])
            raise FontError(
                f"字体 {'、'.join(f.family for f in self.fonts)} 中没有以下字符的字形，拒绝生成（避免打印空框）：{shown}。"
                "姓名中的生僻字可按规定写作大写拼音，或安装含该字的字体并加入 DEGREEFLOW_LETTER_FONTS。",
                "".join(missing),
            )

    def _engine(self):  # type: ignore[no-untyped-def]
        if self._weasy is None:
            logging.getLogger("weasyprint").setLevel(logging.ERROR)
            logging.getLogger("fontTools").setLevel(logging.ERROR)
            from weasyprint import CSS
            from weasyprint.text.fonts import FontConfiguration

            from cases.letters import stylesheet

            config = FontConfiguration()
            layout = CSS(string=stylesheet(), font_config=config)
            self._weasy = (config, [layout, CSS(string=self._font_css, font_config=config)])
        return self._weasy

    def document(self, html: str):  # type: ignore[no-untyped-def]
        """A laid-out WeasyPrint document (pages), after the glyph check."""
        with _collector_paused():
            return self._document(html)

    def _document(self, html: str):  # type: ignore[no-untyped-def]
        from weasyprint import HTML

        self.check_glyphs(html)
        config, stylesheets = self._engine()
        return HTML(string=html).render(stylesheets=stylesheets, font_config=config)

    def write(self, document) -> bytes:  # type: ignore[no-untyped-def]
        """The PDF of a document from `document()`."""
        with _collector_paused():
            return document.write_pdf()

    def pdf(self, html: str) -> bytes:
        with _collector_paused():
            return self._document(html).write_pdf()

    def packet(self, htmls: list[str], progress=None) -> bytes:  # type: ignore[no-untyped-def]
        """Several documents in one PDF (each keeps its own page numbers): each is laid out on its own, then
        the pages of all are written as one document. The collector is paused per document, not for the whole
        packet, so the cycles each layout leaves are freed between documents."""
        documents = []
        for html in htmls:
            documents.append(self.document(html))
            if progress is not None:
                progress()
        pages = [page for document in documents for page in document.pages]
        return self.write(documents[0].copy(pages))


_pause_lock = threading.Lock()
_pause_depth = 0
_pause_reenable = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a rendering runs.

    WeasyPrint allocates hundreds of thousands of objects for a long form (boxes, computed styles, text
    layouts), and the collector's full passes while they pile up re-scan the whole heap: measured with
    gc.callbacks in the benchmark's process, 11 full passes took 0.54 s of a 300-row form's 1.8 s, 3 passes
    0.24 s of a 50-letter packet. Reference counting still frees most objects at once; the cycles a rendering
    leaves (about 170,000 objects for that form: boxes pointing at their parents) are young and go in the
    first collection after the pause, a young-generation pass (0.1 s for the form), normally before the call
    returns. Renderings in several threads share one pause: the collector resumes when the last one ends,
    and only if it was running when the first one began."""
    global _pause_depth, _pause_reenable
    with _pause_lock:
        if _pause_depth == 0:
            _pause_reenable = gc.isenabled()
            gc.disable()
        _pause_depth += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause_depth -= 1
            if _pause_depth == 0 and _pause_reenable:
                gc.enable()


def _css_stack(names: list[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)
