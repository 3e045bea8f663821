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
from .text import Styler, cell_width, pad, split_to_width, truncate


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
    text = "".join(s.text for s in spans)
    return _SPACES.sub(" ", text).strip(" ") if not text.isalnum() else text


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


def _fit_widths(natural: list[int], avail: int) -> list[int]:
    """Column widths summing to at most ``avail``: narrow columns keep their width,
    wide ones share what is left (water filling)."""
    if sum(natural) <= avail:
        return natural
    lo, hi = 1, max(natural)
    while lo < hi:  # the largest cap T with sum(min(n, T)) <= avail
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in natural) <= avail:
            lo = mid
        else:
            hi = mid - 1
    widths = [min(n, lo) for n in natural]
    spare = avail - sum(widths)
    for i, n in enumerate(natural):
        if spare <= 0:
            break
        if n > widths[i]:
            widths[i] += 1
            spare -= 1
    return widths


def layout_table(table: Table, width: int, styler: Styler) -> list[str]:
    """A table in aligned columns with box-drawing rules, fitted to ``width``."""
    rows = [r for r in table.rows if r]
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    texts = [[plain_text(c.spans) for c in r] + [""] * (ncols - len(r)) for r in rows]
    cells = [r + [Cell([])] * (ncols - len(r)) for r in rows]
    natural = [0] * ncols
    numeric = [0] * ncols
    filled = [0] * ncols
    for ri, row in enumerate(texts):
        for ci, t in enumerate(row):
            w = (
                max((cell_width(p) for p in t.split("\n")), default=0)
                if "\n" in t
                else (cell_width(t))
            )
            if w > natural[ci]:
                natural[ci] = w
            if t and ri >= table.head_rows and not cells[ri][ci].header:
                filled[ci] += 1
                if _NUMERIC.match(t):
                    numeric[ci] += 1
    col_right = [filled[i] > 0 and numeric[i] * 2 > filled[i] for i in range(ncols)]

    # Box style needs 3 cells per column (borders and padding) + 1; when even
    # 3-cell-wide columns do not fit, drop the borders (pandas' own text layout);
    # when that does not fit either, keep the leftmost columns and mark the cut.
    boxed = ncols * 3 + 1 + ncols * 3 <= width
    cut = False
    if boxed:
        widths = _fit_widths(natural, width - (ncols * 3 + 1))
    else:
        # The most leading columns whose 3-cell minimum fits (a running sum: linear).
        keep, used = 0, 0
        for n in natural:
            used += min(n, 3)
            if keep and used + 2 * (keep + 1) + 1 > width:
                break
            keep += 1
        keep = max(1, keep)
        if keep < ncols:
            cut = True
            natural = natural[:keep]
            texts = [r[:keep] for r in texts]
            cells = [r[:keep] for r in cells]
            col_right = col_right[:keep]
            ncols = keep
        widths = _fit_widths(natural, max(ncols, width - 2 * (ncols - 1) - (3 if cut else 0)))

    out: list[str] = []
    if table.caption:
        out.extend(wrap_spans(table.caption, width, styler))
    rule = styler.color  # rules drawn dim when colour is on

    def hline(left: str, mid: str, right: str) -> str:
        line = left + mid.join("─" * (w + 2) for w in widths) + right
        return styler(line, "rule") if rule else line

    bar = styler("│", "rule") if rule else "│"
    multi_line = False
    rendered_rows: list[list[list[str]]] = []
    for ri, cell_row in enumerate(cells):
        check_time()
        rendered: list[list[str]] = []
        for ci, cell in enumerate(cell_row):
            t = texts[ri][ci]
            w = widths[ci]
            align = cell.align
            if align is None:
                header = ri < table.head_rows
                align = "right" if col_right[ci] and (header or not cell.header) else "left"
            simple = all(not s.styles and not s.link for s in cell.spans)
            if simple and "\n" not in t and cell_width(t) <= w:
                # Fast path (nearly every cell): one line, no wrapping.
                body = styler(t, "bold") if cell.header and t else t
                gap = w - cell_width(t)
                if align == "right":
                    rendered.append([" " * gap + body])
                elif align == "center":
                    rendered.append([" " * (gap // 2) + body + " " * (gap - gap // 2)])
                else:
                    rendered.append([body + " " * gap])
                continue
            lines = _cell_lines(cell, w, styler)
            lines = [_pad_styled(ln, w, align) for ln in lines]
            if len(lines) > 1:
                multi_line = True
            rendered.append(lines)
        rendered_rows.append(rendered)

    if boxed:
        out.append(hline("┌", "┬", "┐"))
    for ri, rendered in enumerate(rendered_rows):
        height = max(len(c) for c in rendered)
        for li in range(height):
            parts = [c[li] if li < len(c) else " " * widths[ci] for ci, c in enumerate(rendered)]
            if boxed:
                out.append(bar + " " + f" {bar} ".join(parts) + " " + bar)
            else:
                more = "  …" if cut and li == 0 else ""
                out.append("  ".join(parts).rstrip() + more)
        last = ri == len(rendered_rows) - 1
        if ri == table.head_rows - 1 and not last:
            if boxed:
                out.append(hline("├", "┼", "┤"))
            else:
                out.append(styler("─" * min(width, sum(widths) + 2 * (ncols - 1)), "rule"))
        elif boxed and multi_line and not last and ri >= table.head_rows:
            out.append(hline("├", "┼", "┤"))
    if boxed:
        out.append(hline("└", "┴", "┘"))
    return out


def _pad_styled(line: str, width: int, align: str) -> str:
    from .text import display_width

    gap = width - display_width(line)
    if gap <= 0:
        return line
    if align == "right":
        return " " * gap + line
    if align == "center":
        return " " * (gap // 2) + line + " " * (gap - gap // 2)
    return line + " " * gap


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
            w = min(width, max(cell_width(plain_text([Span(ln)])) for ln in _plain(lines)))
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


def _plain(lines: list[str]) -> list[str]:
    from .text import strip_ansi

    return [strip_ansi(ln) for ln in lines]


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
