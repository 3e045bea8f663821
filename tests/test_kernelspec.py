"""Kernelspec discovery and loading, in an isolated Jupyter search path."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from kconsole import kernelspec
from kconsole.kernelspec import (
    KernelSpec,
    KernelSpecError,
    NoSuchKernel,
    all_kernel_specs,
    builtin_kernel_spec,
    find_kernel_specs,
    get_kernel_spec,
    resolve_kernel,
)
from kconsole.listing import format_kernelspec_table


@pytest.fixture
def jhome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every Jupyter directory into tmp_path: nothing installed on the machine shows."""
    for var in ("JUPYTER_PATH", "IPYTHONDIR", "XDG_DATA_HOME", "JUPYTER_PREFER_ENV_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    # Skip the system-wide dirs too (they may hold kernels on a developer's machine).
    real = kernelspec.paths.jupyter_path

    def jupyter_path(*subdirs: str) -> list[Path]:
        return [p for p in real(*subdirs) if str(p).startswith(str(tmp_path))]

    monkeypatch.setattr(kernelspec.paths, "jupyter_path", jupyter_path)
    return tmp_path


def install(parent: Path, name: str, **spec: Any) -> Path:
    d = parent / name
    d.mkdir(parents=True)
    data = {"argv": ["mykernel", "-f", "{connection_file}"], "display_name": name, **spec}
    (d / "kernel.json").write_text(json.dumps(data))
    return d


def test_finds_specs_in_data_dir_and_jupyter_path(jhome: Path, monkeypatch: pytest.MonkeyPatch):
    a = install(jhome / "data" / "kernels", "alpha")
    b = install(jhome / "extra" / "kernels", "beta")
    monkeypatch.setenv("JUPYTER_PATH", str(jhome / "extra"))
    found = find_kernel_specs()
    assert found["alpha"] == a
    assert found["beta"] == b


def test_earlier_path_wins(jhome: Path, monkeypatch: pytest.MonkeyPatch):
    first = install(jhome / "p1" / "kernels", "same", display_name="first")
    install(jhome / "p2" / "kernels", "same", display_name="second")
    install(jhome / "data" / "kernels", "same", display_name="user")
    monkeypatch.setenv("JUPYTER_PATH", f"{jhome / 'p1'}:{jhome / 'p2'}")
    assert find_kernel_specs()["same"] == first
    assert get_kernel_spec("same").display_name == "first"


def test_jupyter_path_beats_user_dir_beats_ipython_dir(jhome: Path):
    user = install(jhome / "data" / "kernels", "k", display_name="user")
    install(jhome / "home" / ".ipython" / "kernels", "k", display_name="ipython")
    only_ipython = install(jhome / "home" / ".ipython" / "kernels", "old")
    found = find_kernel_specs()
    assert found["k"] == user
    assert found["old"] == only_ipython


def test_names_are_lowercased_and_invalid_names_skipped(jhome: Path):
    kdir = jhome / "data" / "kernels"
    install(kdir, "MyKernel")
    install(kdir, "bad name")
    install(kdir, "bad\u00e9")
    (kdir / "no-json").mkdir()
    found = find_kernel_specs()
    names = set(found) - {"python3"}
    assert names == {"mykernel"}
    spec = get_kernel_spec("MYKERNEL")
    assert spec.name == "mykernel"
    assert spec.resource_dir == kdir / "MyKernel"


def test_spec_fields_and_defaults(jhome: Path):
    d = install(
        jhome / "data" / "kernels",
        "full",
        language="julia",
        interrupt_mode="message",
        env={"A": "1"},
        metadata={"debugger": True},
    )
    spec = get_kernel_spec("full")
    assert spec == KernelSpec(
        name="full",
        resource_dir=d,
        argv=["mykernel", "-f", "{connection_file}"],
        display_name="full",
        language="julia",
        interrupt_mode="message",
        env={"A": "1"},
        metadata={"debugger": True},
    )
    d2 = jhome / "minimal"
    d2.mkdir()
    (d2 / "kernel.json").write_text('{"argv": ["k"]}')
    minimal = KernelSpec.from_dir("minimal", d2)
    assert (minimal.display_name, minimal.language, minimal.interrupt_mode) == (
        "minimal",
        "",
        "signal",
    )
    assert minimal.env == {} and minimal.metadata == {}


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "expected a JSON object"),
        ('{"display_name": "x"}', "'argv' must be a non-empty list"),
        ('{"argv": []}', "'argv' must be a non-empty list"),
        ('{"argv": ["k", 3]}', "'argv' must be a non-empty list"),
        ('{"argv": ["k"], "interrupt_mode": "poke"}', "'interrupt_mode' must be"),
        ('{"argv": ["k"], "env": {"A": 1}}', "'env' must map strings"),
    ],
)
def test_malformed_kernel_json_gives_one_clear_line(tmp_path: Path, content: str, complaint: str):
    (tmp_path / "kernel.json").write_text(content)
    with pytest.raises(KernelSpecError) as exc:
        KernelSpec.from_dir("broken", tmp_path)
    msg = str(exc.value)
    assert complaint in msg
    assert "'broken'" in msg and "\n" not in msg


def test_missing_kernel_json(tmp_path: Path):
    with pytest.raises(KernelSpecError, match="no kernel.json"):
        KernelSpec.from_dir("gone", tmp_path)


def test_command_substitutes_placeholders_and_python(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/the/prefix")
    major, minor = sys.version_info[:2]
    spec = KernelSpec(
        name="k",
        resource_dir=tmp_path,
        argv=[
            "python",
            "{prefix}/lib/start.py",
            "--resources={resource_dir}",
            "-f",
            "{connection_file}",
            "{unknown}",
            "{{literal}}",
        ],
        display_name="K",
        language="python",
    )
    cmd = spec.command(Path("/run/kernel-1.json"))
    assert cmd == [
        sys.executable,
        "/the/prefix/lib/start.py",
        f"--resources={tmp_path}",
        "-f",
        "/run/kernel-1.json",
        "{unknown}",
        "{{literal}}",
    ]
    for exe in ("python3", f"python{major}", f"python{major}.{minor}"):
        spec.argv[0] = exe
        assert spec.command("c.json")[0] == sys.executable
    # Another interpreter version, or a path, is taken literally.
    for exe in (f"python{major}.{minor + 1}", "/usr/bin/python3", "ipython"):
        spec.argv[0] = exe
        assert spec.command("c.json")[0] == exe
    spec.argv = ["k", "--port={shell_port}"]
    assert spec.command("c.json", extra={"shell_port": 5555}) == ["k", "--port=5555"]


def test_environment_merges_and_substitutes(tmp_path: Path):
    spec = KernelSpec(
        name="k",
        resource_dir=tmp_path,
        argv=["k"],
        display_name="K",
        language="x",
        env={
            "PATH": "/opt/k/bin:${PATH}",
            "GREETING": "hi $USER",
            "MISSING": "${NOT_SET}/x",
            "DOLLAR": "$$5",
        },
    )
    base = {"PATH": "/usr/bin", "USER": "ada", "KEEP": "me"}
    env = spec.environment(base)
    assert env == {
        "PATH": "/opt/k/bin:/usr/bin",
        "USER": "ada",
        "KEEP": "me",
        "GREETING": "hi ada",
        "MISSING": "${NOT_SET}/x",
        "DOLLAR": "$5",
    }
    assert base["PATH"] == "/usr/bin"  # the base is not modified


def test_environment_defaults_to_os_environ(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KCONSOLE_TEST_VAR", "v")
    spec = KernelSpec("k", tmp_path, ["k"], "K", "x", env={"X": "${KCONSOLE_TEST_VAR}!"})
    env = spec.environment()
    assert env["X"] == "v!" and env["KCONSOLE_TEST_VAR"] == "v"


def test_no_such_kernel_lists_known_names(jhome: Path):
    install(jhome / "data" / "kernels", "zeta")
    install(jhome / "data" / "kernels", "alpha")
    with pytest.raises(NoSuchKernel) as exc:
        get_kernel_spec("nope")
    err = exc.value
    assert isinstance(err, LookupError) and isinstance(err, KernelSpecError)
    assert err.name == "nope"
    assert "alpha" in err.known_names and "zeta" in err.known_names
    msg = str(err)
    assert msg.startswith("no such kernel: 'nope' (available: alpha, ")
    assert "zeta" in msg and "\n" not in msg


def test_invalid_name_lookup_is_no_such_kernel(jhome: Path):
    install(jhome / "data" / "kernels", "ok")
    with pytest.raises(NoSuchKernel):
        get_kernel_spec("../data/kernels/ok")


def test_resolve_kernel_unknown_name_offers_builtin(jhome: Path):
    with pytest.raises(NoSuchKernel) as exc:
        resolve_kernel("nope")
    assert "builtin" in exc.value.known_names
    assert "builtin" in str(exc.value)


def test_ipykernel_fallback_when_no_python3_spec(jhome: Path):
    pytest.importorskip("ipykernel")
    found = find_kernel_specs()
    assert found["python3"].name == "resources"
    assert found["python3"].parent.name == "ipykernel"
    spec = get_kernel_spec("python3")
    assert spec.argv == [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert spec.display_name == "Python 3 (ipykernel)"
    assert spec.language == "python"
    assert spec.interrupt_mode == "signal"
    assert resolve_kernel(None) == spec


def test_ipykernel_not_imported_by_discovery(jhome: Path):
    # Importing ipykernel costs a lot of startup time; discovery must only locate it.
    import subprocess

    code = (
        "import sys; from kconsole.kernelspec import find_kernel_specs, resolve_kernel;"
        "find_kernel_specs(); resolve_kernel(None); print('ipykernel' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert out.stdout.strip() == "False"


def test_installed_python3_spec_wins_over_fallback(jhome: Path):
    d = install(jhome / "data" / "kernels", "python3", argv=["python3", "-m", "mine"])
    assert find_kernel_specs()["python3"] == d
    assert resolve_kernel(None).argv == ["python3", "-m", "mine"]


def test_no_python3_and_no_ipykernel_resolves_to_builtin(jhome: Path, monkeypatch):
    monkeypatch.setattr(kernelspec, "_ipykernel_resources", lambda: None)
    assert "python3" not in find_kernel_specs()
    assert resolve_kernel(None) == builtin_kernel_spec()


def test_builtin_kernel_spec():
    spec = builtin_kernel_spec()
    assert spec.name == "builtin"
    assert spec.display_name == "Python 3 (kconsole built-in)"
    assert spec.language == "python"
    assert spec.interrupt_mode == "signal"
    assert spec.command("/c.json") == [sys.executable, "-m", "kconsole.kernel", "-f", "/c.json"]
    pkg = Path(kernelspec.__file__).resolve().parent
    assert spec.resource_dir in (pkg, pkg / "kernel")
    assert resolve_kernel("builtin") == spec
    assert resolve_kernel("BuiltIn") == spec


def test_builtin_shadows_an_installed_spec_named_builtin(jhome: Path):
    install(jhome / "data" / "kernels", "builtin", argv=["other"])
    assert resolve_kernel("builtin") == builtin_kernel_spec()
    specs, errors = all_kernel_specs()
    assert [s.name for s in specs].count("builtin") == 1
    assert errors == []


def test_all_kernel_specs_reports_broken_ones(jhome: Path, monkeypatch):
    monkeypatch.setattr(kernelspec, "_ipykernel_resources", lambda: None)
    install(jhome / "data" / "kernels", "good")
    bad = jhome / "data" / "kernels" / "bad"
    bad.mkdir()
    (bad / "kernel.json").write_text("{")
    specs, errors = all_kernel_specs()
    assert [s.name for s in specs] == ["builtin", "good"]
    assert len(errors) == 1 and "'bad'" in str(errors[0])
    specs, _ = all_kernel_specs(include_builtin=False)
    assert [s.name for s in specs] == ["good"]


def test_format_kernelspec_table(tmp_path: Path):
    specs = [
        KernelSpec("python3", Path("/k/python3"), ["python"], "Python 3 (ipykernel)", "python"),
        KernelSpec("ir", Path("/k/ir"), ["R"], "R", "R"),
        KernelSpec("odd", Path("/k/odd"), ["x"], "No language", ""),
    ]
    table = format_kernelspec_table(specs)
    assert table.splitlines() == [
        "NAME     LANGUAGE  DISPLAY NAME          PATH",
        "python3  python    Python 3 (ipykernel)  /k/python3",
        "ir       R         R                     /k/ir",
        "odd      -         No language           /k/odd",
    ]
    assert format_kernelspec_table({s.name: s for s in specs}) == table
    assert format_kernelspec_table([]) == "NAME  LANGUAGE  DISPLAY NAME  PATH"
