"""A small document model shared by the HTML and Markdown renderers, and its layout.

Theory
------
Parsers (:mod:`.html`, :mod:`.markdown`) build a list of blocks; :func:`layout`
turns blocks into terminal lines no wider than the width it is given (the one
exception: a code block keeps its lines, because re-wrapping code changes it).
Styles are names (``bold``, ``code``...) turned into escape sequences only at the
end, by a :class:`~.text.Styler`, so colourless output is the same layout minus the
escapes. Widths are measured on plain text, never on styled text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .registry import check_time
from .text import Styler, cell_width, pad, split_to_width, strip_ansi, truncate


@dataclass
class Span:
    """A run of inline text with one set of styles. ``"\\n"`` in text is a hard break."""

    text: str
    styles: tuple[str, ...] = ()
    link: str | None = None


@dataclass
class Paragraph:
    spans: list[Span]


@dataclass
class Heading:
    level: int
    spans: list[Span]


@dataclass
class CodeBlock:
    text: str
    language: str | None = None


@dataclass
class ListBlock:
    ordered: bool = False
    start: int = 1
    items: list[list[Block]] = field(default_factory=list)


@dataclass
class Cell:
    spans: list[Span]
    header: bool = False
    align: str | None = None  # "left", "right", "center" or None (guess)
    #: A blank that a colspan left to the right of the cell before it: when a table is
    #: cut into column blocks, a block starting here shows that cell's text again.
    continued: bool = False


@dataclass
class Table:
    rows: list[list[Cell]] = field(default_factory=list)
    #: How many leading rows are the header (thead, or a Markdown header row).
    head_rows: int = 0
    caption: list[Span] | None = None


@dataclass
class Rule:
    pass


@dataclass
class Indented:
    """Blocks shifted right: a blockquote (``prefix="│ "``) or a definition (spaces)."""

    blocks: list[Block]
    prefix: str = "│ "
    style: str | None = "quote"


@dataclass
class Lines:
    """Lines already laid out (a LaTeX box): printed as they are."""

    lines: list[str]


Block = Paragraph | Heading | CodeBlock | ListBlock | Table | Rule | Indented | Lines

#: A function highlighting code: (code, language) -> text with escapes, no newline.
Highlighter = Callable[[str, "str | None"], str]


_SPACES = re.compile(r"[ \t\r\f\v]+")


def plain_text(spans: list[Span]) -> str:
    """The text of spans with whitespace collapsed (hard breaks kept)."""
    text = spans[0].text if len(spans) == 1 else "".join(s.text for s in spans)
    if text.isalnum() or (
        # Printable: no whitespace but " " (a table cell's number, nearly always).
        text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "
    ):
        return text
    return _SPACES.sub(" ", text).strip(" ")


# -- inline layout -------------------------------------------------------------------

# A piece is one styled fragment; a word is pieces glued together without a space
# ("<b>bold</b>," stays one word so the comma never starts a line).
_Piece = tuple[str, tuple[str, ...], "str | None"]
_BREAK = ("\n", (), None)


def _words(spans: list[Span], styler: Styler) -> list[list[_Piece]]:
    words: list[list[_Piece]] = []
    glue = False  # True when the next piece continues the current word
    n = len(spans)
    for i, span in enumerate(spans):
        text = span.text
        if span.link and not styler.hyperlinks:
            nxt = spans[i + 1] if i + 1 < n else None
            if (nxt is None or nxt.link != span.link) and _show_url(span.link, spans, i):
                text = text + f" <{span.link}>"
        parts = re.split(r"([ \t\r\f\v]+|\n)", text)
        for part in parts:
            if not part:
                continue
            if part == "\n":
                words.append([_BREAK])
                glue = False
            elif part.isspace():
                glue = False
            else:
                piece = (part, span.styles, span.link)
                if glue and words and words[-1] and words[-1][0] is not _BREAK:
                    words[-1].append(piece)
                else:
                    words.append([piece])
                glue = True
    return words


def _show_url(url: str, spans: list[Span], i: int) -> bool:
    if url.startswith("#") or url.startswith("javascript:"):
        return False
    # Gather the whole link text: printing a URL right after itself helps nobody.
    j = i
    while j > 0 and spans[j - 1].link == url:
        j -= 1
    text = "".join(s.text for s in spans[j : i + 1]).strip()
    return text != url and text != url.removeprefix("mailto:")


def _render_line(pieces: list[tuple[str, tuple[str, ...], str | None]], styler: Styler) -> str:
    """Join pieces (spaces already inside) merging runs with the same style and link."""
    out: list[str] = []
    run: list[str] = []
    key: tuple[tuple[str, ...], str | None] | None = None

    def flush() -> None:
        if run and key is not None:
            text = styler("".join(run), *key[0])
            out.append(styler.link(text, key[1]) if key[1] else text)

    for text, styles, link in pieces:
        k = (styles, link)
        if k != key:
            flush()
            run = []
            key = k
        run.append(text)
    flush()
    return "".join(out)


def wrap_spans(spans: list[Span], width: int, styler: Styler) -> list[str]:
    """Inline spans filled into lines of at most ``width`` cells."""
    width = max(1, width)
    lines: list[str] = []
    cur: list[tuple[str, tuple[str, ...], str | None]] = []
    used = 0
    for word in _words(spans, styler):
        check_time()
        if word[0] is _BREAK:
            lines.append(_render_line(cur, styler))
            cur, used = [], 0
            continue
        wlen = sum(cell_width(p[0]) for p in word)
        sep = 1 if cur else 0
        if used + sep + wlen > width and cur:
            lines.append(_render_line(cur, styler))
            cur, used, sep = [], 0, 0
        if wlen > width:
            # A word wider than the line (a URL, a long number) is cut into pieces.
            for text, styles, link in word:
                for chunk in split_to_width(text, width):
                    cw = cell_width(chunk)
                    if used + cw > width and cur:
                        lines.append(_render_line(cur, styler))
                        cur, used = [], 0
                    cur.append((chunk, styles, link))
                    used += cw
            continue
        if sep:
            # The space takes the style of the word before it only inside one link,
            # so an underlined link does not underline the gap after it.
            prev = cur[-1]
            same = prev[2] is not None and prev[2] == word[0][2]
            cur.append((" ", prev[1] if same else (), prev[2] if same else None))
        cur.extend(word)
        used += sep + wlen
    if cur or not lines:
        lines.append(_render_line(cur, styler))
    return lines


# -- tables --------------------------------------------------------------------------

_NUMERIC = re.compile(
    r"^[-+−]?(?:[$€£¥]\s?)?(?:\d[\d,_ ]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s?%?$"
    r"|^(?:NaN|nan|NaT|None|<NA>|inf|-inf|True|False|…|\.\.\.)$"
)


def _cell_lines(cell: Cell, width: int, styler: Styler) -> list[str]:
    styles = ("bold",) if cell.header else ()
    spans = [Span(s.text, s.styles + styles, s.link) for s in cell.spans] if styles else cell.spans
    return wrap_spans(spans, width, styler)


def _fit_widths(natural: list[int], avail: int, floors: list[int] | None = None) -> list[int]:
    """Column widths summing to at most ``avail`` (when the floors allow): narrow
    columns keep their natural width, wide ones share what is left (water filling).
    No column gets less than its floor."""
    low = floors if floors is not None else [min(1, n) for n in natural]
    if sum(natural) <= avail:
        return list(natural)

    def total(cap: int) -> int:
        return sum(max(f, min(n, cap)) for n, f in zip(natural, low, strict=True))

    lo, hi = 0, max(natural)
    while lo < hi:  # the largest cap T with total(T) <= avail
        mid = (lo + hi + 1) // 2
        if total(mid) <= avail:
            lo = mid
        else:
            hi = mid - 1
    widths = [max(f, min(n, lo)) for n, f in zip(natural, low, strict=True)]
    spare = avail - sum(widths)
    for i, n in enumerate(natural):
        if spare <= 0:
            break
        if n > widths[i]:
            widths[i] += 1
            spare -= 1
    return widths


#: Columns wider than this (long text) are wrapped at spaces to about this width
#: when a block is packed; a block's spare room then widens them again.
WRAP_WIDTH = 30


def _cell_text(spans: list[Span], styler: Styler) -> str:
    """A cell's text as it is shown: with the URL of a link after it when the terminal
    has no hyperlinks (what :func:`_words` prints), so the column is as wide."""
    if styler.hyperlinks or not (spans[0].link if len(spans) == 1 else any(s.link for s in spans)):
        return plain_text(spans)
    parts: list[str] = []
    for i, s in enumerate(spans):
        parts.append(s.text)
        nxt = spans[i + 1] if i + 1 < len(spans) else None
        if s.link and (nxt is None or nxt.link != s.link) and _show_url(s.link, spans, i):
            parts.append(f" <{s.link}>")
    return plain_text([Span("".join(parts))])


def _longest_word(text: str) -> int:
    """Cells of the widest space-separated word of ``text`` (what a column may not be
    narrower than: headers and values wrap only at spaces)."""
    if " " not in text and "\n" not in text:
        return cell_width(text)
    return max((cell_width(w) for w in text.split()), default=0)


@dataclass
class _Span:
    """A cell spanning columns ``start``..``end`` of row ``row`` (a colspan), its
    text that of cell ``src`` (the span's first cell: a span cut at the index or by
    a block shows it again)."""

    row: int
    start: int
    end: int
    src: int
    natural: int
    word: int


def layout_table(table: Table, width: int, styler: Styler) -> list[str]:
    """A table in aligned columns, fitted to ``width`` cells.

    Theory: a column is never narrower than its widest word, so a header or a value
    is only ever wrapped at a space (a number never is). When the columns do not fit
    side by side the table is cut into *column blocks* that each fit, one below the
    other, as pandas' text repr does; the index (leading columns whose body cells
    are all ``<th>``) is repeated at the left of every block. One exception: a word
    wider than a whole block (with the index) is broken across lines, never hidden
    behind an ellipsis, so every value stays readable.

    A cell spanning columns (a MultiIndex's upper levels) is drawn across them,
    without the rules between them, and widens none of them by itself: the columns
    it spans are widened only when, together, they are narrower than its widest word
    (or, room permitting, its text). A block starting inside a span names it again;
    a span that cannot get its widest word in the rest of a block starts the next.

    Tables are drawn in box-drawing rules; in a terminal too narrow for them, in
    pandas' bare layout (two spaces between columns). Either way the only rules
    across the table are under the header (and the box's top and bottom): body rows
    follow each other without a rule, whatever their height.
    """
    width = max(1, width)
    rows = [r for r in table.rows if r]
    if not rows:
        return []
    head = table.head_rows
    ncols = max(len(r) for r in rows)
    cells = [r + [Cell([])] * (ncols - len(r)) for r in rows]
    texts = [[_cell_text(c.spans, styler) for c in r] for r in cells]
    # Where each span ends: span_end[ri] maps a span's first column to its last.
    span_end: list[dict[int, int]] = [{} for _ in cells]
    for ri, crow in enumerate(cells):
        for ci in range(ncols - 1):
            if crow[ci + 1].continued and not crow[ci].continued:
                e = ci + 1
                while e + 1 < ncols and crow[e + 1].continued:
                    e += 1
                span_end[ri][ci] = e
    natural = [0] * ncols
    minw = [0] * ncols
    numeric = [0] * ncols
    filled = [0] * ncols
    # The cells' widths on one line (-1: the text has a hard break).
    one_line = [[0] * ncols for _ in cells]
    spans: list[_Span] = []
    for ri, row in enumerate(texts):
        check_time()
        widths_row = one_line[ri]
        ends = span_end[ri]
        for ci, t in enumerate(row):
            if not t:
                continue
            if "\n" in t:
                w = max(cell_width(p) for p in t.split("\n"))
                widths_row[ci] = -1
            else:
                w = widths_row[ci] = cell_width(t)
            word = w if " " not in t and "\n" not in t else _longest_word(t)
            if ci in ends:
                spans.append(_Span(ri, ci, ends[ci], ci, w, word))
                continue  # a span widens the columns it covers only as a whole
            natural[ci] = max(natural[ci], w)
            minw[ci] = max(minw[ci], word)
            if ri >= head and not cells[ri][ci].header:
                filled[ci] += 1
                if _NUMERIC.match(t):
                    numeric[ci] += 1
    col_right = [filled[i] > 0 and numeric[i] * 2 > filled[i] for i in range(ncols)]

    # The index: leading columns whose body cells are all row headers (a rowspan's
    # blank counts as one). Repeated only while its columns, at 2 cells and a gap
    # each, take at most half the width.
    nidx = 0
    if len(rows) > head:
        while nidx < ncols - 1 and all(cells[r][nidx].header for r in range(head, len(rows))):
            nidx += 1
    if nidx and 4 * nidx > width // 2:
        nidx = 0
    # A span across the index's edge is two: the index part and the data part (which
    # names it again, as every block does).
    for sp in list(spans):
        if sp.start < nidx <= sp.end:
            spans.append(_Span(sp.row, nidx, sp.end, sp.src, sp.natural, sp.word))
            sp.end = nidx - 1
    # The index is in every block, whole: its spans widen its columns beforehand.
    for sp in spans:
        if sp.end < nidx:
            k = sp.end - sp.start
            natural[sp.end] = max(
                natural[sp.end], sp.natural - sum(natural[sp.start : sp.end]) - 3 * k
            )
            minw[sp.end] = max(minw[sp.end], sp.word - sum(minw[sp.start : sp.end]) - 3 * k)
    # Never narrower than 2 cells where there is text: a wide (CJK) character takes 2.
    minw = [max(m, min(2, n)) for m, n in zip(minw, natural, strict=True)]
    pref = [min(n, max(m, WRAP_WIDTH)) for n, m in zip(natural, minw, strict=True)]
    data = list(range(nidx, ncols))
    # The data columns each span covers (by column), for the packing below.
    covering: dict[int, list[_Span]] = {}
    for sp in spans:
        if sp.start >= nidx:
            for c in range(sp.start, sp.end + 1):
                covering.setdefault(c, []).append(sp)

    # The widest word of the data columns (a span's too): an index beside it keeps
    # its own words whole only while that word fits too, up to half the width (an
    # index label of 70 cells does not cut every header to 10). Boxes cost a cell per
    # column more than bare columns: a terminal so narrow that they would break a
    # word of 10 cells or less goes without them.
    widest = max(
        max((minw[c] for c in data), default=1),
        max((sp.word for sp in spans if sp.start >= nidx), default=0),
    )
    need = min(widest, max(10, width // 2 - 4))

    def index_widths(boxed: bool) -> list[int]:
        # The index keeps its words whole while a data column of `need` cells still
        # fits beside it; only a terminal narrower than that breaks them.
        per = 3 if boxed else 2
        room = width - (1 if boxed else 0) - per * (nidx + 1) - need
        floors = [min(2, n) for n in natural[:nidx]]
        return _fit_widths(pref[:nidx], max(room, 2 * nidx), floors)

    def budget(boxed: bool, iw: list[int]) -> int:
        # Cells left for the data columns, each counted with its share of the rules
        # or gaps: boxed, "│ " + text + " " per column plus the closing "│"; bare,
        # two spaces before every column but the very first.
        if boxed:
            return width - 1 - sum(w + 3 for w in iw)
        return width - sum(w + 2 for w in iw) + 2

    iw = index_widths(True)
    boxed = budget(True, iw) - 3 >= min(need, budget(False, index_widths(False)) - 2)
    if not boxed:
        iw = index_widths(False)
    per = 3 if boxed else 2
    room = budget(boxed, iw)

    def segments(cols: list[int]) -> list[tuple[_Span, int, int]]:
        """The spans over the block of columns ``cols`` (consecutive data columns), as
        (span, index of its first column in the block, index of its last)."""
        first, last = cols[0], cols[-1]
        seen: dict[int, tuple[_Span, int, int]] = {}
        for c in cols:
            for sp in covering.get(c, ()):
                if id(sp) not in seen:
                    a, b = max(sp.start, first), min(sp.end, last)
                    seen[id(sp)] = (sp, a - first, b - first)
        return sorted(seen.values(), key=lambda t: t[1])

    def fit_spans(cols: list[int], ws: list[int]) -> int:
        """Widen the block's columns so that each span over them gets its widest word
        (the last of its columns takes the difference); returns how many of the
        block's columns stay in it: a span that cannot, and does not start the block,
        starts the next one, as do columns after a span that starts the block."""
        keep = len(cols)
        while True:
            for sp, i0, i1 in segments(cols[:keep]):
                word = min(sp.word, room - per)
                deficit = word - (sum(ws[i0 : i1 + 1]) + per * (i1 - i0))
                if deficit <= 0:
                    continue
                spare = room - sum(ws[:keep]) - per * keep
                if deficit > spare and i0 > 0:
                    keep = i0
                    break
                k = keep
                while deficit > spare and k > i1 + 1:
                    k -= 1
                    spare += ws[k] + per
                ws[i1] += max(0, min(deficit, spare))
                if k < keep:
                    keep = k
                    break
            else:
                return keep

    # Pack the data columns into blocks at their preferred widths (a column alone
    # never wider than a block), then let each block's spare room widen the columns
    # that were wrapped.
    packed: list[tuple[list[int], list[int]]] = []  # (columns, their widths)
    todo = data[::-1]  # a stack: the next column last
    while todo:
        check_time()
        cur: list[int] = []
        cur_w: list[int] = []
        used = 0
        while todo:
            c = todo[-1]
            w = max(min(pref[c], room - per), min(2, natural[c]))
            left = room - used - per
            if cur and w > left:
                if natural[c] > pref[c] and left >= max(minw[c], WRAP_WIDTH // 2):
                    w = left  # text that wraps anyway fills the rest of this block
                else:
                    break
            todo.pop()
            cur.append(c)
            cur_w.append(w)
            used += w + per
        if covering:
            keep = fit_spans(cur, cur_w)
            todo.extend(reversed(cur[keep:]))
            cur, cur_w = cur[:keep], cur_w[:keep]
        packed.append((cur, cur_w))
    blocks: list[tuple[list[int], list[int]]] = []
    for cols, floors in packed:
        nat = [max(natural[c], f) for c, f in zip(cols, floors, strict=True)]
        ws = _fit_widths(nat, room - per * len(cols), floors)
        # Room left over goes to spans whose text does not fit on one line.
        for sp, i0, i1 in segments(cols) if covering else ():
            short = sp.natural - (sum(ws[i0 : i1 + 1]) + per * (i1 - i0))
            spare = room - per * len(cols) - sum(ws)
            if short > 0 and spare > 0:
                ws[i1] += min(short, spare)
        blocks.append((cols, ws))

    rule = styler.color  # rules drawn dim when colour is on
    bar = styler("│", "rule") if rule else "│"

    def render_cell(ri: int, ci: int, w: int, src: int) -> list[str]:
        """The lines of cell ``ci`` of row ``ri`` in a column ``w`` wide, showing the
        text of cell ``src`` (the cell itself, or the start of its colspan)."""
        cell, t, tw = cells[ri][src], texts[ri][src], one_line[ri][src]
        align = cell.align
        if align is None:
            align = "right" if col_right[ci] and (ri < head or not cell.header) else "left"
        sp = cell.spans
        if len(sp) == 1:
            plain = not sp[0].styles and not sp[0].link
        else:
            plain = all(not s.styles and not s.link for s in sp)
        if 0 <= tw <= w and plain:
            # Fast path (nearly every cell): one line, no wrapping.
            body = styler(t, "bold") if cell.header and t else t
            gap = w - tw
            if align == "right":
                return [" " * gap + body]
            if align == "center":
                return [" " * (gap // 2) + body + " " * (gap - gap // 2)]
            return [body + " " * gap]
        return [pad(ln, w, align) for ln in _cell_lines(cell, w, styler)]

    # Spans by row and column, for the rows that have any.
    span_at: dict[int, dict[int, _Span]] = {}
    for sp in spans:
        span_at.setdefault(sp.row, {})
        for c in range(sp.start, sp.end + 1):
            span_at[sp.row][c] = sp

    def parts_of(ri: int, shown: list[int], widths: list[int]) -> list[tuple[int, int, int]]:
        """Row ``ri`` over the columns ``shown`` as (first, last, width) parts: one
        per column, one per run of columns a span covers."""
        at = span_at.get(ri, {})
        out: list[tuple[int, int, int]] = []
        k = 0
        while k < len(shown):
            sp = at.get(shown[k])
            j = k
            if sp is not None:
                while j + 1 < len(shown) and at.get(shown[j + 1]) is sp:
                    j += 1
            out.append((k, j, sum(widths[k : j + 1]) + per * (j - k)))
            k = j + 1
        return out

    # The index is the same in every block: laid out once.
    index_cells = [[render_cell(ri, c, iw[c], c) for c in range(nidx)] for ri in range(len(cells))]

    out: list[str] = []
    if table.caption:
        out.extend(wrap_spans(table.caption, width, styler))
    for bi, (cols, dwidths) in enumerate(blocks):
        if bi:
            out.append("")  # blocks are set apart by a blank line, as in pandas
        widths = iw + dwidths
        shown = list(range(nidx)) + cols
        # Per row: the column boundaries a span hides (no rule drawn across it).
        joined: list[set[int]] = []
        row_parts: list[list[tuple[int, int, int]] | None] = []
        for ri in range(len(cells)):
            if ri in span_at:
                row_spans = parts_of(ri, shown, widths)
                row_parts.append(row_spans)
                joined.append({k for a, b, _ in row_spans for k in range(a, b)})
            else:
                row_parts.append(None)
                joined.append(set())

        def hline(
            left: str, right: str, above: set[int], below: set[int], widths: list[int] = widths
        ) -> str:
            line = left + "─" * (widths[0] + 2)
            for k in range(1, len(widths)):
                up, down = k - 1 not in above, k - 1 not in below
                line += ("┼" if down else "┴") if up else ("┬" if down else "─")
                line += "─" * (widths[k] + 2)
            line += right
            return styler(line, "rule") if rule else line

        if boxed:
            out.append(hline("┌", "┐", set(range(len(widths))), joined[0]))
        for ri in range(len(cells)):
            check_time()
            parts = row_parts[ri]
            if parts is None:
                rendered = index_cells[ri] + [
                    render_cell(ri, c, w, c) for c, w in zip(cols, dwidths, strict=True)
                ]
                pw = widths
            else:
                rendered, pw = [], []
                for a, _, w in parts:
                    # A span shows its text in every part of it (blocks, the index).
                    cover = span_at[ri].get(shown[a])
                    src = cover.src if cover is not None else shown[a]
                    rendered.append(render_cell(ri, shown[a], w, src))
                    pw.append(w)
            height = max(len(r) for r in rendered)
            for li in range(height):
                if height == 1:
                    parts_text = [r[0] for r in rendered]
                else:
                    parts_text = [
                        r[li] if li < len(r) else " " * w for r, w in zip(rendered, pw, strict=True)
                    ]
                if boxed:
                    out.append(bar + " " + f" {bar} ".join(parts_text) + " " + bar)
                else:
                    out.append("  ".join(parts_text).rstrip())
            if ri == head - 1 and ri < len(cells) - 1:
                if boxed:
                    out.append(hline("├", "┤", joined[ri], joined[ri + 1]))
                else:
                    line = "─" * (sum(widths) + 2 * (len(widths) - 1))
                    out.append(styler(line, "rule") if rule else line)
        if boxed:
            out.append(hline("└", "┘", joined[-1], set(range(len(widths)))))
    return out


# -- blocks --------------------------------------------------------------------------

_BULLETS = ("•", "◦", "▪")


def layout(
    blocks: list[Block],
    width: int,
    styler: Styler,
    highlight: Highlighter | None = None,
    *,
    depth: int = 0,
    tight: bool = False,
) -> list[str]:
    """Lay blocks out as terminal lines at most ``width`` cells wide.

    Blocks are separated by a blank line (``tight``: none, as inside list items).
    """
    width = max(8, width)
    out: list[str] = []
    for block in blocks:
        check_time()
        lines = _layout_block(block, width, styler, highlight, depth)
        if not lines:
            continue
        if out and not tight:
            out.append("")
        out.extend(lines)
    return out


def _layout_block(
    block: Block, width: int, styler: Styler, highlight: Highlighter | None, depth: int
) -> list[str]:
    if isinstance(block, Paragraph):
        if not plain_text(block.spans):
            return []
        return wrap_spans(block.spans, width, styler)
    if isinstance(block, Heading):
        text = plain_text(block.spans)
        if not text:
            return []
        styles = ("heading", "underline") if block.level == 1 else ("heading",)
        spans = [Span(s.text, s.styles + styles, s.link) for s in block.spans]
        lines = wrap_spans(spans, width, styler)
        if block.level <= 2:
            # A rule under h1/h2 keeps the structure visible without colour too.
            w = min(width, max(cell_width(plain_text([Span(ln)])) for ln in map(strip_ansi, lines)))
            lines.append(styler(("═" if block.level == 1 else "─") * w, "heading"))
        return lines
    if isinstance(block, CodeBlock):
        code = block.text.rstrip("\n")
        text = highlight(code, block.language) if highlight else code
        return ["  " + ln for ln in text.split("\n")]
    if isinstance(block, ListBlock):
        return _layout_list(block, width, styler, highlight, depth)
    if isinstance(block, Table):
        return layout_table(block, width, styler)
    if isinstance(block, Rule):
        return [styler("─" * min(width, 80), "rule")]
    if isinstance(block, Indented):
        inner_w = width - cell_width(block.prefix)
        inner = layout(block.blocks, inner_w, styler, highlight, depth=depth)
        prefix = styler(block.prefix, block.style) if block.style else block.prefix
        return [prefix + ln for ln in inner]
    if isinstance(block, Lines):
        return list(block.lines)
    return []


def _layout_list(
    block: ListBlock, width: int, styler: Styler, highlight: Highlighter | None, depth: int
) -> list[str]:
    out: list[str] = []
    if block.ordered:
        last = block.start + len(block.items) - 1
        mw = len(f"{last}.")
        markers = [pad(f"{block.start + i}.", mw, "right") for i in range(len(block.items))]
    else:
        bullet = _BULLETS[depth % len(_BULLETS)]
        markers = [bullet] * len(block.items)
    for marker, item in zip(markers, block.items, strict=True):
        indent = cell_width(marker) + 1
        lines = layout(item, width - indent, styler, highlight, depth=depth + 1, tight=True)
        if not lines:
            lines = [""]
        out.append(marker + " " + lines[0])
        out.extend(" " * indent + ln if ln else ln for ln in lines[1:])
    return out


__all__ = [
    "Block",
    "Cell",
    "CodeBlock",
    "Heading",
    "Indented",
    "Lines",
    "ListBlock",
    "Paragraph",
    "Rule",
    "Span",
    "Table",
    "layout",
    "layout_table",
    "plain_text",
    "truncate",
    "wrap_spans",
]
