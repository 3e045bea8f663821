"""text/markdown as terminal text: a small CommonMark/GFM subset, no dependency.

Blocks: ATX and setext headings, paragraphs, fenced and indented code, block
quotes, bullet and ordered lists (nested by indentation), GFM pipe tables,
thematic breaks, ``$$`` display math and raw HTML blocks (through :mod:`.html`).
Inline: code spans, ``**strong**``, ``*emphasis*``, ``~~strike~~``, links, images,
autolinks, backslash escapes, hard breaks and ``$inline math$``.

Linear time: no inline pattern scans past the next opening delimiter of its own
kind (an unclosed ``**`` costs the distance to the next ``**``, not to the end of
the text), and block nesting (quotes in lists in quotes...) stops at
:data:`MAX_DEPTH`: deeper content is kept as paragraph text, so each line is looked
at a bounded number of times.
"""

from __future__ import annotations

import re

from .document import (
    Block,
    Cell,
    CodeBlock,
    Heading,
    Indented,
    Lines,
    ListBlock,
    Paragraph,
    Rule,
    Span,
    Table,
)
from .registry import check_time

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)")
# The opening of an ATX heading; its text and closing #s are cut in Python (a lazy
# pattern with an optional tail retries the tail at every character: quadratic).
_ATX_OPEN = re.compile(r" {0,3}(#{1,6})(?:[ \t]+|$)")
_HR = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_ITEM = re.compile(r"^( {0,3})([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*)|$)")
_SEP_CELL = re.compile(r":?-+:?")
_HTML_BLOCK = re.compile(
    r"^ {0,3}<(?:/?(?:div|table|p|pre|ul|ol|h[1-6]|details|blockquote|dl|section|center|img"
    r"|hr|br)\b|!--)",
    re.I,
)


#: Deepest block nesting parsed (lists and quotes); deeper lines are paragraph text.
MAX_DEPTH = 16


def _atx(line: str) -> tuple[int, str] | None:
    """``(level, text)`` of an ATX heading line (``## Title ##``), else None."""
    m = _ATX_OPEN.match(line)
    if m is None:
        return None
    text = line[m.end() :].rstrip(" \t")
    closing = text.rstrip("#")
    if not closing or closing[-1] in " \t":
        text = closing.rstrip(" \t")  # "## Title ##": the closing #s are not text
    return len(m.group(1)), text


def _is_table_sep(line: str) -> bool:
    """Whether ``line`` is a GFM table's delimiter row (``|:--|--:|``)."""
    s = line.strip()
    if "-" not in s:
        return False
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    return all(_SEP_CELL.fullmatch(c.strip()) for c in s.split("|"))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _starts_block(line: str) -> bool:
    return bool(
        _FENCE.match(line)
        or _atx(line) is not None
        or _HR.match(line)
        or _QUOTE.match(line)
        or _ITEM.match(line)
        or line.strip().startswith("$$")
        or _HTML_BLOCK.match(line)
    )


def parse_markdown(source: str) -> list[Block]:
    """Parse Markdown text into document blocks."""
    lines = source.replace("\r\n", "\n").replace("\t", "    ").split("\n")
    return _blocks(lines, 0)


def _blocks(lines: list[str], depth: int) -> list[Block]:
    out: list[Block] = []
    if depth >= MAX_DEPTH:
        # Too deep to nest further: what is left reads as plain paragraphs.
        text = "\n".join(ln.strip() for ln in lines)
        return [Paragraph([Span(p)]) for p in text.split("\n\n") if p.strip()]
    i, n = 0, len(lines)
    while i < n:
        check_time()
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        m = _FENCE.match(line)
        if m:
            fence = m.group(1)
            body: list[str] = []
            i += 1
            while i < n and not lines[i].strip().startswith(fence):
                body.append(lines[i])
                i += 1
            i += 1
            out.append(CodeBlock("\n".join(body), m.group(2) or None))
            continue
        h = _atx(line)
        if h is not None:
            out.append(Heading(h[0], parse_inline(h[1])))
            i += 1
            continue
        if _HR.match(line):
            out.append(Rule())
            i += 1
            continue
        if line.strip().startswith("$$"):
            i = _math_block(lines, i, out)
            continue
        if _HTML_BLOCK.match(line):
            from .html import parse_html

            body = []
            while i < n and lines[i].strip():
                body.append(lines[i])
                i += 1
            out.extend(parse_html("\n".join(body)))
            continue
        if "|" in line and i + 1 < n and _is_table_sep(lines[i + 1]):
            i = _table(lines, i, out)
            continue
        if _QUOTE.match(line):
            body = []
            while i < n and lines[i].strip() and (_QUOTE.match(lines[i]) or body):
                q = _QUOTE.match(lines[i])
                body.append(lines[i][q.end() :] if q else lines[i])
                i += 1
            out.append(Indented(_blocks(body, depth + 1)))
            continue
        if _ITEM.match(line):
            i = _list(lines, i, out, depth)
            continue
        if line.startswith("    "):
            body = []
            while i < n and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            out.append(CodeBlock("\n".join(body).rstrip("\n")))
            continue
        # A paragraph: lines until a blank line or the start of another block.
        para = [line]
        i += 1
        while i < n and lines[i].strip():
            s = _SETEXT.match(lines[i])
            if s:
                out.append(Heading(1 if s.group(1)[0] == "=" else 2, parse_inline(_join(para))))
                para = []
                i += 1
                break
            if _starts_block(lines[i]):
                break
            para.append(lines[i])
            i += 1
        if para:
            out.append(Paragraph(parse_inline(_join(para))))
    return out


def _join(lines: list[str]) -> str:
    # Two trailing spaces or a backslash make a hard break; other newlines are spaces.
    parts = []
    for k, ln in enumerate(lines):
        last = k == len(lines) - 1
        if not last and (ln.endswith("  ") or ln.endswith("\\")):
            parts.append(ln.rstrip(" \\") + "\n")
        else:
            parts.append(ln.strip() + ("" if last else " "))
    return "".join(parts).strip()


def _math_block(lines: list[str], i: int, out: list[Block]) -> int:
    from .latex import render_latex

    first = lines[i].strip()[2:]
    body: list[str] = []
    if first.rstrip().endswith("$$") and first.strip() != "":
        body.append(first.rstrip()[:-2])
        i += 1
    else:
        body.append(first)
        i += 1
        while i < len(lines):
            ln = lines[i]
            i += 1
            if ln.rstrip().endswith("$$"):
                body.append(ln.rstrip()[:-2])
                break
            body.append(ln)
    out.append(Lines(["  " + ln for ln in render_latex("\n".join(body))]))
    return i


def _split_row(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells = re.split(r"(?<!\\)\|", s)
    return [c.strip().replace("\\|", "|") for c in cells]


def _table(lines: list[str], i: int, out: list[Block]) -> int:
    header = _split_row(lines[i])
    aligns: list[str | None] = []
    for spec in _split_row(lines[i + 1]):
        left, right = spec.startswith(":"), spec.endswith(":")
        aligns.append(
            "center" if left and right else "right" if right else "left" if left else None
        )
    rows = [
        [Cell(parse_inline(t), header=True, align=_at(aligns, k)) for k, t in enumerate(header)]
    ]
    i += 2
    while i < len(lines) and lines[i].strip() and "|" in lines[i]:
        cells = _split_row(lines[i])
        rows.append([Cell(parse_inline(t), align=_at(aligns, k)) for k, t in enumerate(cells)])
        i += 1
    out.append(Table(rows=rows, head_rows=1))
    return i


def _at(items: list[str | None], k: int) -> str | None:
    return items[k] if k < len(items) else None


def _list(lines: list[str], i: int, out: list[Block], depth: int) -> int:
    first = _ITEM.match(lines[i])
    assert first is not None
    ordered = first.group(2)[0].isdigit()
    start = int(first.group(2)[:-1]) if ordered else 1
    lb = ListBlock(ordered=ordered, start=start)
    n = len(lines)
    while i < n:
        m = _ITEM.match(lines[i])
        if not m or m.group(2)[0].isdigit() != ordered:
            break
        base = len(m.group(1))
        # Content starts after the marker and its spaces (1-4 of them).
        gap = len(m.group(3) or " ")
        offset = base + len(m.group(2)) + (gap if gap <= 4 else 1)
        body = [m.group(4) or ""]
        i += 1
        while i < n:
            ln = lines[i]
            if not ln.strip():
                # A blank line ends the item unless indented content follows.
                j = i + 1
                while j < n and not lines[j].strip():
                    j += 1
                if j < n and _indent(lines[j]) >= offset:
                    body.extend([""] * (j - i))
                    i = j
                    continue
                break
            ind = _indent(ln)
            if ind >= offset:
                body.append(ln[offset:])
            elif _ITEM.match(ln) or _starts_block(ln):
                if ind > base and _ITEM.match(ln):
                    body.append(ln[min(ind, offset) :])  # a nested list indented less
                else:
                    break
            else:
                body.append(ln.strip())  # lazy continuation of the paragraph
            i += 1
        lb.items.append(_blocks(body, depth + 1))
        # Blank lines between items do not end the list.
        j = i
        while j < n and not lines[j].strip():
            j += 1
        if j < n and _ITEM.match(lines[j]) and _indent(lines[j]) <= 3:
            i = j
    out.append(lb)
    return i


# -- inline ----------------------------------------------------------------------------

_INLINE = re.compile(
    # A code span opens and closes with whole runs of backticks of one length.
    r"(?P<code>(?<!`)(?P<ticks>`+)(?!`)(?P<codetext>.+?)(?<!`)(?P=ticks)(?!`))"
    r"|(?P<escape>\\(?P<escaped>[!-/:-@\[-`{-~]))"
    r"|(?P<math>\$(?P<mathtext>[^\s$](?:[^$\n]*?[^\s$])?)\$)"
    r"|(?P<autolink><(?P<auto>(?:https?|mailto|ftp):[^<>\s]{1,2048})>)"
    r"|(?P<image>!\[(?P<alt>[^\[\]]*)\]\((?P<src>[^()\s]*)(?:\s+\"[^\"]*\")?\))"
    r"|(?P<link>\[(?P<ltext>(?:[^\[\]]|\[[^\[\]]*\])*)\]"
    r"\((?P<href>[^()\s]*(?:\([^()\s]*\))?[^()\s]*)(?:\s+\"[^\"]*\")?\))"
    r"|(?P<strong>\*\*(?P<s1>[^\s*](?:(?:[^*]|\*(?!\*))*?[^\s])?)\*\*"
    r"|__(?P<s2>[^\s_](?:(?:[^_]|_(?!_))*?[^\s])?)__(?!\w))"
    r"|(?P<strike>~~(?P<st>[^\s~](?:(?:[^~]|~(?!~))*?[^\s])?)~~)"
    r"|(?P<em>\*(?P<e1>[^\s*](?:[^*]*?[^\s*])?)\*|(?<!\w)_(?P<e2>[^\s_](?:[^_]*?[^\s_])?)_(?!\w))"
    # Greedy with no backtracking (trailing punctuation is given back in Python):
    # a run of URLs costs its length once.
    r"|(?P<url>(?<![\w/])https?://[^\s<>()]{1,2048})"
)


def parse_inline(text: str, styles: tuple[str, ...] = (), link: str | None = None) -> list[Span]:
    """Parse the inline Markdown of one paragraph into styled spans."""
    spans: list[Span] = []
    pos = 0
    for m in _INLINE.finditer(text):
        check_time()
        if m.start() > pos:
            spans.append(Span(text[pos : m.start()], styles, link))
        pos = m.end()
        kind = m.lastgroup
        if m.group("code") is not None:
            code = m.group("codetext")
            if code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            spans.append(Span(code, styles + ("code",), link))
        elif m.group("escape") is not None:
            spans.append(Span(m.group("escaped"), styles, link))
        elif m.group("math") is not None:
            from .latex import inline_math

            spans.append(Span(inline_math(m.group("mathtext")), styles + ("italic",), link))
        elif m.group("autolink") is not None:
            url = m.group("auto")
            spans.append(Span(url.removeprefix("mailto:"), styles + ("link",), url))
        elif m.group("image") is not None:
            spans.append(Span(f"[{m.group('alt') or 'image'}]", styles + ("dim",), link))
        elif m.group("link") is not None:
            spans.extend(parse_inline(m.group("ltext"), styles + ("link",), m.group("href")))
        elif m.group("strong") is not None:
            inner = m.group("s1") if m.group("s1") is not None else m.group("s2")
            spans.extend(parse_inline(inner, styles + ("bold",), link))
        elif m.group("strike") is not None:
            spans.extend(parse_inline(m.group("st"), styles + ("strike",), link))
        elif m.group("em") is not None:
            inner = m.group("e1") if m.group("e1") is not None else m.group("e2")
            spans.extend(parse_inline(inner, styles + ("italic",), link))
        elif kind == "url":
            url = m.group("url").rstrip(".,;:!?'\"")
            tail = m.group("url")[len(url) :]
            if url.endswith("://"):
                spans.append(Span(m.group("url"), styles, link))
                continue
            spans.append(Span(url, styles + ("link",), url))
            if tail:
                spans.append(Span(tail, styles, link))
    if pos < len(text):
        spans.append(Span(text[pos:], styles, link))
    return spans
