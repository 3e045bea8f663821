"""The ``kconsole`` command: declare the commands and options, build the options
once (:class:`~kconsole.options.ConsoleOptions`), hand off.

Option values are checked by :mod:`kconsole.option_values`; what runs a console lives
elsewhere: :mod:`kconsole.session` (the event loop, signals,
the REPL or script mode, the kernel left or shut down), :mod:`kconsole.targets` (the
kernel to connect to: a connection file, ports and keys, a server's token, a
notebook's kernel), :mod:`kconsole.startup` (start-up tricks) and
:mod:`kconsole.listing` (``kconsole kernels``).

Errors: every failure the user should read as one line is a
:class:`~kconsole.errors.KconsoleError` carrying its exit status, caught once, in
:func:`main`, and printed as ``kconsole: <message>``; ``--debug`` (or
``KCONSOLE_DEBUG=1``) shows the cause chain above it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from . import __version__, paths
from .connection import LOCALHOST
from .errors import ExitStatus, KconsoleError, UsageProblem, debug_from_env, printable
from .option_values import (
    check_env,
    check_image_dir,
    check_ip,
    check_key,
    check_ports,
    check_pygments_style,
    check_save_path,
    check_server,
    check_signature_scheme,
    check_ssh,
    check_timeout,
)
from .options import DEFAULT_TIMEOUT, ConsoleOptions
from .targets import CURVE_SECRET_ENV

__all__ = ["cli", "main"]


# -- where a value came from ------------------------------------------------------------


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


@contextlib.contextmanager
def _naming_config(option: str | Callable[[KconsoleError], str]) -> Iterator[None]:
    """A :class:`KconsoleError` raised in the block names the config file when
    ``option`` (a name, or one picked from the error) got its value from it; otherwise
    it goes on unchanged, to :func:`main`."""
    try:
        yield
    except KconsoleError as e:
        suffix = _set_in_config(option if isinstance(option, str) else option(e))
        if not suffix:
            raise
        raise KconsoleError(f"{e}{suffix}", exit_status=e.exit_status) from e


def _console_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every console (``start`` and ``attach``): how it runs, then how
    it shows rich output."""
    return _display_options(_session_options(f))


def _session_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        callback=check_timeout,
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
        callback=check_pygments_style,
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
        callback=check_save_path,
        help="On exit, save the cells run in this session and their outputs as a notebook.",
    )(f)
    return f


def _display_options(f: Callable[..., Any]) -> Callable[..., Any]:
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
        callback=check_image_dir,
        help="Save images the terminal cannot draw in DIR and keep them "
        "(default: a folder of this session in the temp dir, removed at exit).",
    )(f)
    f = click.option(
        "--code-style",
        default="kconsole",
        callback=check_pygments_style,
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
        callback=check_server,
        help="A Jupyter Server (or a JupyterHub user's server, http://HUB/user/NAME/, or "
        "Enterprise or Kernel Gateway) to run the kernel on, e.g. http://localhost:8888/.",
    )(f)
    return f


# -- commands ---------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kconsole")
@click.option(
    "--debug",
    is_flag=True,
    help="When kconsole fails, show the cause chain (the tracebacks) above its one-line "
    "error; KCONSOLE_DEBUG=1 in the environment does the same.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
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

    if debug and isinstance(ctx.obj, _Edge):
        ctx.obj.debug = True
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
            raise
        # Raised by the command itself (see _config_error), so that its --help still
        # shows: the help is how a user finds out what the file may say.
        ctx.meta["kconsole.config_error"] = e


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
    callback=check_ip,
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
    callback=check_env,
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
    **params: Any,
) -> None:
    """Start a kernel and attach to it; shut it down on exit unless --keep-kernel.

    With --server, the kernel is created on that Jupyter Server (--kernel names one of
    its kernelspecs) and deleted on exit unless --keep-kernel.
    """
    _config_error()
    from . import session, startup

    startup.require_stdio()
    options = ConsoleOptions.from_params(params, started_here=True)
    if server is not None:
        if encrypt == "required":  # the server starts the kernel, with its own policy
            raise UsageProblem(
                f"--encrypt required cannot be combined with --server{_set_in_config('encrypt')}"
            )
        _start_on_server(server, token, insecure, kernel_name, keep_kernel, env, options)
        return

    from .kernelspec import resolve_kernel

    with _naming_config("kernel_name"):  # none of that name, or its kernel.json is unusable
        spec = resolve_kernel(kernel_name)
    if kernel_name is None and spec.name == "builtin" and sys.stdin.isatty():
        click.echo(
            "kconsole: no python3 kernelspec found; starting kconsole's built-in kernel", err=True
        )
    from .launcher import KernelStartError

    # Spawned now, before asyncio and the console's modules load.
    try:
        process = session.spawn_kernel(
            spec, ip=ip, transport=transport, keep_kernel=keep_kernel, encrypt=encrypt, env=env
        )
    except KernelStartError as e:
        where = "encrypt" if str(e).startswith("--encrypt") else "ip"
        raise KconsoleError(f"{e}{_set_in_config(where)}") from e
    session.run_local(spec, process, options, ip=ip, transport=transport, keep_kernel=keep_kernel)


def _start_on_server(
    server: str,
    token: str | None,
    insecure: bool,
    kernel_name: str | None,
    keep_kernel: bool,
    env: dict[str, str],
    options: ConsoleOptions,
) -> None:
    """``start --server URL``: a kernel created on the server, deleted on exit unless
    ``keep_kernel``."""
    from . import session
    from .remote.connect import start_server_kernel
    from .targets import server_token

    tok = server_token(server, token)
    session.run_on_server(
        start_server_kernel,
        server,
        tok,
        insecure,
        options,
        kernel_name=kernel_name,
        keep_kernel=keep_kernel,
        env=env,
    )


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
    callback=check_ports,
    help="The kernel's five ports.",
)
@click.option(
    "--ip",
    default=LOCALHOST,
    show_default=True,
    callback=check_ip,
    help="The kernel's address (with --ports).",
)
@click.option(
    "--key", default="", callback=check_key, help="The kernel's signing key (with --ports)."
)
@click.option(
    "--signature-scheme",
    default="hmac-sha256",
    show_default=True,
    callback=check_signature_scheme,
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
    callback=check_ssh,
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
    **params: Any,
) -> None:
    """Attach to a running kernel: by connection file, by ports, or on a Jupyter Server
    (by kernel id, or the kernel of a notebook). Never shuts it down."""
    _config_error()
    from . import session, startup, targets

    startup.require_stdio()
    options = ConsoleOptions.from_params(params)
    if notebook is None and start_if_missing and not _set_in_config("start_if_missing"):
        # (From the config file it is a default for the attaches that take it.)
        raise UsageProblem("--start-if-missing goes with --notebook")
    if notebook is not None or server is not None or kernel_id is not None:
        check_server_attach(server, kernel_id, notebook, existing, ports, ssh)
    if server is not None:
        _attach_on_server(server, token, insecure, kernel_id, notebook, start_if_missing, options)
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
    if existing is not None:
        with _naming_config("existing"):
            info, path = targets.connection_file_info(existing, ssh)
    else:
        assert ports is not None
        info = targets.ports_info(
            ports,
            curve_public_key,
            curve_secret_key_file,
            ip=ip,
            key=key,
            transport=transport,
            signature_scheme=signature_scheme,
        )
    session.attach_zmq_console(info, path, options, ssh=ssh, ssh_key=ssh_key)


def check_server_attach(
    server: str | None,
    kernel_id: str | None,
    notebook: str | None,
    existing: str | None,
    ports: str | None,
    ssh: str | None,
) -> None:
    """The options of ``attach`` on a server go together (--notebook or --kernel-id
    with --server) and with nothing of a zmq attach."""
    if notebook is not None:
        if server is None:
            raise UsageProblem(f"--notebook goes with --server{_set_in_config('notebook')}")
        if kernel_id is not None:
            raise UsageProblem("--notebook and --kernel-id cannot be combined")
    elif server is None or kernel_id is None:
        raise UsageProblem("--server and --kernel-id go together")
    if existing is not None or ports is not None or ssh is not None:
        raise UsageProblem("--server cannot be combined with --existing, --ports or --ssh")


def _attach_on_server(
    server: str,
    token: str | None,
    insecure: bool,
    kernel_id: str | None,
    notebook: str | None,
    start_if_missing: bool,
    options: ConsoleOptions,
) -> None:
    """``attach --server URL``: to ``kernel_id``, or to the kernel of ``notebook``
    (started for it when none runs, asking first in a terminal)."""
    from . import session, targets

    if notebook is None:
        from .remote.connect import attach_server_kernel

        tok = targets.server_token(server, token)
        session.run_on_server(
            attach_server_kernel, server, tok, insecure, options, kernel_id=kernel_id
        )
        return
    from .remote.connect import attach_notebook_kernel
    from .remote.rest import ServerClient

    path = targets.notebook_path(server, notebook)  # said before the token is asked for
    tok = targets.server_token(server, token)
    client = ServerClient(server, tok, insecure=insecure, timeout=options.timeout)
    nb_kernel = targets.notebook_kernel_id(client, path, start_if_missing)
    session.run_on_server(
        attach_notebook_kernel, server, tok, insecure, options, notebook=path, kernel_id=nb_kernel
    )


@cli.command()
@_server_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    callback=check_timeout,
    help="With --server: seconds each call to the server may take.",
)
def kernels(server: str | None, token: str | None, insecure: bool, timeout: float) -> None:
    """List installed kernelspecs and the kernels running in Jupyter's runtime dir
    (with --server: the server's kernelspecs and running kernels, with the notebook
    each one runs for)."""
    from . import listing
    from .startup import reader_may_leave

    with reader_may_leave():
        if server is not None:
            from .targets import server_token

            listing.print_server_kernels(server, server_token(server, token), insecure, timeout)
            return
        listing.print_local_kernels()


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
        raise KconsoleError(f"cannot install the kernelspec: {e}") from e
    click.echo(f"Installed kernelspec {name} in {path}")


class _Edge:
    """What the error boundary needs to know of the command line: ``--debug``."""

    def __init__(self) -> None:
        self.debug = debug_from_env()


def main() -> None:
    """Console-script entry point, and kconsole's one error boundary.

    click's standalone mode, except that a usage error (a bad option value, an
    unknown option) is one line, like every other error: ``kconsole: Invalid value
    for '--style': ... (see `kconsole start --help`)``, exit status 2. A
    :class:`~kconsole.errors.KconsoleError` is ``kconsole: <message>`` and its exit
    status; under ``--debug`` its cause chain is shown first.
    """
    edge = _Edge()
    try:
        status = cli.main(prog_name="kconsole", standalone_mode=False, obj=edge)
    except KconsoleError as e:
        _show_error(e, debug=edge.debug)
        sys.exit(e.exit_status)
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
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):
            # Ctrl-C before the console's loop runs (click made it an Abort): the
            # status of every other Ctrl-C, as the man page says.
            sys.exit(ExitStatus.INTERRUPTED)
        click.echo("Aborted!", err=True)
        sys.exit(ExitStatus.ERROR)
    except OSError as e:
        from .startup import OUTPUT_ERRNOS, drop_stdout

        if e.errno not in OUTPUT_ERRNOS:
            raise
        # stdout on a full disk (`kconsole kernels > /dev/full`): one line, and nothing
        # left to flush into it at exit (which would print "Exception ignored...").
        drop_stdout()
        click.echo(f"kconsole: cannot write the output: {e.strerror or e}", err=True)
        sys.exit(ExitStatus.ERROR)
    sys.exit(status if isinstance(status, int) else ExitStatus.OK)


def _show_error(error: KconsoleError, *, debug: bool) -> None:
    """``kconsole: <message>`` on stderr; under ``--debug``, the traceback and its
    cause chain first (the one line stays the last, as without it)."""
    from .errors import debug_report, error_line

    if debug:
        click.echo(debug_report(error), err=True, nl=False)
    click.echo(error_line(error), err=True)


if __name__ == "__main__":
    main()
