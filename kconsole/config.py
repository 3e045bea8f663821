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

import os
import sys
from pathlib import Path
from typing import Any

COMMANDS = ("start", "attach")


class ConfigError(Exception):
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
    """The parsed file, or {} when there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    # Imported only when there is a file: most runs have none, and every run pays this.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


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
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        try:
            param.type_cast_value(click.Context(click.Command(cmd)), value)
        except click.BadParameter as e:
            raise ConfigError(f"config file {path}: {key} = {value!r}: {e.message}") from None
        out[cmd][name] = value

    for key, value in data.items():
        if key in COMMANDS and isinstance(value, dict):
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
