"""Property tests for the parsers of the files kconsole reads: whatever a connection
file, a kernel.json or the config file holds, the parser returns a usable value or
raises its one error type (which the CLI prints as one line), never anything else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole import paths
from kconsole.cli import attach, start
from kconsole.config import ConfigError, defaults_for, read_config
from kconsole.connection import CHANNELS, ConnectionFileError, ConnectionInfo
from kconsole.kernelspec import KernelSpec, KernelSpecError

FAST = settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
VALID_CONNECTION: dict[str, Any] = {
    **{f"{c}_port": 5000 + i for i, c in enumerate(CHANNELS)},
    "ip": "127.0.0.1",
    "key": "0123456789abcdef",
    "transport": "tcp",
    "signature_scheme": "hmac-sha256",
    "kernel_name": "python3",
}
VALID_SPEC: dict[str, Any] = {
    "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    "display_name": "Python 3",
    "language": "python",
    "interrupt_mode": "signal",
    "env": {"A": "${HOME}/a"},
    "metadata": {"debugger": True},
}
odd_strings = st.sampled_from(
    ["", "hmac-", "hmac-\x00", "sha256", "hmac-md5", "ipc", "\x00", "\u00fc", "=", "A=B", "x" * 300]
)


def _with_bad_fields(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid dict with a field or two replaced by anything, or removed."""
    junk = st.one_of(json_values, odd_strings, st.lists(odd_strings, max_size=3))
    replace = st.dictionaries(st.sampled_from([*valid, "other"]), junk, max_size=2)
    remove = st.lists(st.sampled_from(list(valid)), max_size=2)
    return st.builds(
        lambda r, rm: {k: v for k, v in {**valid, **r}.items() if k not in rm}, replace, remove
    )


plausible_connection = _with_bad_fields(VALID_CONNECTION)
plausible_spec = _with_bad_fields(VALID_SPEC)


def _write(data: bytes) -> Path:
    d = Path(tempfile.mkdtemp())
    f = d / "kernel.json"
    f.write_bytes(data)
    return f


def _encodings(value: Any) -> st.SearchStrategy[bytes]:
    text = json.dumps(value)
    return st.sampled_from(
        [text.encode(), text.encode("utf-16"), b"\xff" + text.encode(), text.encode()[:-1]]
    )


@FAST
@given(st.one_of(plausible_connection, json_values))
def test_connection_dict_is_valid_or_one_error(d: Any) -> None:
    try:
        info = ConnectionInfo.from_dict(d, source="connection file x.json")
    except ConnectionFileError as e:
        assert str(e).startswith("connection file x.json") and "\n" not in str(e)
        return
    # What was accepted can be used: URLs, a session, written back.
    for ch in CHANNELS:
        info.url(ch)
    info.session()
    json.dumps(info.to_dict())


@FAST
@given(st.one_of(plausible_connection, json_values).flatmap(_encodings))
def test_connection_file_is_valid_or_one_error(data: bytes) -> None:
    f = _write(data)
    try:
        ConnectionInfo.from_file(f)
    except ConnectionFileError as e:
        assert str(f) in str(e)


@FAST
@given(st.one_of(plausible_spec, json_values))
def test_kernelspec_dict_is_valid_or_one_error(d: Any) -> None:
    try:
        spec = KernelSpec.from_dict("k", Path("/nowhere"), d)
    except KernelSpecError as e:
        assert "\n" not in str(e)
        return
    spec.command("/tmp/kernel-x.json", extra={"ip": "127.0.0.1"})
    spec.environment({})


@FAST
@given(st.one_of(plausible_spec, json_values).flatmap(_encodings))
def test_kernelspec_file_is_valid_or_one_error(data: bytes) -> None:
    f = _write(data)
    try:
        KernelSpec.from_dir("k", f.parent)
    except KernelSpecError as e:
        assert str(f) in str(e)


@FAST
@given(st.integers(1, 3000), st.sampled_from(["[", '{"a":']))
def test_any_nesting_depth_is_one_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    f = _write((opener * depth + "1" + closer * depth).encode())
    try:
        ConnectionInfo.from_file(f)
    except ConnectionFileError as e:
        assert str(f) in str(e)


toml_keys = st.sampled_from(
    ["plain", "style", "timeout", "mime-order", "image-protocol", "save", "kernel", "colour"]
)
toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=10),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(toml_keys, inner, max_size=3),
    max_leaves=10,
)


def _params() -> dict[str, dict[str, Any]]:
    return {
        name: {p.name: p for p in cmd.params if p.name}
        for name, cmd in (("start", start), ("attach", attach))
    }


@FAST
@given(
    st.dictionaries(
        st.one_of(toml_keys, st.sampled_from(["start", "attach"])), toml_values, max_size=4
    )
)
def test_config_values_are_accepted_or_one_error_naming_the_file(data: dict[str, Any]) -> None:
    path = Path("/cfg/config.toml")
    try:
        out = defaults_for(data, _params(), path)
    except ConfigError as e:
        assert str(e).startswith(f"config file {path}") and "\n" not in str(e)
        return
    # Accepted values convert with the option's own type, as click will do.
    for cmd, values in out.items():
        for name, value in values.items():
            _params()[cmd][name].type_cast_value(click.Context(click.Command(cmd)), value)


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_config_file_bytes_parse_or_one_error(data: bytes) -> None:
    f = _write(data)
    try:
        read_config(f)
    except ConfigError as e:
        assert str(f) in str(e)


def test_read_small_file_never_reads_past_the_cap(tmp_path: Path) -> None:
    f = tmp_path / "big"
    f.write_bytes(b"x" * 100)
    try:
        paths.read_small_file(f, limit=99)
    except paths.Unreadable as e:
        assert "larger than 99 bytes" in str(e)
    else:
        raise AssertionError("read past the cap")
    assert paths.read_small_file(f, limit=100) == b"x" * 100
