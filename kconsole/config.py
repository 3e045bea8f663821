"""The user's config file: defaults for every option of ``start`` and ``attach``.

TOML, in the platform's config dir (``$XDG_CONFIG_HOME/kconsole/config.toml`` on
Linux, ``~/Library/Application Support/kconsole/config.toml`` on macOS,
``%APPDATA%\\kconsole\\config.toml`` on Windows) or wherever ``$KCONSOLE_CONFIG`` points.
Top-level keys apply to both commands; ``[start]`` and ``[attach]`` tables to one::

    plain = false
    mime-order = ["text/markdown", "text/html", "text/plain"]
    confirm-exit = false

    [start]
    kernel = "python3"

Keys are option names without the leading dashes. Values are checked by the same
click types as the command line, so a bad value is reported against the file.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

from .errors import KconsoleError

COMMANDS = ("start", "attach")


class ConfigError(KconsoleError):
    """The config file cannot be used (the message names the file and the key)."""


def config_path() -> Path:
    """Where the config file is looked for."""
    env = os.environ.get("KCONSOLE_CONFIG")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "kconsole" / "config.toml"


def read_config(path: Path) -> dict[str, Any]:
    """The parsed file, or {} when there is none; :class:`ConfigError` naming the file
    for anything unusable (unreadable, too large, not UTF-8, not TOML, nested deeply)."""
    from . import paths

    try:
        text = paths.decode_text(paths.read_small_file(path))
    except FileNotFoundError:
        return {}
    except paths.Unreadable as e:
        if e.reason == os.strerror(errno.ENOTDIR):
            return {}  # a file where a directory of its path should be: no file there
        raise ConfigError(f"cannot read config file {path}: {e.reason}") from e
    except paths.FileProblem as e:
        raise ConfigError(f"config file {path} {e}") from e
    # Imported only when there is a file: most runs have none, and every run pays this.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(text)
        paths.check_nesting(data)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ConfigError(f"config file {path} is nested too deeply") from None
    except paths.FileProblem as e:
        raise ConfigError(f"config file {path} {e}") from e
    return data


def defaults_for(
    data: dict[str, Any], params: dict[str, dict[str, Any]], path: Path
) -> dict[str, dict[str, Any]]:
    """click ``default_map`` entries for each command.

    ``params`` maps a command to ``{option name: click.Parameter}``; every key of the
    file must name an option of some command, and its value must convert with that
    option's type.
    """
    import click

    out: dict[str, dict[str, Any]] = {cmd: {} for cmd in COMMANDS}

    def put(cmd: str, key: str, value: Any) -> None:
        name = key.replace("-", "_")
        if name == "kernel":
            name = "kernel_name"
        param = params[cmd].get(name)
        if param is None:
            return
        where = f"config file {path}: {key} = {_show(value)}"
        value = _plain_value(param, value, where)
        ctx = click.Context(click.Command(cmd))
        try:
            converted = param.type_cast_value(ctx, value)
            # Checks done in callbacks (a pygments style, a folder to save in) run on
            # the command line at parse time, without the file's name: run them here.
            callback = getattr(param, "callback", None)
            if callback is not None:
                callback(ctx, param, converted)
        except click.BadParameter as e:
            raise ConfigError(f"{where}: {e.message}") from e
        except (TypeError, ValueError, OverflowError) as e:  # a type click did not expect
            raise ConfigError(f"{where}: {e}") from e
        out[cmd][name] = value

    for key, value in data.items():
        if key in COMMANDS:
            if not isinstance(value, dict):
                raise ConfigError(f"config file {path}: {key} must be a table ([{key}])")
            for sub_key, sub_value in value.items():
                if not _known(sub_key, params[key]):
                    raise ConfigError(f"config file {path}: unknown setting {key}.{sub_key}")
                put(key, sub_key, sub_value)
            continue
        if not any(_known(key, params[cmd]) for cmd in COMMANDS):
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        for cmd in COMMANDS:
            put(cmd, key, value)
    return out


def _known(key: str, params: dict[str, Any]) -> bool:
    name = key.replace("-", "_")
    return name in params or (name == "kernel" and "kernel_name" in params)


def _show(value: Any) -> str:
    """A value as the file's reader wrote it, shortened for a one-line message."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:59] + "\u2026"


def _plain_value(param: Any, value: Any, where: str) -> Any:
    """The TOML value as click would get it from the command line: a flag takes a
    boolean (or a word such as "yes"); any other option a string, a number or a list of
    them (joined with commas, as ``--mime-order`` takes it)."""
    if getattr(param, "is_flag", False):
        if isinstance(value, (bool, str)):
            return value
        raise ConfigError(f"{where}: expected true or false")
    if getattr(param, "multiple", False):
        # A repeatable option (--env): a list of values, or one, each as one use of it.
        values = value if isinstance(value, list) else [value]
        if not all(_scalar(v) for v in values):
            raise ConfigError(f"{where}: expected a list of strings")
        return [str(v) for v in values]
    if isinstance(value, list):
        if not all(_scalar(v) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return ",".join(str(v) for v in value)
    if not _scalar(value):
        raise ConfigError(f"{where}: expected a string or a number")
    return value if isinstance(value, (str, float)) else str(value)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)
