"""The ``kconsole`` command: parse options, build a kernel connection, hand off.

Every user error leaves as one line on stderr and a non-zero exit status
(:class:`click.ClickException`), never as a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__, paths
from .connection import LOCALHOST, ConnectionFileError, ConnectionInfo, parse_ports

if TYPE_CHECKING:
    from concurrent.futures import Future

DEFAULT_TIMEOUT = 60.0
#: Where ``attach --ports --curve-public-key`` finds the secret key (never in argv,
#: which every user of the machine can read in the process list).
CURVE_SECRET_ENV = "KCONSOLE_CURVE_SECRET_KEY"


#: Exit statuses (documented in the man page): a cell raised in script mode, or any
#: failure of kconsole's own is 1; usage errors are 2; a kernel that died is 3
#: (kernel_connection.EXIT_KERNEL_DIED).
EXIT_ERROR = 1
EXIT_USAGE = 2


class UserError(click.ClickException):
    """One clear line and exit status 1."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"kconsole: {printable(self.format_message(), keep_newlines=True)}", err=True)


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with terminal control characters (ESC, BEL, CR...) and undecodable
    file-name bytes shown as escapes: file names and file contents reach the user's
    terminal in messages and listings, and must not drive it."""
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a non-UTF-8 byte of a file name
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif not ch.isprintable():
            out.append(repr(ch)[1:-1] if ord(ch) < 0x10000 else "?")
        else:
            out.append(ch)
    return "".join(out)


class UsageProblem(UserError):
    """Options that do not go together: one clear line and exit status 2."""

    exit_code = EXIT_USAGE


# -- shared options ---------------------------------------------------------------------


def _check_save_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # Found out now, not after the whole session's work is done.
    if value is not None:
        try:
            target = Path(value).expanduser()
            folder = target.resolve().parent
            usable = folder.is_dir() and os.access(folder, os.W_OK)
            # The save renames a new file over the path: a device (/dev/null, as root)
            # or a FIFO there would be replaced by a regular file.
            special = target.exists() and not target.is_file()
        except (OSError, ValueError) as e:  # a name too long, a NUL byte
            raise click.BadParameter(f"cannot write a notebook at {value[:100]!r}: {e}") from None
        if special:
            raise click.BadParameter(f"{value[:100]!r} is not a regular file")
        if not usable:
            raise click.BadParameter(f"cannot write a notebook in {folder}")
    return value


def _set_in_config(name: str) -> str:
    """`` (set in config file PATH)`` when option ``name`` of the running command got
    its value from the config file, so an error about that value names the file."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return ""
    path = ctx.find_root().meta.get("kconsole.config_path")
    source = ctx.get_parameter_source(name)
    if path is None or source is not click.core.ParameterSource.DEFAULT_MAP:
        return ""
    return f" (set in config file {path})"


def _check_ip(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # A host name or address: printable, no NUL (which the socket layer rejects with
    # a TypeError), of a length a resolver accepts.
    # Empty is not "all interfaces": the kernel would bind an address nothing connects
    # to (a wait of the whole --timeout, or ipykernel's traceback).
    if value is not None and (not value.strip() or not value.isprintable() or len(value) > 253):
        raise click.BadParameter(f"{value[:60]!r} is not an address or host name")
    return value


def _check_ports(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None:
        try:
            parse_ports(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return value


def _check_env(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """``--env NAME=VALUE`` (repeatable) as a dict; a later NAME wins."""
    env: dict[str, str] = {}
    for item in value:
        name, sep, val = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise click.BadParameter(f"{item[:60]!r} is not NAME=VALUE (NAME: letters, digits, _)")
        if "\0" in val:
            raise click.BadParameter(f"the value of {name} holds a NUL character")
        env[name] = val
    return env


def _check_key(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None and not (value.isascii() and value.isprintable()):
        raise click.BadParameter("the key must be printable ASCII")
    return value


def _check_signature_scheme(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None:
        try:
            ConnectionInfo.from_dict(
                {f"{c}_port": 1 for c in ("shell", "iopub", "stdin", "control", "hb")}
                | {"signature_scheme": value},
                source="--signature-scheme",
            )
        except ConnectionFileError as e:
            raise click.BadParameter(str(e).removeprefix("--signature-scheme: ")) from None
    return value


def _check_timeout(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    # FloatRange lets NaN through (every comparison with it is false): a start would
    # then never give up and an attach would fail converting it to milliseconds.
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds")
    return value


def _check_image_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # Said once, now, rather than as a note on every image the session shows.
    if value:
        path = os.path.expanduser(value)
        if os.path.exists(path) and not os.path.isdir(path):
            raise click.BadParameter(f"{value!r} exists and is not a directory")
        parent = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        if os.path.isdir(parent) and not os.access(parent, os.W_OK | os.X_OK):
            raise click.BadParameter(f"{value!r} cannot be written")
    return value


def _check_ssh(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # Found out now, as one line, not as the tunnel's traceback once the loop runs.
    if value is not None:
        from .remote.ssh import TunnelError, parse_host_spec

        try:
            parse_host_spec(value)
        except TunnelError as e:
            raise click.BadParameter(str(e)) from None
    return value


def _check_server(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # A URL http.client or urllib would reject with a traceback later (a space, a
    # control character, an unclosed IPv6 bracket, a port that is not a number).
    if value is not None:
        from .remote.rest import RemoteError, split_server_url

        shown = repr(value[:80])
        if not value.isprintable() or any(ch.isspace() for ch in value.strip()):
            raise click.BadParameter(f"{shown} is not a URL")
        try:
            base, _ = split_server_url(value)
            _url_port(base)
        except RemoteError as e:
            raise click.BadParameter(str(e)) from None
        except ValueError as e:
            raise click.BadParameter(f"{shown} is not a URL ({e})") from None
    return value


def _url_port(url: str) -> int | None:
    """The URL's port (ValueError when it is not a port number)."""
    import urllib.parse

    return urllib.parse.urlsplit(url).port


def _check_pygments_style(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # The default needs no check (nor pygments' style registry loaded at startup).
    if value and value not in ("default", "kconsole"):
        from pygments.util import ClassNotFound

        from .display.style import get_style, style_names

        try:
            get_style(value)
        except ClassNotFound:
            names = ", ".join(style_names())
            raise click.BadParameter(f"unknown style {value!r} (available: {names})") from None
    return value


def _console_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        callback=_check_timeout,
        help="Seconds to wait for the kernel (or a Jupyter Server) to answer before giving up.",
    )(f)
    f = click.option(
        "--no-other-output",
        is_flag=True,
        help="Do not show output caused by other clients of the same kernel.",
    )(f)
    f = click.option("--no-banner", is_flag=True, help="Do not print the kernel's banner.")(f)
    f = click.option("--vi", is_flag=True, help="Edit input with vi key bindings (default emacs).")(
        f
    )
    f = click.option(
        "--confirm-exit/--no-confirm-exit",
        default=True,
        show_default=True,
        help="Ask before Ctrl-D leaves the console.",
    )(f)
    f = click.option(
        "--style",
        metavar="NAME",
        default="kconsole",
        show_default=True,
        callback=_check_pygments_style,
        help="Pygments style for the input's syntax highlighting (kconsole's own is "
        "readable on dark and light backgrounds).",
    )(f)
    f = click.option("--no-toolbar", is_flag=True, help="Hide the kernel status toolbar.")(f)
    f = click.option(
        "--history-size",
        metavar="N",
        type=click.IntRange(min=1),
        default=paths.DEFAULT_HISTORY_SIZE,
        show_default=True,
        help="Entries of the history file loaded for Up, Ctrl-R and suggestions (the "
        "newest); the file is trimmed to them once it holds twice as many (never with an "
        "N below the default).",
    )(f)
    f = click.option(
        "--save",
        metavar="FILE.ipynb",
        type=click.Path(dir_okay=False),
        callback=_check_save_path,
        help="On exit, save the cells run in this session and their outputs as a notebook.",
    )(f)
    f = click.option("--plain", is_flag=True, help="Show only the text/plain form of rich output.")(
        f
    )
    f = click.option(
        "--mime-order",
        metavar="TYPE,TYPE,...",
        help="MIME types to render, best first (text/plain is always the last resort).",
    )(f)
    f = click.option(
        "--image-protocol",
        type=click.Choice(["auto", "kitty", "iterm", "sixel", "blocks", "none"]),
        default="auto",
        show_default=True,
        help="How to draw images: auto detects a graphics protocol (through tmux too) "
        "and else draws coloured half blocks; blocks always does; none prints a line "
        "naming a saved copy.",
    )(f)
    f = click.option(
        "--image-viewer",
        metavar="CMD",
        help="Open images the terminal has no graphics protocol for with CMD, instead "
        "of drawing them in blocks ({} is the file path).",
    )(f)
    f = click.option(
        "--image-dir",
        metavar="DIR",
        callback=_check_image_dir,
        help="Save images the terminal cannot draw in DIR and keep them "
        "(default: a folder of this session in the temp dir, removed at exit).",
    )(f)
    f = click.option(
        "--code-style",
        default="kconsole",
        callback=_check_pygments_style,
        show_default=True,
        help="Pygments style for highlighted JSON and source code.",
    )(f)
    return f


def _server_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--insecure",
        is_flag=True,
        help="With --server: do not verify the server's TLS certificate (self-signed).",
    )(f)
    f = click.option(
        "--token",
        metavar="TOKEN",
        help="With --server: the server's token (for a JupyterHub user's server, a hub API "
        "token with access to it; else $JUPYTER_TOKEN, else asked for).",
    )(f)
    f = click.option(
        "--server",
        metavar="URL",
        callback=_check_server,
        help="A Jupyter Server (or a JupyterHub user's server, http://HUB/user/NAME/, or "
        "Enterprise or Kernel Gateway) to run the kernel on, e.g. http://localhost:8888/.",
    )(f)
    return f


def _token(server: str, token: str | None) -> str:
    """Resolve the token before the event loop starts (it may prompt, never echoing)."""
    from .remote.rest import RemoteError, resolve_token

    try:
        tok = resolve_token(server, token)
    except RemoteError as e:
        raise UserError(str(e)) from None
    # It travels in an HTTP header: a newline or a non-ASCII character there is an
    # http.client traceback, not a request.
    if not (tok.isascii() and tok.isprintable()) or any(ch.isspace() for ch in tok):
        raise UserError("the server's token must be printable ASCII without spaces")
    return tok


def _run_on_server(
    open_kernel: Callable[..., Awaitable[Any]],
    server: str,
    token: str | None,
    insecure: bool,
    opts: dict[str, Any],
    **kwargs: Any,
) -> None:
    """Run a console on a Jupyter Server kernel opened by ``open_kernel`` (start or
    attach); the server's transport events reach the user as one line each."""
    _run_with_token(open_kernel, server, _token(server, token), insecure, opts, **kwargs)


def _run_with_token(
    open_kernel: Callable[..., Awaitable[Any]],
    server: str,
    tok: str,
    insecure: bool,
    opts: dict[str, Any],
    **kwargs: Any,
) -> None:
    """:func:`_run_on_server` with the token already resolved."""

    async def make(notify: Callable[[str], None]) -> Any:
        return await open_kernel(
            server,
            tok,
            insecure=insecure,
            timeout=opts["timeout"],
            on_event=lambda ev: notify(ev.message),
            **kwargs,
        )

    _run(lambda: _session(make, opts))


def _display_config(opts: dict[str, Any]) -> Any:
    from .display import DisplayConfig

    order = opts.get("mime_order")
    return DisplayConfig(
        plain=bool(opts.get("plain")),
        mime_order=[t.strip() for t in order.split(",") if t.strip()] if order else None,
        image_protocol=opts.get("image_protocol") or "auto",
        image_viewer=opts.get("image_viewer") or None,
        image_dir=opts.get("image_dir") or None,
        code_style=opts.get("code_style") or "kconsole",
    )


# -- running ----------------------------------------------------------------------------


def _import_asyncio_without_ssl() -> None:
    """Import asyncio for a console that never speaks TLS (a kernel over zmq, tunnelled
    or not), without the ``import ssl`` asyncio makes eagerly: that loads OpenSSL,
    ~4.5 MB resident and a few ms, for nothing.

    asyncio supports interpreters built without ssl: while it is imported, ``import
    ssl`` is made to fail (a None entry in sys.modules), then the entry is removed, so
    later imports of ssl work. asyncio's own TLS stays off in this process: the
    --server paths (HTTPS, WSS) never call this.
    """
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]


def _detect_terminal_in_background(opts: dict[str, Any]) -> Future[Any] | None:
    """Ask the terminal what it can show (images, cell size), in a thread: the wait for
    its answers (up to 0.2 s when it gives none) overlaps the console's own start-up.
    None when there is no terminal to ask (script mode, --plain)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or opts.get("plain"):
        return None
    import threading
    from concurrent.futures import Future, InvalidStateError

    from .display import detect_terminal

    future: Future[Any] = Future()

    def detect() -> None:
        caps: Any = None
        error: BaseException | None = None
        try:
            caps = detect_terminal(sys.stdin.fileno(), sys.stdout.fileno(), 0.2)
        except BaseException as e:
            error = e
        # Ctrl-C during the detection cancels the console's wait for it: nobody wants
        # the answer then (setting it would be the thread's traceback on the terminal).
        with contextlib.suppress(InvalidStateError):
            if error is None:
                future.set_result(caps)
            else:
                future.set_exception(error)

    # Before prompt_toolkit owns the terminal: the queries' answers must not be read as
    # keystrokes; nothing else reads the terminal meanwhile. The kernel's stdio is not
    # the terminal (see launcher). Not a daemon: an early exit waits (0.2 s at most)
    # for it to restore the terminal's settings.
    threading.Thread(target=detect, name="kconsole-terminal").start()
    return future


#: Signals that arrived while :func:`_signals_deferred` held them.
_deferred_signals: list[int] = []
_deferring = False


def _leave_on_signal(signum: int, frame: object) -> None:
    if _deferring:
        _deferred_signals.append(signum)
        return
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGHUP while the kernel is spawned: a SystemExit inside Popen
    would leave a started kernel that the orphan guard does not know of yet."""
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _deferred_signals:
        raise SystemExit(128 + _deferred_signals[0])


def _exit_on_signals_until_the_loop_runs() -> None:
    """SIGTERM and SIGHUP raise SystemExit(128 + signal) until :func:`_run`'s loop takes
    them over; a signal the user had ignored (``nohup``) stays ignored."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            if signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, _leave_on_signal)


def _run(coro_fn: Callable[[], Awaitable[int]]) -> None:
    """Run the console's event loop; SIGTERM/SIGHUP leave cleanly (kernel shut down)."""

    import asyncio  # not at the top: `start` spawns its kernel before loading it

    async def main() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        terminated: list[int] = []

        def terminate(sig: int) -> None:
            terminated.append(sig)
            task.cancel()

        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, terminate, sig)
        try:
            return await coro_fn()
        except asyncio.CancelledError:
            if not terminated:
                raise  # asyncio.run's own Ctrl-C: it raises KeyboardInterrupt (130)
            return 128 + terminated[0]  # as a shell reports the signal: 143, 129

    from .kernel_connection import ConsoleError

    try:
        status = asyncio.run(main())
    except ConsoleError as e:
        raise UserError(str(e)) from None
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


async def _session(
    make_conn: Callable[[Callable[[str], None]], Awaitable[Any]], opts: dict[str, Any]
) -> int:
    """Connect, then run the REPL (stdin a terminal) or script mode; always clean up."""
    import asyncio

    interactive = sys.stdin.isatty()
    # Events of the transport (a WebSocket reconnecting) reach the user as one line: on
    # stderr until the console exists, then through it (above the prompt).
    sink: list[Callable[[str], None]] = [lambda text: click.echo(f"kconsole: {text}", err=True)]
    # Start the connection first: one loop iteration runs it up to its first wait, so
    # the terminal queries and the imports below overlap the kernel's own start-up
    # instead of preceding it. Nothing here reads messages meanwhile; zmq queues them.
    connecting = asyncio.ensure_future(make_conn(lambda text: sink[0](text)))
    await asyncio.sleep(0)
    detecting = opts.pop("_detecting", None) or _detect_terminal_in_background(opts)
    try:
        from .output import OutputPrinter

        config = _display_config(opts)
        if interactive:
            from .repl import Repl
        else:
            from .script import ScriptRunner
        caps = await asyncio.wrap_future(detecting) if detecting is not None else None
    except BaseException:
        if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
            # Already connected (a start returns before its kernel is ready): close it,
            # or the kernel it started outlives this SIGTERM or failed import.
            await asyncio.shield(connecting.result().close())
        else:
            connecting.cancel()
            # Let it clean up (a kernel a server is starting for it is deleted once
            # there) before the loop ends, which would cancel that too.
            await asyncio.wait({connecting})
        raise
    conn = await connecting
    keep: bool | None = None
    recorder = None
    if opts.get("save"):
        from .notebook import NotebookRecorder

        recorder = NotebookRecorder(opts["save"])
    try:
        if not interactive:
            await conn.wait_ready()  # the REPL waits itself, with its prompt already up
        printer = OutputPrinter(
            sys.stdout, color=sys.stdout.isatty(), config=config, capabilities=caps
        )
        if interactive:
            repl = Repl(
                conn,
                printer,
                show_other_output=not opts["no_other_output"],
                banner=not opts["no_banner"],
                recorder=recorder,
                vi_mode=bool(opts.get("vi")),
                confirm_exit=bool(opts.get("confirm_exit", True)),
                style=opts.get("style"),
                toolbar=not opts.get("no_toolbar"),
                history_size=opts.get("history_size") or paths.DEFAULT_HISTORY_SIZE,
            )
            sink[0] = repl.note
            status = await repl.run()
            if repl.keep_kernel_on_exit:
                keep = _can_keep(conn)
        else:
            status = await ScriptRunner(conn, printer, recorder=recorder).run()
        return status
    finally:
        # Shielded: a second Ctrl-C or SIGTERM must not leave the kernel orphaned.
        await asyncio.shield(conn.close(keep_kernel=keep if keep else None))
        if conn.shutdown_error:
            click.echo(
                f"kconsole: could not shut the kernel down ({conn.shutdown_error}); "
                "it may still be running on the server",
                err=True,
            )
        if interactive and opts.get("started_here"):
            _say_where_kernel_stays(conn, kept=bool(keep))


def _say_where_kernel_stays(conn: Any, kept: bool) -> None:
    """After a kernel kconsole started is left running, say how to get back to it."""
    hint = conn.control.left_running_hint(kept=kept)
    if hint is not None:
        click.echo(f"kconsole: {hint}", err=True)


def _can_keep(conn: Any) -> bool:
    """Whether `exit(keep_kernel=True)` can be honoured for this kernel (if not, why)."""
    refusal = conn.control.keep_refusal
    if refusal is not None:
        click.echo(f"kconsole: {refusal}", err=True)
    return refusal is None


def _require_stdio() -> None:
    """A console reads stdin and writes stdout: either closed (``<&-``, ``>&-``) is one
    line here, before a kernel is started, not an AttributeError later."""
    for name, stream in (("input", sys.stdin), ("output", sys.stdout)):
        if stream is None:
            raise UserError(f"standard {name} is closed: give kconsole a terminal, file or pipe")


# -- commands ---------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kconsole")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """A terminal console for Jupyter kernels.

    Start a kernel and work in it (`kconsole start`), attach to one that is
    already running (`kconsole attach`), or list what there is (`kconsole kernels`).
    When stdin is not a terminal, the code read from it is run cell by cell, a Python
    script as python3 runs it (it stops at the first exception: exit status 1).

    Defaults for every option of start and attach can be set in
    ~/.config/kconsole/config.toml (or the file $KCONSOLE_CONFIG names).
    """
    from . import lazy_imports
    from .config import ConfigError, config_path, defaults_for, read_config

    # Before any command loads kconsole.display or prompt_toolkit.
    lazy_imports.defer_unused()
    path = config_path()
    try:
        data = read_config(path)
        if data:
            params = {
                name: {p.name: p for p in cmd.params if p.name}
                for name, cmd in (("start", start), ("attach", attach))
            }
            ctx.default_map = defaults_for(data, params, path)
            ctx.meta["kconsole.config_path"] = path
    except ConfigError as e:
        if ctx.invoked_subcommand not in ("start", "attach"):
            raise UserError(str(e)) from None
        # Raised by the command itself (see _config_error), so that its --help still
        # shows: the help is how a user finds out what the file may say.
        ctx.meta["kconsole.config_error"] = UserError(str(e))


def _config_error() -> None:
    """Raise the config file's error, if it had one (start and attach call this first)."""
    ctx = click.get_current_context(silent=True)
    error = ctx.find_root().meta.get("kconsole.config_error") if ctx is not None else None
    if error is not None:
        raise error


@cli.command()
@click.option(
    "--kernel",
    "-k",
    "kernel_name",
    metavar="NAME",
    help="Kernelspec to start (see `kconsole kernels`); `builtin` is kconsole's own "
    "Python kernel. Default: python3 if installed, else builtin.",
)
@click.option("--keep-kernel", is_flag=True, help="Leave the kernel running on exit.")
@click.option(
    "--ip",
    default=LOCALHOST,
    show_default=True,
    callback=_check_ip,
    help="Address the kernel listens on.",
)
@click.option(
    "--transport",
    type=click.Choice(["tcp", "ipc"]),
    default="tcp",
    show_default=True,
    help="zmq transport between console and kernel.",
)
@click.option(
    "--encrypt",
    type=click.Choice(["auto", "required", "off"]),
    default="auto",
    show_default=True,
    help="CurveZMQ encryption of the kernel's sockets (keys in its 0600 connection "
    "file): auto when the kernelspec declares support, required or fail, or off.",
)
@click.option(
    "--env",
    "env",
    metavar="NAME=VALUE",
    multiple=True,
    callback=_check_env,
    help="Set a variable in the kernel's environment (repeatable). With --server it "
    "travels in the start request, beside $KERNEL_* and KERNEL_USERNAME: Enterprise and "
    "Kernel Gateway pass on KERNEL_* names and those they allow (EG's client_envs, KG's "
    "env_whitelist), Jupyter Server none.",
)
@_server_options
@_console_options
def start(
    kernel_name: str | None,
    keep_kernel: bool,
    ip: str,
    transport: str,
    encrypt: str,
    env: dict[str, str],
    server: str | None,
    token: str | None,
    insecure: bool,
    **opts: Any,
) -> None:
    """Start a kernel and attach to it; shut it down on exit unless --keep-kernel.

    With --server, the kernel is created on that Jupyter Server (--kernel names one of
    its kernelspecs) and deleted on exit unless --keep-kernel.
    """
    _config_error()
    _require_stdio()
    opts["started_here"] = True
    from .kernelspec import KernelSpecError, resolve_kernel

    if server is not None:
        from .remote.connect import start_server_kernel

        if encrypt == "required":  # the server starts the kernel, with its own policy
            raise UsageProblem(
                f"--encrypt required cannot be combined with --server{_set_in_config('encrypt')}"
            )

        _run_on_server(
            start_server_kernel,
            server,
            token,
            insecure,
            opts,
            kernel_name=kernel_name,
            keep_kernel=keep_kernel,
            env=env,
        )
        return

    try:
        spec = resolve_kernel(kernel_name)
    except KernelSpecError as e:  # none of that name, or its kernel.json is unusable
        raise UserError(f"{e}{_set_in_config('kernel_name')}") from None
    if kernel_name is None and spec.name == "builtin" and sys.stdin.isatty():
        click.echo(
            "kconsole: no python3 kernelspec found; starting kconsole's built-in kernel", err=True
        )

    from .launcher import KernelStartError, spawn

    # Until the event loop installs its own handlers, a SIGTERM/SIGHUP must still end
    # kconsole through Python's exit (its atexit guard stops the kernel spawned below and
    # removes its files), not by the signal's default action, which leaves both behind.
    _exit_on_signals_until_the_loop_runs()
    # Spawned now, before asyncio and the console's modules load: the kernel's start-up
    # (the longest part of `start`) overlaps ours.
    try:
        with _signals_deferred():
            process = spawn(
                spec,
                ip=ip,
                transport=transport,
                outlive_console=keep_kernel,
                encrypt=encrypt,
                extra_env=env,
            )
    except KernelStartError as e:
        where = "encrypt" if str(e).startswith("--encrypt") else "ip"
        raise UserError(f"{e}{_set_in_config(where)}") from None
    opts["_detecting"] = _detect_terminal_in_background(opts)
    _import_asyncio_without_ssl()
    from .kernel_connection import start_local

    async def make(notify: Callable[[str], None]) -> Any:
        # Returns before the kernel is ready: the REPL shows its prompt meanwhile.
        return await start_local(
            spec,
            ip=ip,
            transport=transport,
            timeout=opts["timeout"],
            keep_kernel=keep_kernel,
            process=process,
            wait=False,
        )

    _run(lambda: _session(make, opts))


@cli.command()
@click.option(
    "--existing",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[FILE-OR-ID]",
    help="A connection file: a path, a name or kernel id in Jupyter's runtime dir, or "
    "(with no value) the newest one there whose kernel answers.",
)
@click.option(
    "--ports",
    metavar="SHELL,IOPUB,STDIN,CONTROL,HB",
    callback=_check_ports,
    help="The kernel's five ports.",
)
@click.option(
    "--ip",
    default=LOCALHOST,
    show_default=True,
    callback=_check_ip,
    help="The kernel's address (with --ports).",
)
@click.option(
    "--key", default="", callback=_check_key, help="The kernel's signing key (with --ports)."
)
@click.option(
    "--signature-scheme",
    default="hmac-sha256",
    show_default=True,
    callback=_check_signature_scheme,
    help="HMAC scheme of the key (with --ports).",
)
@click.option(
    "--transport",
    type=click.Choice(["tcp", "ipc"]),
    default="tcp",
    show_default=True,
    help="zmq transport (with --ports).",
)
@click.option(
    "--curve-public-key",
    metavar="Z85",
    help="With --ports: the kernel's CurveZMQ public key (its curve_publickey); the "
    f"secret key is read from ${CURVE_SECRET_ENV} or --curve-secret-key-file, never "
    "from the command line. This key and --key are visible in the process list and "
    "enough to use the kernel: on a shared machine prefer --existing.",
)
@click.option(
    "--curve-secret-key-file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="With --ports: a file holding the kernel's curve_secretkey.",
)
@click.option(
    "--kernel-id", metavar="ID", help="With --server: the id (or a unique prefix) of its kernel."
)
@click.option(
    "--notebook",
    metavar="PATH",
    help="With --server: attach to the kernel of this notebook (its path relative to the "
    "server's root, as JupyterLab shows it); when none runs, start one for it, asking "
    "first in a terminal.",
)
@click.option(
    "--start-if-missing",
    is_flag=True,
    help="With --notebook: start a kernel for the notebook without asking when none runs "
    "(script mode never asks: without this flag it fails).",
)
@click.option(
    "--ssh",
    metavar="[USER@]HOST[:PORT]",
    callback=_check_ssh,
    help="Reach the kernel's ports through an SSH tunnel to HOST (the connection file "
    "describes the kernel as seen from HOST).",
)
@click.option(
    "--ssh-key", metavar="FILE", type=click.Path(dir_okay=False), help="SSH identity file."
)
@_server_options
@_console_options
def attach(
    existing: str | None,
    ports: str | None,
    ip: str,
    key: str,
    signature_scheme: str,
    transport: str,
    curve_public_key: str | None,
    curve_secret_key_file: str | None,
    kernel_id: str | None,
    notebook: str | None,
    start_if_missing: bool,
    ssh: str | None,
    ssh_key: str | None,
    server: str | None,
    token: str | None,
    insecure: bool,
    **opts: Any,
) -> None:
    """Attach to a running kernel: by connection file, by ports, or on a Jupyter Server
    (by kernel id, or the kernel of a notebook). Never shuts it down."""
    _config_error()
    _require_stdio()
    from .connection import find_connection_file
    from .protocol import UnknownSignatureScheme

    if notebook is not None:
        if server is None:
            raise UsageProblem(f"--notebook goes with --server{_set_in_config('notebook')}")
        if kernel_id is not None:
            raise UsageProblem("--notebook and --kernel-id cannot be combined")
        if existing is not None or ports is not None or ssh is not None:
            raise UsageProblem("--server cannot be combined with --existing, --ports or --ssh")
        _attach_notebook(server, token, insecure, notebook, start_if_missing, opts)
        return
    if start_if_missing and not _set_in_config("start_if_missing"):
        # (From the config file it is a default for the attaches that take it.)
        raise UsageProblem("--start-if-missing goes with --notebook")
    if server is not None or kernel_id is not None:
        if server is None or kernel_id is None:
            raise UsageProblem("--server and --kernel-id go together")
        if existing is not None or ports is not None or ssh is not None:
            raise UsageProblem("--server cannot be combined with --existing, --ports or --ssh")
        from .remote.connect import attach_server_kernel

        _run_on_server(attach_server_kernel, server, token, insecure, opts, kernel_id=kernel_id)
        return
    if (existing is None) == (ports is None):
        raise UsageProblem("give either --existing [FILE-OR-ID] or --ports with --key")
    if ssh_key is not None and ssh is None:
        raise UsageProblem("--ssh-key goes with --ssh")
    if ports is None and (curve_public_key is not None or curve_secret_key_file is not None):
        raise UsageProblem(
            "--curve-public-key and --curve-secret-key-file go with --ports "
            "(a connection file carries its own keys)"
        )
    path: Path | None = None
    try:
        if existing is not None:
            if existing == "" and ssh is None:
                path = _newest_live_connection_file()
            else:  # through --ssh the files describe kernels as seen from the far host
                path = find_connection_file(existing or None)
            source = f"connection file {path}"
            info = ConnectionInfo.from_file(path)
        else:
            assert ports is not None
            try:
                fields: dict[str, Any] = dict(parse_ports(ports))
            except ValueError as e:
                raise UsageProblem(f"bad --ports: {e}") from None
            fields.update(ip=ip, key=key, transport=transport, signature_scheme=signature_scheme)
            fields.update(_curve_keys(curve_public_key, curve_secret_key_file))
            source = "--ports"
            info = ConnectionInfo.from_dict(fields, source=source)
        info.session()  # validates the signature scheme before anything connects
    except ConnectionFileError as e:
        raise UserError(f"{e}{_set_in_config('existing')}") from None
    except UnknownSignatureScheme as e:
        raise UserError(f"{source}: {e}") from None

    _import_asyncio_without_ssl()  # zmq, tunnelled or not: no TLS
    from .kernel_connection import attach_zmq

    if ssh is not None:
        from .remote.connect import attach_ssh

        host = ssh

        async def make_ssh(notify: Callable[[str], None]) -> Any:
            return await attach_ssh(
                info, host, key=ssh_key, timeout=opts["timeout"], connection_file=path
            )

        _run(lambda: _session(make_ssh, opts))
        return

    async def make(notify: Callable[[str], None]) -> Any:
        return await attach_zmq(info, opts["timeout"], path)

    _run(lambda: _session(make, opts))


def _attach_notebook(
    server: str,
    token: str | None,
    insecure: bool,
    notebook: str,
    start_if_missing: bool,
    opts: dict[str, Any],
) -> None:
    """``attach --server URL --notebook PATH``: find the notebook's kernel, or start one
    for it (asking first in a terminal; in script mode only with --start-if-missing),
    then run the console on it as on any kernel attached to on a server."""
    import asyncio

    from .remote.connect import attach_notebook_kernel
    from .remote.rest import RemoteError, ServerClient, split_server_url
    from .remote.sessions import (
        find_notebook_session,
        kernelspec_for_notebook,
        normalise_notebook_path,
        server_root_dir,
        start_notebook_session,
    )

    try:  # before the token is asked for: a path that cannot be right is said first
        base, _ = split_server_url(server)
        root = server_root_dir(base) if os.path.isabs(os.path.expanduser(notebook)) else None
        path = normalise_notebook_path(notebook, root)
    except RemoteError as e:
        raise UsageProblem(printable(str(e))) from None
    tok = _token(server, token)
    client = ServerClient(server, tok, insecure=insecure, timeout=opts["timeout"])
    shown = printable(path)

    def call(coro: Any) -> Any:
        # Before the console's loop: no prompt is up yet, and a Ctrl-C leaves (130).
        try:
            return asyncio.run(coro)
        except RemoteError as e:
            raise UserError(str(e)) from None
        except KeyboardInterrupt:
            click.echo("", err=True)
            sys.exit(130)

    session = call(find_notebook_session(client, path))
    if session is None:
        spec = call(kernelspec_for_notebook(client, path))
        what = printable(spec) if spec else "the server's default"
        if not start_if_missing:
            if not sys.stdin.isatty():
                raise UserError(
                    f"no kernel runs for {shown} on the server; --start-if-missing starts "
                    f"one ({what})"
                )
            if not _ask_start(f"No kernel runs for {shown} on the server; start one ({what})?"):
                raise UserError(f"no kernel started for {shown}")
        session = call(start_notebook_session(client, path, spec))
        assert session.kernel is not None  # start_notebook_session checked
        if sys.stdin.isatty():
            click.echo(
                f"kconsole: started a {printable(session.kernel.name) or 'new'} kernel for "
                f"{shown}; it stays running after the console exits, as the notebook's kernel",
                err=True,
            )
    assert session.kernel is not None  # only sessions with a kernel are picked
    kernel_id = session.kernel.id
    _run_with_token(
        attach_notebook_kernel, server, tok, insecure, opts, notebook=path, kernel_id=kernel_id
    )


def _ask_start(question: str) -> bool:
    """A [Y/n] question on the terminal, before the console owns it (Enter: yes)."""
    while True:
        # The question on stderr, as kconsole's other notes: stdout is the session's.
        click.echo(f"{question} [Y/n] ", err=True, nl=False)
        try:
            answer = input().strip().lower()
        except EOFError:
            click.echo("", err=True)
            return False
        except KeyboardInterrupt:
            click.echo("", err=True)
            sys.exit(130)
        if answer in ("", "y", "yes"):
            return True
        if answer in ("n", "no"):
            return False


def _curve_keys(public: str | None, secret_file: str | None) -> dict[str, str]:
    """The connection fields of ``--curve-public-key`` and its secret (from
    ``--curve-secret-key-file`` or $KCONSOLE_CURVE_SECRET_KEY); {} without them."""
    from .connection import check_curve_key

    if public is None:
        if secret_file is not None:
            raise UsageProblem("--curve-secret-key-file goes with --curve-public-key")
        return {}
    if secret_file is not None:
        from . import paths

        try:
            secret = paths.decode_text(paths.read_small_file(Path(secret_file).expanduser()))
        except FileNotFoundError:
            raise UserError(f"--curve-secret-key-file: {secret_file} not found") from None
        except paths.Unreadable as e:
            raise UserError(
                f"--curve-secret-key-file: cannot read {secret_file}: {e.reason}"
            ) from None
        except paths.FileProblem as e:
            raise UserError(f"--curve-secret-key-file: {secret_file} {e}") from None
        secret, where = secret.strip(), f"--curve-secret-key-file {secret_file}"
        _warn_if_others_can_read(Path(secret_file).expanduser())
    else:
        secret, where = os.environ.get(CURVE_SECRET_ENV, "").strip(), f"${CURVE_SECRET_ENV}"
        if not secret:
            raise UsageProblem(
                f"--curve-public-key needs the secret key too: set ${CURVE_SECRET_ENV} "
                "or give --curve-secret-key-file"
            )
    if public.strip() == secret:
        # Said before anything connects: the secret is now in the process list and the
        # shell's history, and the user must know that more than why attaching failed.
        raise UserError(
            f"--curve-public-key is the secret key (the same as {where}): give the "
            "kernel's curve_publickey; the secret is now visible in the process list and "
            "your shell history, so treat it as exposed"
        )
    try:
        return {
            "curve_publickey": check_curve_key(public, "--curve-public-key"),
            "curve_secretkey": check_curve_key(secret, where),
        }
    except ConnectionFileError as e:
        raise UserError(str(e)) from None


def _warn_if_others_can_read(path: Path) -> None:
    """One warning line when a secret key file is readable by group or others (ssh
    refuses such private keys; kconsole's own connection files are 0600)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if os.name == "posix" and mode & 0o044:
        click.echo(
            f"kconsole: warning: {path} is readable by other users (mode "
            f"{mode & 0o777:o}): they can read the curve secret key; chmod 600 it",
            err=True,
        )


def _newest_live_connection_file() -> Path:
    """`--existing` with no value: the newest connection file whose kernel answers (a
    console killed with -9 leaves a newer, stale one); one line if any were skipped."""
    from .connection import find_live_connection_file

    choice = find_live_connection_file()
    if choice.answered and choice.skipped:
        n = len(choice.skipped)
        click.echo(
            f"kconsole: skipped {n} newer connection file{'s' if n > 1 else ''} whose kernel "
            f"does not answer; attaching to {choice.path.name}",
            err=True,
        )
    return choice.path


@cli.command()
@_server_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    callback=_check_timeout,
    help="With --server: seconds each call to the server may take.",
)
def kernels(server: str | None, token: str | None, insecure: bool, timeout: float) -> None:
    """List installed kernelspecs and the kernels running in Jupyter's runtime dir
    (with --server: the server's kernelspecs and running kernels, with the notebook
    each one runs for)."""
    import time

    from .connection import PROBE_AT_ONCE, list_connection_files, probe_heartbeats

    if server is not None:
        _server_kernels(server, _token(server, token), insecure, timeout)
        return
    from .kernelspec import all_kernel_specs, format_kernelspec_table

    specs, errors = all_kernel_specs()
    click.echo("Available kernels:")
    click.echo(printable(format_kernelspec_table(specs), keep_newlines=True))
    for err in errors:
        click.echo(f"  [skipped] {printable(str(err))}")
    files = list_connection_files()
    click.echo("\nRunning kernels (connection files in the runtime dir):")
    if not files:
        click.echo("  (none)")
    infos: list[ConnectionInfo | None] = []
    for f in files:
        try:
            infos.append(ConnectionInfo.from_file(f))
        except ConnectionFileError:
            infos.append(None)
    # All at once: ten stale files must not take ten probe timeouts.
    alive = probe_heartbeats(infos, time.monotonic() + 1.0)
    from .connection import curve_available

    for n, (f, info, ok) in enumerate(zip(files, infos, alive, strict=True)):
        if info is None:
            click.echo(f"  {printable(str(f))}  [unreadable]")
            continue
        name = info.kernel_name or "?"
        state = "alive" if ok else "not answering" if n < PROBE_AT_ONCE else "not probed"
        if info.encrypted:  # CurveZMQ keys in the file (plain ones are unmarked)
            state += ", encrypted"
            if not curve_available():  # it could not be asked: silence says nothing
                state = "encrypted, not probed: this pyzmq has no CurveZMQ"
        click.echo(printable(f"  {f.name}  {name}  {info.ip}  [{state}]"))


def _server_kernels(url: str, token: str, insecure: bool, timeout: float) -> None:
    from .remote.rest import KernelListRefused, RemoteError, ServerClient, format_kernels
    from .remote.sessions import format_kernels_and_sessions

    client = ServerClient(url, token, insecure, timeout=timeout)

    async def fetch() -> tuple[Any, Any, Any]:
        specs = await client.list_kernelspecs()
        try:
            running = await client.list_kernels()
        except KernelListRefused as e:  # a gateway: kernels are not listed
            return specs, f"({e})", None
        try:
            sessions = await client.list_sessions()
        except RemoteError:
            sessions = None  # a gateway without the sessions API: kernels only
        return specs, running, sessions

    import asyncio

    try:
        specs, running, sessions = asyncio.run(fetch())
    except RemoteError as e:
        raise UserError(str(e)) from None
    # The base URL: what the user typed may carry ?token=.
    click.echo(f"Kernelspecs on {printable(client.base_url)}:")
    # What a server names things must not drive the terminal (printable escapes them).
    rows = [("NAME", "LANGUAGE", "DISPLAY NAME")] + [
        (
            printable(s.name + (" (default)" if s.name == specs.default else "")),
            printable(s.language or "-"),
            printable(s.display_name),
        )
        for s in specs.specs
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for r in rows:
        click.echo(f"  {r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}")
    click.echo("\nRunning kernels:")
    if isinstance(running, str):
        table = running
    else:
        # Each cell escaped on its own: a newline in a name or a notebook's path (a
        # valid file name) must not start a row of its own.
        import dataclasses

        running = [_printable_fields(k) for k in running]
        if sessions is None:
            table = format_kernels(running)
        else:
            sessions = [
                dataclasses.replace(
                    _printable_fields(s),
                    kernel=_printable_fields(s.kernel) if s.kernel is not None else None,
                )
                for s in sessions
            ]
            table = format_kernels_and_sessions(running, sessions)
    click.echo(printable(table, keep_newlines=True))


def _printable_fields(model: Any) -> Any:
    """A copy of a server's dataclass model with each text field :func:`printable`."""
    import dataclasses

    changes = {
        f.name: printable(v)
        for f in dataclasses.fields(model)
        if isinstance(v := getattr(model, f.name), str)
    }
    return dataclasses.replace(model, **changes)


@cli.group()
def kernel() -> None:
    """Manage kconsole's built-in Python kernel."""


@kernel.command("install")
@click.option("--user", is_flag=True, help="Install for this user (default).")
@click.option("--sys-prefix", is_flag=True, help="Install into sys.prefix.")
@click.option(
    "--prefix", type=click.Path(file_okay=False), help="Install under PREFIX/share/jupyter."
)
@click.option("--name", default="kconsole-python", show_default=True, help="Kernelspec name.")
def kernel_install(user: bool, sys_prefix: bool, prefix: str | None, name: str) -> None:
    """Write a kernelspec for the built-in kernel, so any Jupyter frontend can use it."""
    from .kernel.install import install_kernelspec

    # Separate flags, not one value: with one, the last of `--user --sys-prefix` won.
    if user and sys_prefix:
        raise UsageProblem("--user and --sys-prefix cannot be combined")
    if prefix and (user or sys_prefix):
        raise UsageProblem("--prefix cannot be combined with --user or --sys-prefix")
    where = "sys-prefix" if sys_prefix else "user"
    try:
        path = install_kernelspec(prefix or where, name=name)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot install the kernelspec: {e}") from None
    click.echo(f"Installed kernelspec {name} in {path}")


def main() -> None:
    """Console-script entry point.

    click's standalone mode, except that a usage error (a bad option value, an
    unknown option) is one line, like every other error: ``kconsole: Invalid value
    for '--style': ... (see `kconsole start --help`)``, exit status 2.
    """
    try:
        status = cli.main(prog_name="kconsole", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:  # bare `kconsole`: the help text
        e.show()
        sys.exit(e.exit_code)
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "kconsole"
        message = printable(e.format_message()).strip()
        click.echo(f"kconsole: {message} (see `{where} --help`)", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except OSError as e:
        if e.errno not in _OUTPUT_ERRNOS:
            raise
        # stdout on a full disk (`kconsole kernels > /dev/full`): one line, and nothing
        # left to flush into it at exit (which would print "Exception ignored...").
        _drop_stdout()
        click.echo(f"kconsole: cannot write the output: {e.strerror or e}", err=True)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


#: Errors of writing to stdout (click itself handles EPIPE, a reader that left).
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG, errno.EBADF})


def _drop_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    main()
