"""``kconsole kernels``: the tables of kernelspecs and running kernels.

:func:`columns` is the one column formatter of kconsole's listings, and the tables
(kernelspecs, a server's kernels and the notebooks they run for) are all made here.
Everything that reaches the terminal from a file name or a server's answer goes
through :func:`~kconsole.errors.printable` first, so it cannot drive the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from .errors import printable

if TYPE_CHECKING:
    from .kernelspec import KernelSpec
    from .remote.rest import RemoteKernelModel, RemoteKernelSpecs, RemoteSession, ServerClient

M = TypeVar("M")


def columns(rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """``rows`` as aligned columns two spaces apart, one row a line, no trailing
    newline: every column but the last padded to its widest cell (the last is never
    padded, so no line ends in spaces); each line starts with ``indent``."""
    if not rows:
        return ""
    n = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    return "\n".join(
        indent + "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[n]])
        for r in rows
    )


def format_kernelspec_table(specs: Iterable[KernelSpec] | Mapping[str, KernelSpec]) -> str:
    """Aligned ``NAME LANGUAGE DISPLAY NAME PATH`` columns, one kernel a line, no trailing
    newline (like ``jupyter kernelspec list``, with language and display name)."""
    items = list(specs.values()) if isinstance(specs, Mapping) else list(specs)
    header = ("NAME", "LANGUAGE", "DISPLAY NAME", "PATH")
    rows = [header] + [
        (s.name, s.language or "-", s.display_name, str(s.resource_dir)) for s in items
    ]
    return columns(rows)


def format_kernels(kernels: list[RemoteKernelModel]) -> str:
    """A table of server kernels, one per line (no trailing newline)."""
    if not kernels:
        return "no kernels running on the server"
    rows = [("ID", "NAME", "STATE", "CONN", "LAST ACTIVITY")]
    for k in kernels:
        rows.append((k.id, k.name, k.execution_state, str(k.connections), k.last_activity or "-"))
    return columns(rows)


def format_kernels_and_sessions(
    kernels: list[RemoteKernelModel], sessions: list[RemoteSession]
) -> str:
    """The kernels table with a NOTEBOOK column: the path of each kernel's session(s)
    (a console's or file's marked with its type), ``-`` for a kernel with none."""
    if not kernels:
        return "no kernels running on the server"
    owners: dict[str, list[str]] = {}
    for s in sessions:
        if s.kernel is None:
            continue
        kind = "" if s.type in ("notebook", "") else f" ({s.type})"
        owners.setdefault(s.kernel.id, []).append((s.path or "?") + kind)
    rows = [("ID", "NAME", "STATE", "CONN", "LAST ACTIVITY", "NOTEBOOK")]
    for k in kernels:
        rows.append(
            (
                k.id,
                k.name,
                k.execution_state,
                str(k.connections),
                k.last_activity or "-",
                ", ".join(owners.get(k.id, [])) or "-",
            )
        )
    return columns(rows)


def print_local_kernels() -> None:
    """The installed kernelspecs, then the kernels of the connection files in Jupyter's
    runtime dir (each probed: alive, not answering, encrypted...)."""
    import time

    import click

    from .connection import (
        PROBE_AT_ONCE,
        ConnectionFileError,
        ConnectionInfo,
        curve_available,
        list_connection_files,
        probe_heartbeats,
    )
    from .kernelspec import all_kernel_specs

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


def print_server_kernels(url: str, token: str, insecure: bool, timeout: float) -> None:
    """A Jupyter Server's kernelspecs and running kernels (with the notebook each runs
    for, when the server has the sessions API). Raises
    :class:`~kconsole.remote.rest.RemoteError`."""
    import asyncio

    import click

    from .remote.rest import ServerClient

    client = ServerClient(url, token, insecure, timeout=timeout)
    specs, running, sessions = asyncio.run(_fetch(client))
    # The base URL: what the user typed may carry ?token=.
    click.echo(f"Kernelspecs on {printable(client.base_url)}:")
    click.echo(_spec_table(specs))
    click.echo("\nRunning kernels:")
    click.echo(printable(_kernel_table(running, sessions), keep_newlines=True))


async def _fetch(
    client: ServerClient,
) -> tuple[RemoteKernelSpecs, list[RemoteKernelModel] | str, list[RemoteSession] | None]:
    """The server's kernelspecs, its kernels (or why a gateway does not list them) and
    its sessions (None: a gateway without the sessions API)."""
    from .remote.rest import KernelListRefused, RemoteError

    specs = await client.list_kernelspecs()
    try:
        running = await client.list_kernels()
    except KernelListRefused as e:  # a gateway: kernels are not listed
        return specs, f"({e})", None
    try:
        sessions = await client.list_sessions()
    except RemoteError:
        return specs, running, None  # a gateway without the sessions API: kernels only
    return specs, running, sessions


def _spec_table(specs: RemoteKernelSpecs) -> str:
    # What a server names things must not drive the terminal (printable escapes them).
    rows = [("NAME", "LANGUAGE", "DISPLAY NAME")] + [
        (
            printable(s.name + (" (default)" if s.name == specs.default else "")),
            printable(s.language or "-"),
            printable(s.display_name),
        )
        for s in specs.specs
    ]
    return columns(rows, indent="  ")


def _kernel_table(
    running: list[RemoteKernelModel] | str, sessions: list[RemoteSession] | None
) -> str:
    if isinstance(running, str):
        return running
    import dataclasses

    # Each cell escaped on its own: a newline in a name or a notebook's path (a valid
    # file name) must not start a row of its own.
    running = [_printable_fields(k) for k in running]
    if sessions is None:
        return format_kernels(running)
    sessions = [
        dataclasses.replace(
            _printable_fields(s),
            kernel=_printable_fields(s.kernel) if s.kernel is not None else None,
        )
        for s in sessions
    ]
    return format_kernels_and_sessions(running, sessions)


def _printable_fields(model: M) -> M:
    """A copy of a server's dataclass model with each text field :func:`printable`."""
    import dataclasses

    changes = {
        f.name: printable(v)
        for f in dataclasses.fields(model)  # type: ignore[arg-type]
        if isinstance(v := getattr(model, f.name), str)
    }
    return dataclasses.replace(model, **changes)  # type: ignore[type-var]
