"""What the terminal can do: colours, hyperlinks, inline images, cell size.

Two ways in. :func:`capabilities_from_env` is pure: it reads environment variables
only (TERM, TERM_PROGRAM, KITTY_WINDOW_ID, WEZTERM_*, COLORTERM, ...).
:func:`detect_terminal` starts from it and then asks the terminal itself, once, at
startup, before the prompt owns the terminal.

Theory of the query
-------------------
All queries are written in one go, primary device attributes (DA1, ``ESC [ c``)
last. Every terminal answers DA1 and terminals answer in order, so once the DA1
reply is in, every other reply that will ever come has come: nothing is left to
leak into the prompt as junk. Queries a terminal does not know are ignored by it
(APC and unknown CSI are swallowed, never drawn). The terminal is put in
non-canonical, no-echo mode for at most ``timeout`` seconds and its settings are
restored in a ``finally``; when DA1 never answers, pending input is flushed on
restore so late replies are dropped rather than typed at the prompt.

Theory of tmux
--------------
tmux answers the queries itself (DA1 with no sixel, unless it draws sixel itself)
and keeps image sequences from the terminal it runs in, unless its
``allow-passthrough`` option is on: then a sequence wrapped in ``ESC P tmux; ...
ESC \\`` (every ESC inside doubled) reaches the outer terminal. So, once, when
``$TMUX`` is set: one ``tmux display-message`` reads the pane's ``allow-passthrough``
(the format honours a pane's own setting, which ``show -g`` would miss) and what
tmux knows of the outer terminal (its TERM, its XTVERSION name, its features, its
cell size in pixels). With passthrough on, the queries also go to the outer
terminal, wrapped: its DA1 reply comes back after tmux's own (it travels further),
so the answer is complete once two DA1 replies are in. Its protocol is then used,
wrapped the same way; otherwise images are drawn in half blocks, which tmux stores
like any text.
"""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

#: Image protocols kconsole can draw with, best first.
IMAGE_PROTOCOLS = ("kitty", "iterm", "sixel")

KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
CELL_SIZE_QUERY = "\x1b[16t"
WINDOW_PIXELS_QUERY = "\x1b[14t"
DA1_QUERY = "\x1b[c"


@dataclass(frozen=True)
class TerminalCapabilities:
    """What the output terminal supports.

    ``image_protocol`` is the best inline image protocol (``"kitty"``, ``"iterm"``,
    ``"sixel"``) or None. ``cell_width``/``cell_height`` are one character cell in
    pixels when known (images are scaled with them). ``colors`` is 0, 16, 256 or
    16777216 (truecolor).

    ``kitty``/``iterm``/``sixel`` say what the terminal kconsole writes to draws
    itself; inside tmux with ``passthrough``, ``image_protocol`` may be the outer
    terminal's, whose sequences are then wrapped for tmux to pass on.
    """

    is_tty: bool = False
    colors: int = 16
    hyperlinks: bool = False
    image_protocol: str | None = None
    sixel: bool = False
    kitty: bool = False
    iterm: bool = False
    cell_width: int | None = None
    cell_height: int | None = None
    #: Sixel colour registers the terminal has (xterm: 256 with -ti vt340).
    sixel_colors: int = 256
    term: str = ""
    #: True when the facts come from asking the terminal, not only from the environment.
    queried: bool = False
    #: "tmux" or "screen" when kconsole runs inside one.
    multiplexer: str | None = None
    #: tmux passes escape sequences on to the outer terminal (``allow-passthrough``).
    passthrough: bool = False


def capabilities_from_env(env: Mapping[str, str], *, is_tty: bool = True) -> TerminalCapabilities:
    """The capabilities the environment variables vouch for (no terminal IO)."""
    term = env.get("TERM", "")
    program = env.get("TERM_PROGRAM", "")
    lc_terminal = env.get("LC_TERMINAL", "")
    colorterm = env.get("COLORTERM", "").lower()
    if env.get("TMUX") or term.startswith("tmux"):
        multiplexer: str | None = "tmux"
    elif env.get("STY") or term.startswith("screen"):
        multiplexer = "screen"
    else:
        multiplexer = None

    if env.get("NO_COLOR") or term == "dumb":
        colors = 0
    elif colorterm in ("truecolor", "24bit") or term.endswith("-direct"):
        colors = 16777216
    elif "256color" in term or program in ("iTerm.app", "WezTerm", "vscode", "Apple_Terminal"):
        colors = 256
    else:
        colors = 16

    kitty = (
        "kitty" in term
        or bool(env.get("KITTY_WINDOW_ID"))
        or program == "ghostty"
        or (bool(env.get("GHOSTTY_RESOURCES_DIR")))
    )
    wezterm = program == "WezTerm" or any(k.startswith("WEZTERM_") for k in env)
    iterm = program == "iTerm.app" or lc_terminal == "iTerm2" or wezterm
    sixel = term.startswith(("foot", "mlterm", "yaft")) or program == "mintty" or ("sixel" in term)
    if kitty or wezterm or iterm:
        colors = max(colors, 16777216 if colorterm or kitty or wezterm else 256)
    if multiplexer == "screen":
        # GNU screen (4.x, what is installed) has no 24-bit colour: it reads the codes
        # as other attributes. COLORTERM came from the terminal outside it.
        colors = min(colors, 256)

    hyperlinks = (
        kitty
        or iterm
        or wezterm
        or bool(env.get("WT_SESSION"))
        or bool(env.get("KONSOLE_VERSION"))
        or program in ("vscode", "Hyper", "ghostty", "contour")
        or term.startswith(("foot", "alacritty", "xterm-kitty", "contour"))
        or _vte_version(env) >= 5000
    )

    if multiplexer:
        # tmux and screen swallow or garble image sequences; tmux's passthrough is
        # seen only by asking tmux (detect_terminal): half blocks until then.
        kitty = iterm = sixel = False
    protocol = "kitty" if kitty else "iterm" if iterm else "sixel" if sixel else None
    return TerminalCapabilities(
        is_tty=is_tty,
        colors=colors,
        hyperlinks=hyperlinks and is_tty,
        image_protocol=protocol if is_tty else None,
        sixel=sixel,
        kitty=kitty,
        iterm=iterm,
        term=term,
        multiplexer=multiplexer,
    )


def _vte_version(env: Mapping[str, str]) -> int:
    try:
        return int(env.get("VTE_VERSION", "0"))
    except ValueError:
        return 0


# -- tmux ------------------------------------------------------------------------------

#: What ``tmux display-message`` is asked (tab-separated): see :func:`tmux_client`.
TMUX_FORMAT = "\t".join(
    (
        "#{version}",
        "#{allow-passthrough}",
        "#{client_termname}",
        "#{client_termtype}",
        "#{client_termfeatures}",
        "#{client_cell_width}",
        "#{client_cell_height}",
    )
)
#: Seconds the tmux command may take (it answers in some 3 ms).
TMUX_TIMEOUT = 1.0


def tmux_wrap(seq: str) -> str:
    """``seq`` wrapped in tmux's passthrough DCS (``ESC P tmux; ... ESC \\``, every
    ESC inside doubled): tmux hands it to the outer terminal unread."""
    return "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"


#: Written just before a passthrough that draws at the cursor. tmux writes a passthrough
#: to the outer terminal at once, but text and cursor moves lazily: the text before it
#: waits in tmux's buffer (and is drawn later, over the image), and the outer cursor is
#: where tmux last drew, not where the pane's cursor is (an image landed rows too high
#: or too low, by how tmux happened to read the output). Erasing one character (ECH)
#: makes tmux draw what it holds, then put the outer cursor on the pane's to erase;
#: the character erased is under the image, and ECH does not move the cursor.
TMUX_CURSOR_SYNC = "\x1b[X"


@dataclass(frozen=True)
class TmuxClient:
    """What tmux says about the pane and the terminal it is shown in."""

    passthrough: bool = False
    #: The outer terminal's TERM, and its name from XTVERSION ("XTerm(379)", "kitty(0.31)").
    termname: str = ""
    termtype: str = ""
    features: frozenset[str] = field(default_factory=frozenset)
    cell_size: tuple[int, int] | None = None


def parse_tmux_client(text: str) -> TmuxClient | None:
    """Parse the answer to :data:`TMUX_FORMAT` (None when there is none)."""
    parts = text.rstrip("\n").split("\t")
    if len(parts) < 7 or not parts[0]:
        return None
    version, allow, termname, termtype, features, cw, ch = parts[:7]
    m = re.match(r"(?:next-)?(\d+)\.(\d+)", version)
    old = m is not None and (int(m.group(1)), int(m.group(2))) < (3, 3)
    # Before 3.3 there was no such option: passthrough always worked. Since, it is a
    # flag ("1"; 3.3) or a choice ("on", "all": also from panes not in view; 3.4+).
    passthrough = allow.strip() in ("1", "on", "all") or (old and not allow.strip())
    cell = (int(cw), int(ch)) if cw.isdigit() and ch.isdigit() and int(cw) and int(ch) else None
    return TmuxClient(
        passthrough=passthrough,
        termname=termname,
        termtype=termtype,
        features=frozenset(f for f in features.split(",") if f),
        cell_size=cell,
    )


_tmux_clients: dict[tuple[str, str], TmuxClient | None] = {}


def tmux_client(env: Mapping[str, str], timeout: float = TMUX_TIMEOUT) -> TmuxClient | None:
    """Ask tmux (once per pane, cached) about passthrough and the outer terminal.

    None outside tmux, or when tmux does not answer within ``timeout`` seconds."""
    key = (env.get("TMUX", ""), env.get("TMUX_PANE", ""))
    if not key[0]:
        return None
    if key in _tmux_clients:
        return _tmux_clients[key]
    argv = ["tmux", "display-message", "-p"]
    if key[1]:
        argv += ["-t", key[1]]  # this pane, not the one in view
    argv.append(TMUX_FORMAT)
    try:
        r = subprocess.run(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        info = parse_tmux_client(r.stdout) if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        info = None
    _tmux_clients[key] = info
    return info


def outer_protocol(client: TmuxClient, replies: QueryReplies | None) -> str | None:
    """The image protocol of the terminal tmux runs in, from what tmux knows of it and
    its own replies to the wrapped queries (``replies``; None when none came)."""
    name, kind = client.termname.lower(), client.termtype.lower()
    if (replies and replies.kitty_ok) or "kitty" in name or "ghostty" in name:
        return "kitty"
    if kind.startswith(("kitty", "ghostty")):
        return "kitty"
    if kind.startswith(("iterm2", "wezterm")):
        return "iterm"
    if replies and replies.da1 and 4 in replies.da1[1:]:
        return "sixel"
    if "sixel" in client.features or name.startswith(("foot", "mlterm", "yaft")):
        return "sixel"
    return None


def merge_tmux(
    caps: TerminalCapabilities, client: TmuxClient | None, outer: QueryReplies | None
) -> TerminalCapabilities:
    """Capabilities inside tmux: the outer terminal's protocol when tmux passes it on
    (and draws none itself), its cell size and colours when tmux knows them."""
    if client is None:
        return caps
    changes: dict[str, object] = {"passthrough": client.passthrough}
    if caps.cell_width is None and client.cell_size:
        changes["cell_width"], changes["cell_height"] = client.cell_size
    # tmux draws a pane's colours in what the outer terminal has (its features say).
    if caps.colors and "RGB" in client.features:
        changes["colors"] = 16777216
    elif caps.colors and "256" in client.features:
        changes["colors"] = max(caps.colors, 256)
    if caps.image_protocol is None and client.passthrough and caps.is_tty:
        changes["image_protocol"] = outer_protocol(client, outer)
    return replace(caps, **changes)  # type: ignore[arg-type]


# -- terminal replies ---------------------------------------------------------------

_DA1_RE = re.compile(r"\x1b\[\?([0-9;]*)c")
_KITTY_RE = re.compile(r"\x1b_Gi=31;([^\x1b]*)\x1b\\")
_CELL_RE = re.compile(r"\x1b\[6;(\d+);(\d+)t")
_WINDOW_RE = re.compile(r"\x1b\[4;(\d+);(\d+)t")


_ANY_REPLY_RE = re.compile(
    "|".join(r.pattern for r in (_DA1_RE, _KITTY_RE, _CELL_RE, _WINDOW_RE))
    + r"|\x1b\[[0-9;]*t"  # a window report of another kind: a reply, never typed
)

#: What the user typed while :func:`detect_terminal` read the terminal (see
#: :func:`take_typed_ahead`).
_typed_ahead: list[str] = []


def typed_keys(data: str, icrnl: bool = True) -> str:
    """The keys in what the terminal sent during the queries: ``data`` without the
    replies. ``icrnl``: the terminal turned Enter (CR) into NL then; it is given back
    as CR, as a raw terminal sends it."""
    keys = _ANY_REPLY_RE.sub("", data)
    return keys.replace("\n", "\r") if icrnl else keys


def take_typed_ahead() -> str:
    """The keys typed before the prompt read the terminal (during the startup query,
    which read them with the replies), once: the prompt reads them first."""
    keys = "".join(_typed_ahead)
    _typed_ahead.clear()
    return keys


@dataclass(frozen=True)
class QueryReplies:
    """What the terminal answered to the startup queries (parsed, pure data)."""

    da1: tuple[int, ...] | None = None
    kitty_ok: bool = False
    cell_size: tuple[int, int] | None = None  # (width, height) in pixels
    window_size: tuple[int, int] | None = None  # (width, height) in pixels


def parse_replies(data: str) -> QueryReplies:
    """Parse the bytes a terminal sent back after the startup queries."""
    da1 = None
    m = _DA1_RE.search(data)
    if m:
        da1 = tuple(int(p) for p in m.group(1).split(";") if p.isdigit())
    k = _KITTY_RE.search(data)
    cell = _CELL_RE.search(data)
    win = _WINDOW_RE.search(data)
    return QueryReplies(
        da1=da1,
        kitty_ok=bool(k and k.group(1) == "OK"),
        cell_size=(int(cell.group(2)), int(cell.group(1))) if cell else None,
        window_size=(int(win.group(2)), int(win.group(1))) if win else None,
    )


def merge_replies(
    caps: TerminalCapabilities,
    replies: QueryReplies,
    columns: int | None = None,
    rows: int | None = None,
    ioctl_pixels: tuple[int, int] | None = None,
) -> TerminalCapabilities:
    """Capabilities updated with what the terminal said about itself."""
    cell_w, cell_h = caps.cell_width, caps.cell_height
    if replies.cell_size and all(replies.cell_size):
        cell_w, cell_h = replies.cell_size
    else:
        pixels = replies.window_size or ioctl_pixels
        if pixels and all(pixels) and columns and rows:
            cell_w, cell_h = pixels[0] // columns, pixels[1] // rows
    if replies.da1 is None:
        # No answer at all: keep what the environment said, sizes aside.
        return replace(caps, cell_width=cell_w, cell_height=cell_h)
    sixel = 4 in replies.da1[1:] or caps.sixel
    kitty = replies.kitty_ok
    # A DA1 reply proves the terminal listened: the kitty answer (or its absence)
    # is now definitive, the environment's guess is not.
    iterm = caps.iterm
    protocol = "kitty" if kitty else "iterm" if iterm else "sixel" if sixel else None
    return replace(
        caps,
        kitty=kitty,
        sixel=sixel,
        image_protocol=protocol,
        cell_width=cell_w,
        cell_height=cell_h,
        queried=True,
    )


def _winsize(fd: int) -> tuple[int, int, int, int] | None:
    try:
        import fcntl
        import termios

        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols, xpix, ypix = struct.unpack("HHHH", packed)
        return rows, cols, xpix, ypix
    except (OSError, ImportError):
        return None


def detect_terminal(
    input_fd: int,
    output_fd: int,
    timeout: float = 0.2,
    env: Mapping[str, str] | None = None,
) -> TerminalCapabilities:
    """Ask the terminal what it supports, within ``timeout`` seconds.

    Call once at startup, before the prompt reads the terminal. When either fd is
    not a terminal (or on Windows) only the environment is used. Never raises for a
    terminal that does not answer; its settings are always restored.
    """
    env = os.environ if env is None else env
    both_tty = os.isatty(input_fd) and os.isatty(output_fd)
    caps = capabilities_from_env(env, is_tty=os.isatty(output_fd))
    # The Linux console has no graphics protocol and may show a query's body as text.
    if not both_tty or env.get("TERM") in ("dumb", "linux"):
        return caps
    try:
        import termios
    except ImportError:  # Windows
        return caps
    size = _winsize(output_fd)
    columns = size[1] if size else None
    rows = size[0] if size else None
    ioctl_pixels = (size[2], size[3]) if size and size[2] and size[3] else None
    tmux = tmux_client(env) if caps.multiplexer == "tmux" else None
    # With passthrough on, the outer terminal is asked too (its replies come last).
    ask_outer = tmux is not None and tmux.passthrough
    query = KITTY_QUERY + CELL_SIZE_QUERY + WINDOW_PIXELS_QUERY + DA1_QUERY
    if ask_outer:
        query = tmux_wrap(KITTY_QUERY + DA1_QUERY) + query
    wanted = 2 if ask_outer else 1

    try:
        old = termios.tcgetattr(input_fd)
    except termios.error:
        return merge_tmux(caps, tmux, None)
    got = ""
    answered = False
    try:
        new = termios.tcgetattr(input_fd)
        new[3] &= ~(termios.ICANON | termios.ECHO)
        new[6][termios.VMIN] = 0
        new[6][termios.VTIME] = 0
        termios.tcsetattr(input_fd, termios.TCSANOW, new)
        os.write(output_fd, query.encode("ascii"))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([input_fd], [], [], left)
            if not ready:
                break
            chunk = os.read(input_fd, 4096)
            if not chunk:
                break
            got += chunk.decode("latin-1")
            if len(_DA1_RE.findall(got)) >= wanted:
                answered = True
                break
    except OSError:
        pass
    finally:
        # TCSAFLUSH drops input still pending: replies that arrive after we gave up
        # would otherwise appear at the prompt as typed junk.
        when = termios.TCSANOW if answered else termios.TCSAFLUSH
        try:
            termios.tcsetattr(input_fd, when, old)
        except termios.error:
            pass
    # Keys typed meanwhile (or before kconsole started) came in with the replies: kept
    # for the prompt, not dropped (typeahead at `kconsole start` runs once it is up).
    _typed_ahead.append(typed_keys(got, icrnl=bool(old[0] & termios.ICRNL)))
    own = parse_replies(got)
    if caps.multiplexer != "tmux":
        return merge_replies(caps, own, columns, rows, ioctl_pixels)
    # tmux never answers the kitty query: an answer is the outer terminal's, as is the
    # DA1 reply after tmux's own.
    first = _DA1_RE.search(got)
    outer = parse_replies(got[first.end() :]) if first and ask_outer else None
    if outer is not None and own.kitty_ok:
        outer = replace(outer, kitty_ok=True)
    caps = merge_replies(caps, replace(own, kitty_ok=False), columns, rows, ioctl_pixels)
    return merge_tmux(caps, tmux, outer)
