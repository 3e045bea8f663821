"""The ``kconsole`` command: parse options, build a kernel connection, hand off.

Every user error leaves as one line on stderr and a non-zero exit status
(:class:`click.ClickException`), never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .connection import LOCALHOST, ConnectionFileError, ConnectionInfo, parse_ports

DEFAULT_TIMEOUT = 60.0


class UserError(click.ClickException):
    """One clear line and exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"kconsole: {self.format_message()}", err=True)


# -- shared options ---------------------------------------------------------------------


def _console_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds to wait for the kernel to answer before giving up.",
    )(f)
    f = click.option(
        "--no-other-output",
        is_flag=True,
        help="Do not show output caused by other clients of the same kernel.",
    )(f)
    f = click.option("--no-banner", is_flag=True, help="Do not print the kernel's banner.")(f)
    return f


# -- running ----------------------------------------------------------------------------


def _run(coro_fn: Callable[[], Awaitable[int]]) -> None:
    """Run the console's event loop; SIGTERM/SIGHUP leave cleanly (kernel shut down)."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, task.cancel)
        try:
            return await coro_fn()
        except asyncio.CancelledError:
            return 143

    from .console import ConsoleError

    try:
        status = asyncio.run(main())
    except ConsoleError as e:
        raise UserError(str(e)) from None
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


async def _session(make_conn: Callable[[], Awaitable[Any]], opts: dict[str, Any]) -> int:
    """Connect, then run the REPL (stdin a terminal) or script mode; always clean up."""
    from .output import OutputPrinter

    conn = await make_conn()
    interactive = sys.stdin.isatty()
    keep: bool | None = None
    try:
        printer = OutputPrinter(sys.stdout, color=sys.stdout.isatty())
        if interactive:
            from .repl import Repl

            repl = Repl(
                conn,
                printer,
                show_other_output=not opts["no_other_output"],
                banner=not opts["no_banner"],
            )
            status = await repl.run()
            if repl.keep_kernel_on_exit:
                keep = True
        else:
            from .script import ScriptRunner

            status = await ScriptRunner(conn, printer).run()
        return status
    finally:
        # Shielded: a second Ctrl-C or SIGTERM must not leave the kernel orphaned.
        await asyncio.shield(conn.close(keep_kernel=keep if keep else None))
        if conn.owns_kernel is False and conn.process is not None and interactive:
            click.echo(
                f"kconsole: kernel left running; attach with "
                f"`kconsole attach --existing {conn.connection_file}`",
                err=True,
            )


# -- commands ---------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kconsole")
def cli() -> None:
    """A terminal console for Jupyter kernels.

    Start a kernel and work in it (`kconsole start`), attach to one that is
    already running (`kconsole attach`), or list what there is (`kconsole kernels`).
    When stdin is not a terminal, the code read from it is run cell by cell and the
    exit status is 1 if any cell raised.
    """


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
@click.option("--ip", default=LOCALHOST, show_default=True, help="Address the kernel listens on.")
@click.option(
    "--transport",
    type=click.Choice(["tcp", "ipc"]),
    default="tcp",
    show_default=True,
    help="zmq transport between console and kernel.",
)
@_console_options
def start(
    kernel_name: str | None,
    keep_kernel: bool,
    ip: str,
    transport: str,
    **opts: Any,
) -> None:
    """Start a kernel and attach to it; shut it down on exit unless --keep-kernel."""
    from .console import start_local
    from .kernelspec import NoSuchKernel, resolve_kernel

    try:
        spec = resolve_kernel(kernel_name)
    except NoSuchKernel as e:
        raise UserError(str(e)) from None
    if kernel_name is None and spec.name == "builtin" and sys.stdin.isatty():
        click.echo(
            "kconsole: no python3 kernelspec found; starting kconsole's built-in kernel", err=True
        )

    async def make() -> Any:
        return await start_local(
            spec, ip=ip, transport=transport, timeout=opts["timeout"], keep_kernel=keep_kernel
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
    "(with no value) the newest one there.",
)
@click.option("--ports", metavar="SHELL,IOPUB,STDIN,CONTROL,HB", help="The kernel's five ports.")
@click.option(
    "--ip", default=LOCALHOST, show_default=True, help="The kernel's address (with --ports)."
)
@click.option("--key", default="", help="The kernel's signing key (with --ports).")
@click.option(
    "--signature-scheme",
    default="hmac-sha256",
    show_default=True,
    help="HMAC scheme of the key (with --ports).",
)
@click.option(
    "--transport",
    type=click.Choice(["tcp", "ipc"]),
    default="tcp",
    show_default=True,
    help="zmq transport (with --ports).",
)
@_console_options
def attach(
    existing: str | None,
    ports: str | None,
    ip: str,
    key: str,
    signature_scheme: str,
    transport: str,
    **opts: Any,
) -> None:
    """Attach to a running kernel. Never shuts it down."""
    from .connection import find_connection_file
    from .console import attach_zmq
    from .protocol import UnknownSignatureScheme

    if (existing is None) == (ports is None):
        raise UserError("give either --existing [FILE-OR-ID] or --ports with --key")
    path: Path | None = None
    try:
        if existing is not None:
            path = find_connection_file(existing or None)
            info = ConnectionInfo.from_file(path)
        else:
            assert ports is not None
            info = ConnectionInfo(
                ip=ip,
                key=key.encode(),
                transport=transport,
                signature_scheme=signature_scheme,
                **parse_ports(ports),
            )
        info.session()  # validates the signature scheme before anything connects
    except (ConnectionFileError, UnknownSignatureScheme) as e:
        raise UserError(str(e)) from None
    except ValueError as e:
        raise UserError(f"bad --ports: {e}") from None

    _run(lambda: _session(lambda: attach_zmq(info, opts["timeout"], path), opts))


@cli.command()
def kernels() -> None:
    """List installed kernelspecs and the kernels running in Jupyter's runtime dir."""
    from .connection import list_connection_files
    from .kernelspec import all_kernel_specs, format_kernelspec_table
    from .zmq_transport import probe_heartbeat

    specs, errors = all_kernel_specs()
    click.echo("Available kernels:")
    click.echo(format_kernelspec_table(specs))
    for err in errors:
        click.echo(f"  [skipped] {err}")
    files = list_connection_files()
    click.echo("\nRunning kernels (connection files in the runtime dir):")
    if not files:
        click.echo("  (none)")
    for f in files:
        try:
            info = ConnectionInfo.from_file(f)
        except ConnectionFileError:
            click.echo(f"  {f}  [unreadable]")
            continue
        alive = "alive" if probe_heartbeat(info, timeout=0.5) else "not answering"
        name = info.kernel_name or "?"
        click.echo(f"  {f.name}  {name}  {info.ip}  [{alive}]")


@cli.group()
def kernel() -> None:
    """Manage kconsole's built-in Python kernel."""


@kernel.command("install")
@click.option("--user", "where", flag_value="user", help="Install for this user (default).")
@click.option("--sys-prefix", "where", flag_value="sys-prefix", help="Install into sys.prefix.")
@click.option(
    "--prefix", type=click.Path(file_okay=False), help="Install under PREFIX/share/jupyter."
)
@click.option("--name", default="kconsole-python", show_default=True, help="Kernelspec name.")
def kernel_install(where: str | None, prefix: str | None, name: str) -> None:
    """Write a kernelspec for the built-in kernel, so any Jupyter frontend can use it."""
    from .kernel.install import install_kernelspec

    if prefix and where:
        raise UserError("--prefix cannot be combined with --user or --sys-prefix")
    try:
        path = install_kernelspec(prefix or where or "user", name=name)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot install the kernelspec: {e}") from None
    click.echo(f"Installed kernelspec {name} in {path}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="kconsole")


if __name__ == "__main__":
    main()
