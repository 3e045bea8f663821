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

Everything dropped is matched by one regex without backtracking blow-ups and
removed by ``re.sub`` in C: the filter is linear in the length of the text and
fast on floods of controls too; text without any control character (nearly all
output) is returned as is after one check at C speed (:func:`_has_controls`).
"""

from __future__ import annotations

import re

# Characters that need a decision: C0 except \t and \n, DEL, C1.
_CONTROL_ALL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The same, with \b and \r let through (progress bars).
_CONTROL_NO_PROGRESS = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def _dropped(allow_sgr: bool, allow_progress: bool) -> re.Pattern[str]:
    """One regex for everything the filter drops, so that dropping runs in C (a
    Python loop per sequence took 0.7 s per MB of controls: a kernel printing a few
    MB of ESC or U+009B held up Ctrl-C for seconds). The alternatives, tried in order:

    * a CSI after ESC ``[`` or 8-bit CSI: parameters, intermediates, a final byte
      (each optional); with ``allow_sgr`` a 7-bit SGR does not match, so it stays;
    * a string sequence (OSC, DCS, APC, PM, SOS, 7- or 8-bit) with its payload: up
      to and including BEL, CAN, SUB, 8-bit ST or ``ESC \\``, or up to (not
      including) any other ESC, which starts the next sequence, or the end;
    * any other escape sequence: ESC, intermediates, one final byte (``ESC c``);
    * a run of lone controls (never ESC: an ESC that matched nothing above starts
      a kept SGR), but ``\\r`` and ``\\b`` with ``allow_progress``.

    Every alternative's repeats are over disjoint classes followed by a fixed
    choice, so matching is linear (no backtracking blow-up).
    """
    sgr = r"(?![0-9;:]*m)" if allow_sgr else ""
    # Lone controls: C0 but \t, \n (and \b, \r for progress), DEL, C1; never ESC,
    # 8-bit CSI or string introducers, which start the sequences above.
    c1 = r"\x7f-\x8f\x91-\x97\x99\x9a\x9c"
    lone = (
        rf"[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f{c1}]"
        if allow_progress
        else rf"[\x00-\x08\x0b-\x1a\x1c-\x1f{c1}]"
    )
    # re.sub's cost is per match: runs of ESC, of 8-bit CSI and of lone controls
    # are one match each (an ESC or CSI followed by another is dropped alone).
    return re.compile(
        rf"\x1b\[{sgr}[0-?]*[ -/]*[@-~]?"
        r"|\x9b+[0-?]*[ -/]*[@-~]?"
        r"|(?:\x1b[\]P_^X]|[\x9d\x90\x9f\x9e\x98])[^\x07\x18\x1a\x1b\x9c]*"
        r"(?:[\x07\x18\x1a\x9c]|\x1b\\|(?=\x1b)|\Z)"
        r"|\x1b+(?![\[\]P_^X])[ -/]*[0-~]?"
        rf"|{lone}+"
    )


_DROPPED = {(s, p): _dropped(s, p) for s in (False, True) for p in (False, True)}

#: Latin-1 bytes that are no control: printable ASCII, \t and \n (and \b, \r for
#: progress), U+00A0-U+00FF.
_SAFE_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n" + bytes(range(0xA0, 0x100))
_SAFE_BYTES_PROGRESS = _SAFE_BYTES + b"\b\r"
#: Texts from this long are checked as bytes where they can be, in slices of _SCAN_CHUNK.
_SCAN_BYTES_FROM = 512
_SCAN_CHUNK = 64 * 1024


def _has_controls(text: str, allow_progress: bool) -> bool:
    """Whether ``text`` holds a character the filter must look at.

    A regex search of a character class tests each position in turn, some 150 MB/s:
    0.3 s for a 50 MB print. Where a slice of a long text is Latin-1 (ASCII
    included: nearly all output), its Latin-1 bytes (a copy that stays in the cache)
    are searched instead by deleting every byte that is no control with
    ``bytes.translate``, some ten times faster; other slices (CJK, emoji) are
    searched by the regex.
    """
    controls = _CONTROL_NO_PROGRESS if allow_progress else _CONTROL_ALL
    n = len(text)
    if n < _SCAN_BYTES_FROM:
        return controls.search(text) is not None
    safe = _SAFE_BYTES_PROGRESS if allow_progress else _SAFE_BYTES
    for start in range(0, n, _SCAN_CHUNK):
        chunk = text[start : start + _SCAN_CHUNK] if n > _SCAN_CHUNK else text
        try:
            data = chunk.encode("latin-1")
        except UnicodeEncodeError:  # characters past U+00FF: never controls
            if controls.search(chunk) is not None:
                return True
            continue
        if data.translate(None, safe):
            return True
    return False


def terminal_text(text: str, *, allow_sgr: bool = True, allow_progress: bool = True) -> str:
    """``text`` with every terminal control sequence removed except SGR colours
    (``allow_sgr``) and ``\\r``/``\\b`` (``allow_progress``); see the module doc."""
    if not _has_controls(text, allow_progress):
        return text
    if allow_sgr and not _has_controls(_SGR.sub("", text), allow_progress):
        return text  # coloured output (the common case): only SGR, checked in C
    return _DROPPED[allow_sgr, allow_progress].sub("", text)


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
