"""What a console connects to, found before any event loop runs.

* :func:`connection_file_info` and :func:`ports_info`: ``attach --existing`` /
  ``--ports`` as a :class:`~kconsole.connection.ConnectionInfo`, CurveZMQ keys
  included (:func:`curve_keys`), the newest live connection file for a bare
  ``--existing``;
* :func:`server_token`: a Jupyter Server's token (it may be asked for);
* :func:`notebook_path` and :func:`notebook_kernel_id`: ``attach --notebook``'s
  kernel, started for it when none runs (asking first, :func:`ask_start`).

Failures are :class:`~kconsole.errors.KconsoleError`\\ s (a connection file's, a
server's), left to the CLI's edge; what is said here adds what only this level knows
(which option a key came from).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .connection import ConnectionInfo, parse_ports
from .errors import ExitStatus, KconsoleError, UsageProblem, printable

if TYPE_CHECKING:
    from .remote.rest import ServerClient

#: Where ``attach --ports --curve-public-key`` finds the secret key (never in argv,
#: which every user of the machine can read in the process list).
CURVE_SECRET_ENV = "KCONSOLE_CURVE_SECRET_KEY"

T = TypeVar("T")


# -- a kernel over zmq ------------------------------------------------------------------


def connection_file_info(existing: str, ssh: str | None) -> tuple[ConnectionInfo, Path]:
    """``attach --existing``: the connection file named (a path, a name or id in the
    runtime dir, or ``""`` for the newest whose kernel answers) and its path. Raises
    :class:`~kconsole.connection.ConnectionFileError` for a file that cannot be used."""
    from .connection import find_connection_file

    if existing == "" and ssh is None:
        path = newest_live_connection_file()
    else:  # through --ssh the files describe kernels as seen from the far host
        path = find_connection_file(existing or None)
    return _checked(ConnectionInfo.from_file(path), f"connection file {path}"), path


def ports_info(
    ports: str,
    curve_public_key: str | None,
    curve_secret_key_file: str | None,
    **fields: str,
) -> ConnectionInfo:
    """``attach --ports``: the kernel of these five ports, with ``fields`` beside them
    (``ip``, ``key``, ``transport``, ``signature_scheme``) and the CurveZMQ keys of
    :func:`curve_keys`."""
    try:
        info: dict[str, Any] = dict(parse_ports(ports))
    except ValueError as e:
        raise UsageProblem(f"bad --ports: {e}") from e
    info.update(fields)
    info.update(curve_keys(curve_public_key, curve_secret_key_file))
    return _checked(ConnectionInfo.from_dict(info, source="--ports"), "--ports")


def _checked(info: ConnectionInfo, source: str) -> ConnectionInfo:
    """``info``, its signature scheme validated before anything connects."""
    from .protocol import UnknownSignatureScheme

    try:
        info.session()
    except UnknownSignatureScheme as e:
        raise KconsoleError(f"{source}: {e}") from e
    return info


def curve_keys(public: str | None, secret_file: str | None) -> dict[str, str]:
    """The connection fields of ``--curve-public-key`` and its secret (from
    ``--curve-secret-key-file`` or $KCONSOLE_CURVE_SECRET_KEY); {} without them."""
    from .connection import check_curve_key

    if public is None:
        if secret_file is not None:
            raise UsageProblem("--curve-secret-key-file goes with --curve-public-key")
        return {}
    if secret_file is not None:
        secret, where = _read_secret_key_file(secret_file), f"--curve-secret-key-file {secret_file}"
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
        raise KconsoleError(
            f"--curve-public-key is the secret key (the same as {where}): give the "
            "kernel's curve_publickey; the secret is now visible in the process list and "
            "your shell history, so treat it as exposed"
        )
    return {
        "curve_publickey": check_curve_key(public, "--curve-public-key"),
        "curve_secretkey": check_curve_key(secret, where),
    }


def _read_secret_key_file(secret_file: str) -> str:
    """The key in ``--curve-secret-key-file``, stripped; a warning when others can
    read the file."""
    from . import paths

    path = Path(secret_file).expanduser()
    try:
        secret = paths.decode_text(paths.read_small_file(path))
    except FileNotFoundError as e:
        raise KconsoleError(f"--curve-secret-key-file: {secret_file} not found") from e
    except paths.Unreadable as e:
        raise KconsoleError(
            f"--curve-secret-key-file: cannot read {secret_file}: {e.reason}"
        ) from e
    except paths.FileProblem as e:
        raise KconsoleError(f"--curve-secret-key-file: {secret_file} {e}") from e
    _warn_if_others_can_read(path)
    return secret.strip()


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


def newest_live_connection_file() -> Path:
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


# -- a Jupyter Server -------------------------------------------------------------------


def server_token(server: str, token: str | None) -> str:
    """The server's token, resolved before the event loop starts (it may prompt, never
    echoing). Raises :class:`~kconsole.remote.rest.RemoteError`."""
    from .remote.rest import resolve_token

    tok = resolve_token(server, token)
    # It travels in an HTTP header: a newline or a non-ASCII character there is an
    # http.client traceback, not a request.
    if not (tok.isascii() and tok.isprintable()) or any(ch.isspace() for ch in tok):
        raise KconsoleError("the server's token must be printable ASCII without spaces")
    return tok


def notebook_path(server: str, notebook: str) -> str:
    """``--notebook``'s path as the server names it (relative to its root); a path that
    cannot be right is a usage error, said before the token is asked for."""
    from .remote.rest import RemoteError, split_server_url
    from .remote.sessions import normalise_notebook_path, server_root_dir

    try:
        base, _ = split_server_url(server)
        root = server_root_dir(base) if os.path.isabs(os.path.expanduser(notebook)) else None
        return normalise_notebook_path(notebook, root)
    except RemoteError as e:
        raise UsageProblem(printable(str(e))) from e


def notebook_kernel_id(client: ServerClient, path: str, start_if_missing: bool) -> str:
    """The id of the kernel of notebook ``path`` on the server, one started for it
    when none runs (asking first in a terminal; in script mode only with
    ``start_if_missing``)."""
    from .remote.sessions import (
        find_notebook_session,
        kernelspec_for_notebook,
        start_notebook_session,
    )

    shown = printable(path)
    session = _before_the_loop(find_notebook_session(client, path))
    if session is None:
        spec = _before_the_loop(kernelspec_for_notebook(client, path))
        what = printable(spec) if spec else "the server's default"
        if not start_if_missing:
            if not sys.stdin.isatty():
                raise KconsoleError(
                    f"no kernel runs for {shown} on the server; --start-if-missing starts "
                    f"one ({what})"
                )
            if not ask_start(f"No kernel runs for {shown} on the server; start one ({what})?"):
                raise KconsoleError(f"no kernel started for {shown}")
        session = _before_the_loop(start_notebook_session(client, path, spec))
        assert session.kernel is not None  # start_notebook_session checked
        if sys.stdin.isatty():
            click.echo(
                f"kconsole: started a {printable(session.kernel.name) or 'new'} kernel for "
                f"{shown}; it stays running after the console exits, as the notebook's kernel",
                err=True,
            )
    assert session.kernel is not None  # only sessions with a kernel are picked
    return session.kernel.id


def _before_the_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run one server call before the console's loop: no prompt is up yet, and a
    Ctrl-C leaves (130)."""
    import asyncio

    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        click.echo("", err=True)
        sys.exit(ExitStatus.INTERRUPTED)


def ask_start(question: str) -> bool:
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
            sys.exit(ExitStatus.INTERRUPTED)
        if answer in ("", "y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
