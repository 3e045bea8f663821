"""text/html as terminal text, with a small linear tokenizer of its own.

The parser is forgiving the way browsers are: unclosed tags are closed at the end,
stray end tags are ignored, scripts and styles are dropped with their content. What
it builds is the shared document model of :mod:`.document`.

Why not the standard library's ``html.parser``: it rescans from an unfinished tag or
comment each time it looks again, so 20 KB of ``<a `` takes it seconds (and 250 KB
minutes), and some malformed declarations make it raise. :func:`_tokens` reads each
character a bounded number of times: a tag ends at the first ``>`` outside quotes,
and a tag, comment or quoted value left open runs to the end of the text (what a
browser does too), so nothing is ever scanned twice. A simple row (``<tr>`` and
cells without attributes or markup inside, what a DataFrame's body is made of) is one
token, built at once by :meth:`_Builder.handle_row` as its tags would build it: the
bulk of a big table costs a regex match per row instead of six events per cell.

Bounded work whatever the input: lists, quotes and definitions nest at most
:data:`MAX_DEPTH` deep (deeper ones add their text to the innermost kept one),
inline styles and links at most :data:`MAX_DEPTH` (deeper tags change nothing), and
a table has at most :data:`MAX_CELLS` cells once its spans are laid out (a bigger
one is not rendered: text/plain is shown instead).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape

from ..sanitize import terminal_text
from .document import (
    Block,
    Cell,
    CodeBlock,
    Heading,
    Indented,
    ListBlock,
    Paragraph,
    Rule,
    Span,
    Table,
)
from .registry import RenderLimitExceeded, check_time

_SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "math"})
_VOID = frozenset(
    {
        "br",
        "hr",
        "img",
        "input",
        "meta",
        "link",
        "area",
        "base",
        "col",
        "embed",
        "source",
        "track",
        "wbr",
        "param",
    }
)
_INLINE_STYLES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "cite": "italic",
    "var": "italic",
    "dfn": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strike",
    "del": "strike",
    "strike": "strike",
    "code": "code",
    "kbd": "code",
    "samp": "code",
    "tt": "code",
    "mark": "bold",
    "dt": "bold",
    "summary": "bold",
}
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "nav",
        "aside",
        "figure",
        "figcaption",
        "details",
        "summary",
        "address",
        "center",
        "form",
        "fieldset",
        "legend",
        "body",
        "html",
        "dl",
        "dt",
    }
)
_WS = re.compile(r"\s+")
#: Deepest nesting of block containers, and of inline styles and links.
MAX_DEPTH = 16
#: Most cells a table may have, spans included (pandas shows 60 x 20 by default).
MAX_CELLS = 50_000
_CONTAINERS = frozenset({"ul", "ol", "menu", "blockquote", "dd"})
_ALIGN = re.compile(r"text-align\s*:\s*(left|right|center)", re.I)


@dataclass
class _Cell:
    spans: list[Span]
    header: bool
    align: str | None
    colspan: int = 1
    rowspan: int = 1


@dataclass
class _TableState:
    rows: list[list[_Cell]] = field(default_factory=list)
    head_rows: int = 0
    in_head: bool = False
    row_align: str | None = None
    cell: _Cell | None = None
    caption: list[Span] | None = None
    in_caption: bool = False


class _Builder:
    def __init__(self) -> None:
        self.root: list[Block] = []
        # (tag, blocks) pairs: where the blocks being parsed go.
        self.containers: list[tuple[str, list[Block]]] = [("", self.root)]
        self.lists: list[ListBlock] = []
        self.inline: list[Span] = []
        self.styles: list[tuple[str, str]] = []
        self.links: list[str] = []
        self.skip: list[str] = []
        self.heading: int | None = None
        self.pre_depth = 0
        self.pre_buf: list[str] = []
        self.pre_lang: str | None = None
        self.tables: list[_TableState] = []
        self.nested_tables = 0
        #: Containers opened beyond MAX_DEPTH (not pushed; their end tags are ignored).
        self.too_deep = 0

    # -- helpers ----------------------------------------------------------------------

    @property
    def blocks(self) -> list[Block]:
        return self.containers[-1][1]

    def _current_styles(self) -> tuple[str, ...]:
        seen: list[str] = []
        for _, s in self.styles:
            if s not in seen:
                seen.append(s)
        return tuple(seen)

    def _sink(self) -> list[Span] | None:
        if self.tables:
            t = self.tables[-1]
            if t.in_caption:
                return t.caption
            return t.cell.spans if t.cell is not None else None
        return self.inline

    def flush(self) -> None:
        spans = _trim(self.inline)
        self.inline = []
        if not spans:
            return
        if self.heading is not None:
            self.blocks.append(Heading(self.heading, spans))
        else:
            self.blocks.append(Paragraph(spans))

    def _push(self, tag: str, blocks: list[Block]) -> None:
        self.containers.append((tag, blocks))

    def _pop_to(self, tags: tuple[str, ...]) -> None:
        for i in range(len(self.containers) - 1, 0, -1):
            if self.containers[i][0] in tags:
                del self.containers[i:]
                return

    def _in_cell(self) -> bool:
        if not self.tables:
            return False
        return self.tables[-1].cell is not None or self.tables[-1].in_caption

    # -- parser callbacks ---------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip:
            if tag in _SKIP and tag not in _VOID:
                self.skip.append(tag)
            return
        if tag in _SKIP:
            self.skip.append(tag)
            return
        # Attribute values had their character references decoded: &#27; is an ESC.
        a = {k: _clean(v) if v else "" for k, v in attrs}
        if self.pre_depth:
            if tag == "pre":
                self.pre_depth += 1
            elif tag == "br":
                self.pre_buf.append("\n")
            elif tag == "code" and self.pre_lang is None:
                self.pre_lang = _language(a.get("class", ""))
            return
        if tag in _INLINE_STYLES:
            if len(self.styles) < MAX_DEPTH:
                self.styles.append((tag, _INLINE_STYLES[tag]))
            if tag not in ("dt", "summary"):
                return
        if tag == "a":
            if len(self.links) < MAX_DEPTH:
                self.links.append(a.get("href", ""))
            return
        if tag == "br":
            sink = self._sink()
            if sink is not None:
                sink.append(Span("\n"))
            return
        if tag == "img":
            alt = a.get("alt") or a.get("title") or "image"
            sink = self._sink()
            if sink is not None:
                sink.append(Span(f"[{alt}]", ("dim",)))
            return
        if tag == "input" and a.get("type") == "checkbox":
            sink = self._sink()
            if sink is not None:
                sink.append(Span("[x] " if "checked" in a else "[ ] "))
            return
        if self._table_tag(tag, a):
            return
        if self._in_cell():
            # Block structure inside a table cell flattens into the cell's text.
            sink = self._sink()
            if sink is not None and tag in _BLOCKS | {"li", "ul", "ol", "pre", "blockquote"}:
                sink.append(Span(" "))
            return
        if tag in _CONTAINERS | {"li"} and (self.too_deep or len(self.containers) > MAX_DEPTH):
            # Too deep: the content joins the innermost container kept.
            self.flush()
            if tag != "li":
                self.too_deep += 1
            return
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.flush()
            self.heading = int(tag[1])
        elif tag in ("ul", "ol", "menu"):
            self.flush()
            try:
                start = int(a.get("start", "1"))
            except ValueError:
                start = 1
            lb = ListBlock(ordered=tag == "ol", start=start)
            self.blocks.append(lb)
            self.lists.append(lb)
            self._push(tag, [])  # a list's direct content (stray text) goes nowhere
        elif tag == "li":
            self.flush()
            if not self.lists:
                lb = ListBlock()
                self.blocks.append(lb)
                self.lists.append(lb)
                self._push("ul", [])
            # An open <li> of the same list ends here (</li> is optional in HTML).
            if self.containers[-1][0] == "li":
                self.containers.pop()
            item: list[Block] = []
            self.lists[-1].items.append(item)
            self._push("li", item)
        elif tag == "pre":
            self.flush()
            self.pre_depth = 1
            self.pre_buf = []
            self.pre_lang = _language(a.get("class", ""))
        elif tag == "blockquote":
            self.flush()
            ind = Indented([])
            self.blocks.append(ind)
            self._push("blockquote", ind.blocks)
        elif tag == "dd":
            self.flush()
            ind = Indented([], prefix="    ", style=None)
            self.blocks.append(ind)
            self._push("dd", ind.blocks)
        elif tag == "hr":
            self.flush()
            self.blocks.append(Rule())
        elif tag in _BLOCKS:
            self.flush()

    def _table_tag(self, tag: str, a: dict[str, str]) -> bool:
        """Handle table structure; True when the tag was a table tag."""
        if tag == "table":
            if self._in_cell():
                self.nested_tables += 1
                sink = self._sink()
                if sink is not None:
                    sink.append(Span(" "))
                return True
            self.flush()
            self.tables.append(_TableState())
            return True
        if not self.tables:
            return tag in ("tr", "td", "th", "thead", "tbody", "tfoot", "caption")
        t = self.tables[-1]
        if self.nested_tables:
            if tag in ("td", "th", "tr"):
                sink = self._sink()
                if sink is not None:
                    sink.append(Span(" "))
                return True
            return tag in ("thead", "tbody", "tfoot", "caption")
        if tag == "thead":
            t.in_head = True
        elif tag in ("tbody", "tfoot"):
            t.in_head = False
        elif tag == "caption":
            t.caption = []
            t.in_caption = True
        elif tag == "tr":
            t.cell = None
            t.rows.append([])
            if t.in_head:
                t.head_rows = len(t.rows)
            t.row_align = _align(a)
        elif tag in ("td", "th"):
            if not t.rows:
                t.rows.append([])
            t.cell = _Cell(
                [],
                header=tag == "th",
                # pandas right-aligns its whole header row; a header cell follows
                # its column instead, unless the cell itself says otherwise.
                align=_align(a) or (None if t.in_head else t.row_align),
                colspan=_int(a.get("colspan"), 1),
                rowspan=_int(a.get("rowspan"), 1),
            )
            t.rows[-1].append(t.cell)
        else:
            return False
        return True

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.pop()
            return
        if tag in _VOID:
            return
        if self.pre_depth:
            if tag == "pre":
                self.pre_depth -= 1
                if self.pre_depth == 0:
                    text = "".join(self.pre_buf)
                    # The newline right after <pre> is not content (HTML rule).
                    if text.startswith("\n"):
                        text = text[1:]
                    self.blocks.append(CodeBlock(text, self.pre_lang))
            return
        if tag in _INLINE_STYLES or tag == "a":
            if tag == "a":
                if self.links:
                    self.links.pop()
            else:
                for i in range(len(self.styles) - 1, -1, -1):
                    if self.styles[i][0] == tag:
                        del self.styles[i]
                        break
            if tag not in ("dt", "summary"):
                return
        if self.tables:
            t = self.tables[-1]
            if self.nested_tables:
                if tag == "table":
                    self.nested_tables -= 1
                return
            if tag == "table":
                self.tables.pop()
                self.blocks.append(_finish_table(t))
                return
            if tag == "caption":
                t.in_caption = False
                return
            if tag in ("td", "th"):
                t.cell = None
                return
            if tag == "thead":
                t.in_head = False
                return
            if self._in_cell():
                return
        if self.too_deep and tag in _CONTAINERS | {"li"}:
            self.flush()
            if tag != "li":
                self.too_deep -= 1
            return
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.flush()
            self.heading = None
        elif tag in ("ul", "ol", "menu"):
            self.flush()
            if self.lists:
                self._pop_to((tag, "ul", "ol", "menu"))
                self.lists.pop()
        elif tag == "li":
            self.flush()
            if self.containers[-1][0] == "li":
                self.containers.pop()
        elif tag in ("blockquote", "dd"):
            self.flush()
            self._pop_to((tag,))
        elif tag in _BLOCKS:
            self.flush()

    def handle_row(self, cells: list[tuple[str, str]]) -> None:
        """A simple row (``<tr>`` with ``<td>``/``<th>`` cells, none with attributes
        or markup inside; the text's references decoded): what its tags would do one
        by one, done at once where it can be (the body of a DataFrame), else replayed.
        """
        t = self.tables[-1] if self.tables else None
        if t is None or self.skip or self.pre_depth or self.nested_tables or t.in_caption:
            self.handle_starttag("tr", [])
            for tag, text in cells:
                self.handle_starttag(tag, [])
                if text:
                    self.handle_data(text)
                self.handle_endtag(tag)
            self.handle_endtag("tr")
            return
        # What <tr> does, then each cell as handle_starttag, handle_data and
        # handle_endtag make it: no attributes, so no alignment of its own or of its row.
        row: list[_Cell] = []
        t.rows.append(row)
        if t.in_head:
            t.head_rows = len(t.rows)
        t.row_align = None
        t.cell = None
        styles = self._current_styles()
        link = (self.links[-1] if self.links else None) or None
        for tag, text in cells:
            spans: list[Span] = []
            if text:
                # As handle_data: controls dropped, whitespace runs made one space. A
                # printable text has neither controls nor whitespace but " ".
                if not text.isprintable():
                    text = _WS.sub(" ", _clean(text))
                elif "  " in text:
                    text = _WS.sub(" ", text)
                if text and text != " ":  # a lone space never starts a cell
                    spans.append(Span(text, styles, link))
            row.append(_Cell(spans, header=tag == "th", align=None))

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        # Character references are decoded by now (&#27; is an ESC): clean again.
        data = _clean(data)
        if self.pre_depth:
            self.pre_buf.append(data)
            return
        sink = self._sink()
        if sink is None:
            return  # text between table cells is only indentation
        text = _WS.sub(" ", data)
        if not text:
            return
        if text == " " and (not sink or sink[-1].text.endswith((" ", "\n"))):
            return
        link = self.links[-1] if self.links else None
        sink.append(Span(text, self._current_styles(), link or None))

    def finish(self) -> list[Block]:
        if self.pre_depth:
            self.blocks.append(CodeBlock("".join(self.pre_buf), self.pre_lang))
            self.pre_depth = 0
        while self.tables:
            t = self.tables.pop()
            self.blocks.append(_finish_table(t))
        self.flush()
        return self.root


def _clean(text: str) -> str:
    return terminal_text(text, allow_sgr=False, allow_progress=False)


def _trim(spans: list[Span]) -> list[Span]:
    """Drop leading and trailing blanks of a paragraph's spans."""
    if len(spans) == 1:
        text = spans[0].text
        if text and text[0] != " " and text[-1] != " ":
            return spans  # one span with nothing to trim (nearly every table cell)
    lo, hi = 0, len(spans)
    while lo < hi and not spans[lo].text.strip(" "):
        lo += 1
    while hi > lo and not spans[hi - 1].text.strip(" "):
        hi -= 1
    if lo == hi:
        return []
    spans = spans[lo:hi]
    spans[0] = Span(spans[0].text.lstrip(" "), spans[0].styles, spans[0].link)
    spans[-1] = Span(spans[-1].text.rstrip(" "), spans[-1].styles, spans[-1].link)
    return spans


def _finish_table(t: _TableState) -> Table:
    """Lay spanned cells out on a grid: a rowspan leaves blanks below, a colspan
    leaves blanks to the right (pandas' MultiIndex headers read as in its text)."""
    grid: list[list[Cell]] = []
    carry: dict[int, int] = {}  # column -> rows still covered by a rowspan above
    total = 0
    for row in t.rows:
        check_time()
        if not carry and all(c.colspan == 1 and c.rowspan == 1 for c in row):
            # No span from above and none in the row (nearly every row): cell by cell.
            total += len(row)
            if total > MAX_CELLS:
                raise RenderLimitExceeded(f"a table of over {MAX_CELLS} cells")
            grid.append([Cell(_trim(c.spans), c.header, c.align) for c in row])
            continue
        out: list[Cell] = []
        col = 0
        cells = iter(row)
        pending = next(cells, None)
        # The last column a rowspan from above still covers (checked once per row).
        last_carried = max((c for c, n in carry.items() if n > 0), default=-1)
        while pending is not None or col <= last_carried:
            total += 1
            if total > MAX_CELLS:
                raise RenderLimitExceeded(f"a table of over {MAX_CELLS} cells")
            if carry.get(col, 0) > 0:
                carry[col] -= 1
                out.append(Cell([], header=True))
                col += 1
                continue
            if pending is None:
                break
            cell = pending
            out.append(Cell(_trim(cell.spans), cell.header, cell.align))
            total += cell.colspan - 1
            if total > MAX_CELLS:
                raise RenderLimitExceeded(f"a table of over {MAX_CELLS} cells")
            for _ in range(1, cell.colspan):
                out.append(Cell([], cell.header, cell.align, continued=True))
            if cell.rowspan > 1:
                for k in range(cell.colspan):
                    carry[col + k] = cell.rowspan - 1
            col += cell.colspan
            pending = next(cells, None)
        grid.append(out)
        carry = {c: n for c, n in carry.items() if n > 0}
    head = t.head_rows
    if head == 0 and len(grid) > 1 and grid[0] and all(c.header for c in grid[0]):
        head = 1
    caption = _trim(t.caption) if t.caption else None
    return Table(rows=grid, head_rows=head, caption=caption or None)


def _align(a: dict[str, str]) -> str | None:
    # halign: what pandas writes on a MultiIndex header cell spanning columns.
    al = (a.get("align") or a.get("halign") or "").lower()
    if al in ("left", "right", "center"):
        return al
    m = _ALIGN.search(a.get("style", ""))
    return m.group(1).lower() if m else None


def _int(v: str | None, default: int) -> int:
    try:
        return max(1, min(1000, int(v or default)))
    except ValueError:
        return default


def _language(cls: str) -> str | None:
    for c in cls.split():
        for prefix in ("language-", "lang-"):
            if c.startswith(prefix):
                return c[len(prefix) :]
    return None


# Whitespace right after a table-structure tag and before another tag is never
# content (it is trimmed from cells and ignored between them). Removing it first
# halves the parser's events on a DataFrame's HTML, which is mostly such indentation.
_TABLE_WS = re.compile(r"(</?(?:table|thead|tbody|tfoot|tr|td|th)\b[^<>]*>)\s+(?=<)", re.I)


_first_group = operator.methodcaller("group", 1)


def parse_html(source: str) -> list[Block]:
    """Parse an HTML fragment into document blocks."""
    b = _Builder()
    if "<t" in source or "<T" in source:
        # A function, not r"\1": a template is expanded in Python at every match.
        source = _TABLE_WS.sub(_first_group, source)
    for kind, name, attrs in _tokens(source):
        check_time()
        if kind == "start":
            b.handle_starttag(name, attrs)
        elif kind == "end":
            b.handle_endtag(name)
        elif kind == "startend":
            b.handle_starttag(name, attrs)
            b.handle_endtag(name)
        elif kind == "row":
            b.handle_row(attrs)  # type: ignore[arg-type]
        else:
            b.handle_data(name)
    return b.finish()


# -- tokenizer -------------------------------------------------------------------------

_Token = tuple[str, str, list[tuple[str, "str | None"]]]
_TAG_START = re.compile(r"<(?:(/?)([A-Za-z][^\s/>]*)|!--|!|\?)")
# Inside a tag: runs without quotes or ">", then a quoted value or the end.
_TAG_BODY = re.compile(r"[^\"'>]*")
_ATTR = re.compile(r"""([^\s"'>/=][^\s"'>/=]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_RAW_TEXT = frozenset({"script", "style", "textarea", "xmp", "plaintext"})
#: A row of cells without attributes or markup inside (a DataFrame's body, once the
#: whitespace between table tags is gone): one token instead of 3 + 3 per cell. Each
#: try is linear in the row it covers and stops at the next "<tr" (a cell cannot hold
#: a "<"), so trying at every "<tr>" reads each character a bounded number of times.
_SIMPLE_ROW = re.compile(r"<tr>((?:<t[dh]>[^<]*</t[dh]>)*)</tr>")
_SIMPLE_CELL = re.compile(r"<(t[dh])>([^<]*)</t[dh]>")


def _tokens(src: str) -> Iterator[_Token]:
    """``("start" | "end" | "startend", tag, attrs)`` and ``("data", text, [])``
    tokens of an HTML fragment, in one forward pass (see the module docstring).
    Tag and attribute names are lower case, values and text have their character
    references decoded. A simple row is one ``("row", "", cells)`` token, cells
    being ``(tag, text)`` pairs (see :data:`_SIMPLE_ROW`)."""
    n = len(src)
    pos = 0
    while pos < n:
        lt = src.find("<", pos)
        if lt < 0:
            yield ("data", unescape(src[pos:]), [])
            return
        if src.startswith("<tr>", lt):
            row = _SIMPLE_ROW.match(src, lt)
            if row is not None:
                if lt > pos:
                    yield ("data", unescape(src[pos:lt]), [])
                inner = row.group(1)
                cells = _SIMPLE_CELL.findall(inner)
                if "&" in inner:
                    cells = [(tag, unescape(text)) for tag, text in cells]
                yield ("row", "", cells)
                pos = row.end()
                continue
        m = _TAG_START.match(src, lt)
        if m is None:  # a "<" that starts nothing: text
            yield ("data", unescape(src[pos : lt + 1]), [])
            pos = lt + 1
            continue
        if lt > pos:
            yield ("data", unescape(src[pos:lt]), [])
        opener = m.group(0)
        if opener == "<!--":
            end = src.find("-->", m.end())
            pos = n if end < 0 else end + 3
            continue
        if m.group(2) is None:  # <!DOCTYPE ...>, <![CDATA[...]]>, <?...?>
            end = src.find(">", m.end())
            pos = n if end < 0 else end + 1
            continue
        end = _tag_end(src, m.end())
        if end < 0:
            # An unfinished tag (or quoted value) swallows the rest, as in a browser.
            return
        name = m.group(2).lower()
        body = src[m.end() : end]
        if m.group(1):
            yield ("end", name, [])
            pos = end + 1
            continue
        attrs = [
            (a.group(1).lower(), unescape(v[1:-1] if v[:1] in "\"'" else v) if v else None)
            for a in _ATTR.finditer(body)
            for v in (a.group(2),)
        ]
        pos = end + 1
        if body.rstrip().endswith("/"):
            yield ("startend", name, attrs)
            continue
        yield ("start", name, attrs)
        if name in _RAW_TEXT:
            # Raw text up to the matching end tag: never parsed as markup.
            close = re.compile(rf"</{re.escape(name)}\b", re.I).search(src, pos)
            stop = n if close is None else close.start()
            if stop > pos:
                yield ("data", src[pos:stop], [])
            pos = stop


def _tag_end(src: str, pos: int) -> int:
    """Where the tag whose attributes start at ``pos`` ends (its ``>``), or -1."""
    n = len(src)
    while pos < n:
        pos = _TAG_BODY.match(src, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            return -1
        ch = src[pos]
        if ch == ">":
            return pos
        close = src.find(ch, pos + 1)  # a quoted value
        if close < 0:
            return -1
        pos = close + 1
    return -1
