"""Checks of the ``kconsole`` command's option values, as click callbacks.

Each finds a bad value when the command line (or the config file) is read, as one
usage line (``kconsole: Invalid value for '--ip': ...``, exit status 2), not as a
traceback or a failure once the kernel is started.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import click

from .connection import ConnectionFileError, ConnectionInfo, parse_ports


def check_save_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
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


def check_ip(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # A host name or address: printable, no NUL (which the socket layer rejects with
    # a TypeError), of a length a resolver accepts.
    # Empty is not "all interfaces": the kernel would bind an address nothing connects
    # to (a wait of the whole --timeout, or ipykernel's traceback).
    if value is not None and (not value.strip() or not value.isprintable() or len(value) > 253):
        raise click.BadParameter(f"{value[:60]!r} is not an address or host name")
    return value


def check_ports(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None:
        try:
            parse_ports(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return value


def check_env(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
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


def check_key(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None and not (value.isascii() and value.isprintable()):
        raise click.BadParameter("the key must be printable ASCII")
    return value


def check_signature_scheme(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
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


def check_timeout(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    # FloatRange lets NaN through (every comparison with it is false): a start would
    # then never give up and an attach would fail converting it to milliseconds.
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds")
    return value


def check_image_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # Said once, now, rather than as a note on every image the session shows.
    if value:
        path = os.path.expanduser(value)
        if os.path.exists(path) and not os.path.isdir(path):
            raise click.BadParameter(f"{value!r} exists and is not a directory")
        parent = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        if os.path.isdir(parent) and not os.access(parent, os.W_OK | os.X_OK):
            raise click.BadParameter(f"{value!r} cannot be written")
    return value


def check_ssh(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # Found out now, as one line, not as the tunnel's traceback once the loop runs.
    if value is not None:
        from .remote.ssh import TunnelError, parse_host_spec

        try:
            parse_host_spec(value)
        except TunnelError as e:
            raise click.BadParameter(str(e)) from None
    return value


def check_server(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
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


def check_pygments_style(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    # The default needs no check (nor pygments' style registry loaded at startup).
    if value and value not in ("default", "kconsole"):
        from .display.style import check_style

        try:
            check_style(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return value
