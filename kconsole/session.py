"""A console session, from a connection being opened to the kernel left or shut down.

The CLI (:mod:`kconsole.cli`) parses options and finds what to connect to; this
module runs the rest:

* :func:`spawn_kernel` and :func:`run_local`: ``kconsole start`` on this machine, the
  kernel spawned before asyncio and the console's modules load, SIGTERM/SIGHUP held
  while it is spawned;
* :func:`attach_zmq_console` and :func:`run_on_server`: ``attach`` over zmq (tunnelled
  or not) and every console on a Jupyter Server;
* :func:`run`: the event loop, SIGTERM/SIGHUP ending it cleanly (kernel shut down);
* :func:`session`: connect, then the REPL (stdin a terminal) or script mode, and the
  clean-up that always runs (the kernel closed, kept, or said where it stays).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import click

from . import startup
from .errors import ExitStatus, signal_status

if TYPE_CHECKING:
    from concurrent.futures import Future
    from pathlib import Path

    from .connection import ConnectionInfo
    from .display import DisplayConfig, TerminalCapabilities
    from .kernel_connection import KernelConnection
    from .kernelspec import KernelSpec
    from .launcher import KernelProcess
    from .notebook import NotebookRecorder
    from .options import ConsoleOptions
    from .output import OutputPrinter

#: Opens the connection; its argument shows a transport's event (a WebSocket
#: reconnecting) to the user as one line.
MakeConnection = Callable[[Callable[[str], None]], Awaitable["KernelConnection"]]


# -- signals before and around the loop -----------------------------------------------

#: Signals that arrived while :func:`signals_deferred` held them.
_deferred_signals: list[int] = []
_deferring = False


def _leave_on_signal(signum: int, frame: object) -> None:
    if _deferring:
        _deferred_signals.append(signum)
        return
    raise SystemExit(signal_status(signum))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGHUP while the kernel is spawned: a SystemExit inside Popen
    would leave a started kernel that the orphan guard does not know of yet."""
    global _deferring
    _deferring = True
    # Ctrl-C too: a KeyboardInterrupt inside Popen would leave the kernel's files.
    sigint = None
    with contextlib.suppress(ValueError, OSError):  # not the main thread
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            sigint = signal.signal(signal.SIGINT, _leave_on_signal)
    try:
        yield
    finally:
        _deferring = False
        if sigint is not None:
            signal.signal(signal.SIGINT, sigint)
    if signal.SIGINT in _deferred_signals:
        raise KeyboardInterrupt
    if _deferred_signals:
        raise SystemExit(signal_status(_deferred_signals[0]))


def exit_on_signals_until_the_loop_runs() -> None:
    """SIGTERM and SIGHUP raise SystemExit(128 + signal) until :func:`run`'s loop takes
    them over; a signal the user had ignored (``nohup``) stays ignored."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            if signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, _leave_on_signal)


def run(coro_fn: Callable[[], Awaitable[int]]) -> None:
    """Run the console's event loop and exit with its status; SIGTERM/SIGHUP leave
    cleanly (kernel shut down), Ctrl-C outside a prompt with 130."""

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
            return signal_status(terminated[0])  # as a shell reports it: 143, 129

    status: int
    try:
        status = asyncio.run(main())  # a KconsoleError goes on to the CLI's edge
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
    sys.exit(status)


# -- the session ------------------------------------------------------------------------


async def session(
    make_conn: MakeConnection,
    options: ConsoleOptions,
    detecting: Future[TerminalCapabilities] | None = None,
) -> int:
    """Connect, then run the REPL (stdin a terminal) or script mode; always clean up.
    ``detecting``: the terminal's answers already being awaited (see
    :func:`kconsole.startup.detect_terminal_in_background`), else asked for here."""
    import asyncio

    interactive = sys.stdin.isatty()
    # Events of the transport (a WebSocket reconnecting) reach the user as one line: on
    # stderr until the console exists, then through it (above the prompt).
    sink: list[Callable[[str], None]] = [lambda text: click.echo(f"kconsole: {text}", err=True)]
    conn, config, caps = await _connect(
        make_conn, lambda text: sink[0](text), options, detecting, interactive
    )
    from .output import OutputPrinter

    keep: bool | None = None
    recorder = None
    if options.save:
        from .notebook import NotebookRecorder

        recorder = NotebookRecorder(options.save)
    try:
        if not interactive:
            await conn.wait_ready()  # the REPL waits itself, with its prompt already up
        printer = OutputPrinter(
            sys.stdout, color=sys.stdout.isatty(), config=config, capabilities=caps
        )
        if interactive:
            status, keep = await _run_repl(conn, printer, recorder, options, sink)
        else:
            from .script import ScriptRunner

            runner = ScriptRunner(conn, printer, recorder=recorder)
            status = await runner.run()
            keep = _can_keep(conn) if runner.keep_kernel_on_exit else None
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
        if options.started_here:
            # On stderr in script mode too: stdout stays the script's output.
            _say_where_kernel_stays(conn, kept=bool(keep))


async def _connect(
    make_conn: MakeConnection,
    notify: Callable[[str], None],
    options: ConsoleOptions,
    detecting: Future[TerminalCapabilities] | None,
    interactive: bool,
) -> tuple[KernelConnection, DisplayConfig, TerminalCapabilities | None]:
    """The connection, the display config and the terminal's capabilities, the
    console's modules imported meanwhile; on a failure (a SIGTERM, an import) the
    connection is closed or cancelled before the error goes on."""
    import asyncio

    # Start the connection first: one loop iteration runs it up to its first wait, so
    # the terminal queries and the imports below overlap the kernel's own start-up
    # instead of preceding it. Nothing here reads messages meanwhile; zmq queues them.
    connecting = asyncio.ensure_future(make_conn(notify))
    await asyncio.sleep(0)
    if detecting is None:
        detecting = startup.detect_terminal_in_background(plain=options.plain)
    try:
        from . import output  # noqa: F401

        config = options.display_config()
        if interactive:
            from . import repl  # noqa: F401
        else:
            from . import script  # noqa: F401
        caps: TerminalCapabilities | None = None
        if detecting is not None:
            caps = await asyncio.wrap_future(detecting)
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
    return await connecting, config, caps


async def _run_repl(
    conn: KernelConnection,
    printer: OutputPrinter,
    recorder: NotebookRecorder | None,
    options: ConsoleOptions,
    sink: list[Callable[[str], None]],
) -> tuple[int, bool | None]:
    """Run the REPL to its end: its exit status, and whether the kernel is kept (None:
    the user did not ask to keep it)."""
    from .repl import Repl

    repl = Repl(
        conn,
        printer,
        show_other_output=options.show_other_output,
        banner=options.banner,
        recorder=recorder,
        vi_mode=options.vi_mode,
        confirm_exit=options.confirm_exit,
        style=options.style,
        toolbar=options.toolbar,
        history_size=options.history_size,
    )
    sink[0] = repl.note
    status = await repl.run()
    return status, _can_keep(conn) if repl.keep_kernel_on_exit else None


def _say_where_kernel_stays(conn: KernelConnection, kept: bool) -> None:
    """After a kernel kconsole started is left running, say how to get back to it."""
    hint = conn.control.left_running_hint(kept=kept)
    if hint is not None:
        click.echo(f"kconsole: {hint}", err=True)


def _can_keep(conn: KernelConnection) -> bool:
    """Whether `exit(keep_kernel=True)` can be honoured for this kernel (if not, why)."""
    refusal = conn.control.keep_refusal
    if refusal is not None:
        click.echo(f"kconsole: {refusal}", err=True)
    return refusal is None


# -- the kinds of session ---------------------------------------------------------------


def spawn_kernel(
    spec: KernelSpec,
    *,
    ip: str,
    transport: str,
    keep_kernel: bool,
    encrypt: str,
    env: Mapping[str, str],
) -> KernelProcess:
    """Spawn the kernel of ``kconsole start`` now, before asyncio and the console's
    modules load: its start-up (the longest part of ``start``) overlaps ours. Raises
    :class:`~kconsole.launcher.KernelStartError`."""
    from .launcher import spawn

    # Until the event loop installs its own handlers, a SIGTERM/SIGHUP must still end
    # kconsole through Python's exit (its atexit guard stops the kernel spawned below and
    # removes its files), not by the signal's default action, which leaves both behind.
    exit_on_signals_until_the_loop_runs()
    with signals_deferred():
        process = spawn(
            spec,
            ip=ip,
            transport=transport,
            outlive_console=keep_kernel,
            encrypt=encrypt,
            extra_env=dict(env),
        )
    return process


def run_local(
    spec: KernelSpec,
    process: KernelProcess,
    options: ConsoleOptions,
    *,
    ip: str,
    transport: str,
    keep_kernel: bool,
) -> None:
    """The console on the kernel :func:`spawn_kernel` started; exits with its status."""
    detecting = startup.detect_terminal_in_background(plain=options.plain)
    startup.import_asyncio_without_ssl()
    from .kernel_connection import start_local

    async def make(notify: Callable[[str], None]) -> KernelConnection:
        # Returns before the kernel is ready: the REPL shows its prompt meanwhile.
        return await start_local(
            spec,
            ip=ip,
            transport=transport,
            timeout=options.timeout,
            keep_kernel=keep_kernel,
            process=process,
            wait=False,
        )

    run(lambda: session(make, options, detecting))


def attach_zmq_console(
    info: ConnectionInfo,
    path: Path | None,
    options: ConsoleOptions,
    *,
    ssh: str | None = None,
    ssh_key: str | None = None,
) -> None:
    """The console on a running kernel over zmq, through an SSH tunnel to ``ssh`` when
    given (``path``: its connection file, if it came from one)."""
    startup.import_asyncio_without_ssl()  # zmq, tunnelled or not: no TLS
    from .kernel_connection import attach_zmq

    if ssh is not None:
        from .remote.connect import attach_ssh

        host = ssh

        async def make_ssh(notify: Callable[[str], None]) -> KernelConnection:
            return await attach_ssh(
                info, host, key=ssh_key, timeout=options.timeout, connection_file=path
            )

        run(lambda: session(make_ssh, options))
        return

    async def make(notify: Callable[[str], None]) -> KernelConnection:
        return await attach_zmq(info, options.timeout, path)

    run(lambda: session(make, options))


def run_on_server(
    open_kernel: Callable[..., Awaitable[KernelConnection]],
    server: str,
    token: str,
    insecure: bool,
    options: ConsoleOptions,
    **kwargs: Any,
) -> None:
    """Run a console on a Jupyter Server kernel opened by ``open_kernel`` (start or
    attach, ``kwargs`` its own) with the token already resolved; the server's transport
    events reach the user as one line each."""

    async def make(notify: Callable[[str], None]) -> KernelConnection:
        return await open_kernel(
            server,
            token,
            insecure=insecure,
            timeout=options.timeout,
            on_event=lambda ev: notify(ev.message),
            **kwargs,
        )

    run(lambda: session(make, options))
