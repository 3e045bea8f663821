"""Making text from a kernel safe to write to a terminal.

Theory
------
Everything a kernel sends (stream text, text/plain, tracebacks, HTML text nodes, a
link's href, the banner, an input prompt...) is data, never terminal commands. A
terminal obeys escape sequences in what it is given: OSC 52 writes the clipboard,
OSC 0/2 set the title, DCS/APC reach terminal extensions, ``CSI ? 1049 h`` switches
screens. :func:`terminal_text` is the one filter every such text passes through
before kconsole adds escapes of its own. It keeps:

* printable text (any Unicode outside C0/C1 and DEL), ``\\n`` and ``\\t``;
* SGR colour sequences ``ESC [ <digits ; :> m`` when ``allow_sgr`` (stream text and
  tracebacks are coloured);
* ``\\r`` and ``\\b`` when ``allow_progress`` (progress bars redraw their line).

and drops everything else, whole: every other CSI (cursor moves, erase, private
modes), OSC/DCS/APC/PM/SOS strings with their payload up to their terminator (BEL,
``ESC \\``, 8-bit ST) or to the end of the text when unterminated, other escape
sequences (``ESC c`` resets the terminal), lone ESC, C1 controls U+0080-U+009F (the
8-bit CSI U+009B and OSC U+009D included) and other C0 controls.

The invariant that makes it safe whatever the nesting: the result contains no ESC
except at the start of a complete SGR sequence the filter itself matched, and no
C1 control at all, so a terminal reading it can only ever see SGR sequences. An
ESC inside a string sequence ends that string (what terminals do); it is then read
as the start of a new sequence, and dropped unless it is an SGR.

Each step consumes at least one character and every search moves forward, so the
filter is linear in the length of the text; text without any control character
(nearly all output) is returned as is after one C-speed regex search.
"""

from __future__ import annotations

import re

# Characters that need a decision: C0 except \t and \n, DEL, C1.
_CONTROL_ALL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The same, with \b and \r let through (progress bars).
_CONTROL_NO_PROGRESS = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The rest of a CSI after ESC [ (or 8-bit CSI): parameters, intermediates, final.
_CSI_REST = re.compile(r"([0-?]*)([ -/]*)([@-~]?)")
_SGR_PARAMS = re.compile(r"[0-9;:]*")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
# Where a string sequence (OSC, DCS, APC, PM, SOS) ends: BEL, ESC (ST or a new
# sequence), 8-bit ST. CAN and SUB cancel a sequence in terminals too.
_STRING_END = re.compile(r"[\x07\x18\x1a\x1b\x9c]")
# Other escape sequences: ESC, intermediates, one final byte (ESC c, ESC 7, ESC ( B).
_ESC_REST = re.compile(r"[ -/]*[0-~]?")

_STRING_INTRO = frozenset("]P_^X")  # after ESC: OSC, DCS, APC, PM, SOS
_STRING_C1 = frozenset("\x9d\x90\x9f\x9e\x98")  # the same as 8-bit controls
_PROGRESS = frozenset("\r\b")


def terminal_text(text: str, *, allow_sgr: bool = True, allow_progress: bool = True) -> str:
    """``text`` with every terminal control sequence removed except SGR colours
    (``allow_sgr``) and ``\\r``/``\\b`` (``allow_progress``); see the module doc."""
    controls = _CONTROL_NO_PROGRESS if allow_progress else _CONTROL_ALL
    m = controls.search(text)
    if m is None:
        return text
    if allow_sgr and controls.search(_SGR.sub("", text)) is None:
        return text  # coloured output (the common case): only SGR, checked in C
    out: list[str] = []
    n = len(text)
    pos = 0
    while m is not None:
        i = m.start()
        if i > pos:
            out.append(text[pos:i])
        ch = text[i]
        if ch == "\x1b":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "[":
                pos = _csi(text, i + 2, i, out, allow_sgr)
            elif nxt in _STRING_INTRO and nxt:
                pos = _string_end(text, i + 2)
            else:
                e = _ESC_REST.match(text, i + 1)
                pos = e.end() if e else i + 1
        elif ch == "\x9b":
            pos = _csi(text, i + 1, -1, out, False)
        elif ch in _STRING_C1:
            pos = _string_end(text, i + 1)
        elif ch in _PROGRESS and allow_progress:
            out.append(ch)
            pos = i + 1
        else:
            pos = i + 1  # any other C0/C1 control: dropped
        m = controls.search(text, pos)
    out.append(text[pos:])
    return "".join(out)


def _csi(text: str, start: int, esc: int, out: list[str], allow_sgr: bool) -> int:
    """Consume a CSI whose parameters start at ``start``; keep it when it is an SGR
    (``esc`` is where its 7-bit ESC is, -1 for the 8-bit form, never kept)."""
    c = _CSI_REST.match(text, start)
    assert c is not None  # every part is optional
    params, inter, final = c.groups()
    if allow_sgr and esc >= 0 and final == "m" and not inter and _SGR_PARAMS.fullmatch(params):
        out.append(text[esc : c.end()])
    return c.end()


def _string_end(text: str, start: int) -> int:
    """Where the string sequence whose payload starts at ``start`` ends (exclusive):
    after BEL, ST or CAN/SUB; before an ESC that is not ST; the end when unterminated."""
    e = _STRING_END.search(text, start)
    if e is None:
        return len(text)
    j = e.start()
    if text[j] == "\x1b":
        return j + 2 if text[j + 1 : j + 2] == "\\" else j
    return j + 1


def plain_line(text: str) -> str:
    """``text`` for a single line of kconsole's own chrome (a toolbar label, a title):
    no escapes at all, newlines and tabs as spaces."""
    return terminal_text(text, allow_sgr=False, allow_progress=False).translate(_LINE)


_LINE = str.maketrans({"\n": " ", "\t": " "})


def url_text(url: str) -> str:
    """A URL safe to put in an OSC 8 hyperlink: controls dropped, spaces and
    non-ASCII characters percent-encoded (OSC 8 allows bytes 32-126 only)."""
    from urllib.parse import quote

    clean = terminal_text(url, allow_sgr=False, allow_progress=False)
    if clean.isascii() and clean.isprintable() and " " not in clean:
        return clean
    return quote(clean, safe=_URL_SAFE)


# Printable ASCII but the space: what quote() must leave alone ("%" too: a URL that is
# already encoded stays as it is).
_URL_SAFE = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
