"""Kernelspecs: finding, reading and resolving ``kernel.json`` files.

Follows jupyter_client's KernelSpecManager closely enough that ``kconsole`` and
``jupyter kernelspec list`` see the same kernels, without importing jupyter_client
(kconsole must not depend on it at runtime):

- Search path, earlier wins: ``paths.jupyter_path("kernels")`` then ``~/.ipython/kernels``
  (``$IPYTHONDIR/kernels``).
- A kernelspec is a directory holding ``kernel.json``; its name is the directory name,
  lowercased, and must match ``^[a-z0-9._-]+$`` (other directories are skipped).
- If no ``python3`` spec is installed but ipykernel is importable, ipykernel's own spec is
  added, as jupyter_client does.

``builtin`` names kconsole's own kernel (``python -m kconsole.kernel``) and always wins over
an installed spec of the same name in :func:`resolve_kernel`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import string
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import KconsoleError

NATIVE_KERNEL_NAME = "python3"
BUILTIN_KERNEL_NAME = "builtin"
INTERRUPT_MODES = ("signal", "message")

_NAME_RE = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)
# jupyter_client substitutes ``{word}`` and leaves unknown placeholders untouched.
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z0-9_]+)\}")
# argv[0] values that mean "the interpreter running kconsole" (jupyter_client's rule:
# only this interpreter's own version, so a spec pinned to python3.9 stays pinned).
_PYTHON_NAMES = frozenset(
    {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
)


class KernelSpecError(KconsoleError):
    """A kernelspec is missing or malformed (the message is one user-facing line)."""


class NoSuchKernel(KernelSpecError, LookupError):
    """No kernelspec of that name; ``known_names`` lists the ones that exist."""

    def __init__(self, name: str, known_names: Iterable[str] = ()) -> None:
        self.name = name
        self.known_names = sorted(known_names)
        super().__init__(name)  # the message is __str__'s, with the names known

    def __str__(self) -> str:
        known = ", ".join(self.known_names) if self.known_names else "none installed"
        return f"no such kernel: {self.name!r} (available: {known})"


def is_valid_kernel_name(name: str) -> bool:
    """True if ``name`` is a legal kernelspec name (letters, digits, ``.``, ``_``, ``-``)."""
    return bool(_NAME_RE.match(name))


@dataclass
class KernelSpec:
    """One kernelspec: how to start a kernel and what to call it."""

    name: str
    resource_dir: Path
    argv: list[str]
    display_name: str
    language: str
    #: "signal" (SIGINT to the process group) or "message" (interrupt_request on control).
    interrupt_mode: str = "signal"
    env: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def supports_curve(self) -> bool:
        """Whether the spec declares CurveZMQ transport encryption, read as jupyter_client
        8.10 reads it: ``metadata.supported_encryption`` is "curve" or a list holding it."""
        declared = self.metadata.get("supported_encryption")
        if isinstance(declared, str):
            return declared.strip().lower() == "curve"
        if isinstance(declared, (list, tuple)):
            return "curve" in {str(item).strip().lower() for item in declared}
        return False

    @classmethod
    def from_dir(cls, name: str, path: str | os.PathLike[str]) -> KernelSpec:
        """Read ``path/kernel.json``; raise :class:`KernelSpecError` naming the problem."""
        resource_dir = Path(path)
        kfile = resource_dir / "kernel.json"
        where = f"kernelspec {name!r} ({kfile})"
        try:
            data = paths.load_json(paths.read_small_file(kfile))
        except FileNotFoundError:
            raise KernelSpecError(
                f"kernelspec {name!r}: no kernel.json in {resource_dir}"
            ) from None
        except paths.Unreadable as e:
            raise KernelSpecError(f"{where}: cannot read: {e.reason}") from e
        except paths.NotJSON as e:
            raise KernelSpecError(f"{where}: invalid JSON: {e.detail}") from e
        except paths.FileProblem as e:
            raise KernelSpecError(f"{where} {e}") from e
        return cls.from_dict(name, resource_dir, data, where=where)

    @classmethod
    def from_dict(
        cls, name: str, resource_dir: Path, data: Any, *, where: str | None = None
    ) -> KernelSpec:
        """Validate the contents of a ``kernel.json``."""
        where = where or f"kernelspec {name!r}"
        if not isinstance(data, dict):
            raise KernelSpecError(f"{where}: expected a JSON object")
        argv = data.get("argv")
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(a, str) for a in argv)
            or not argv[0]
            or any("\0" in a for a in argv)
        ):
            raise KernelSpecError(f"{where}: 'argv' must be a non-empty list of strings")
        display_name = data.get("display_name", name)
        language = data.get("language", "")
        if not isinstance(display_name, str) or not isinstance(language, str):
            raise KernelSpecError(f"{where}: 'display_name' and 'language' must be strings")
        interrupt_mode = data.get("interrupt_mode", "signal")
        if not isinstance(interrupt_mode, str) or interrupt_mode not in INTERRUPT_MODES:
            raise KernelSpecError(
                f"{where}: 'interrupt_mode' must be 'signal' or 'message', not {interrupt_mode!r}"
            )
        env = data.get("env") or {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and "\0" not in k + v and "=" not in k
            for k, v in env.items()
        ):
            raise KernelSpecError(f"{where}: 'env' must map strings to strings")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise KernelSpecError(f"{where}: 'metadata' must be an object")
        return cls(
            name=name,
            resource_dir=resource_dir,
            argv=list(argv),
            display_name=display_name or name,
            language=language,
            interrupt_mode=interrupt_mode,
            env=dict(env),
            metadata=dict(metadata),
        )

    def command(
        self, connection_file: str | os.PathLike[str], extra: Mapping[str, Any] | None = None
    ) -> list[str]:
        """The argv to run, with ``{connection_file}``, ``{resource_dir}`` and ``{prefix}``
        substituted and a bare ``python``/``python3``/``python3.X`` (this interpreter's
        version) replaced by ``sys.executable``, so the kernel runs in kconsole's own env.

        ``extra`` adds placeholders (the launcher passes the connection fields, as
        jupyter_client does); unknown placeholders are left as they are.
        """
        ns: dict[str, str] = {}
        if extra:
            ns.update({k: str(v) for k, v in extra.items()})
        ns.update(
            connection_file=str(connection_file),
            resource_dir=str(self.resource_dir),
            prefix=sys.prefix,
        )

        def sub(m: re.Match[str]) -> str:
            return ns.get(m.group(1), m.group(0))

        cmd = [_PLACEHOLDER_RE.sub(sub, a) for a in self.argv]
        if cmd[0] in _PYTHON_NAMES:
            cmd[0] = sys.executable
        return cmd

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default ``os.environ``) updated with the spec's env, each value's
        ``${VAR}`` replaced from ``base`` (unknown variables are left as written)."""
        env = dict(os.environ if base is None else base)
        subs = dict(env)  # substitute against the base only, as jupyter_client does
        for k, v in self.env.items():
            env[k] = string.Template(v).safe_substitute(subs)
        return env


def _kernel_dirs() -> list[Path]:
    dirs = paths.jupyter_path("kernels")
    ipython_dir = os.environ.get("IPYTHONDIR")
    base = Path(ipython_dir).expanduser() if ipython_dir else Path.home() / ".ipython"
    dirs.append(base / "kernels")
    return dirs


def _list_kernels_in(directory: Path) -> dict[str, Path]:
    try:
        entries = sorted(directory.iterdir())
    except OSError:  # missing or unreadable: nothing there, as for jupyter_client
        return {}
    found: dict[str, Path] = {}
    for entry in entries:
        if not is_valid_kernel_name(entry.name) or not (entry / "kernel.json").is_file():
            continue
        found.setdefault(entry.name.lower(), entry)
    return found


def _ipykernel_resources() -> Path | None:
    # find_spec locates the package without importing it (importing ipykernel is slow).
    try:
        spec = importlib.util.find_spec("ipykernel")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


def _ipykernel_spec(resource_dir: Path) -> KernelSpec:
    return KernelSpec(
        name=NATIVE_KERNEL_NAME,
        resource_dir=resource_dir,
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="Python 3 (ipykernel)",
        language="python",
        metadata={"debugger": True},
    )


def find_kernel_specs() -> dict[str, Path]:
    """Installed kernelspecs: lowercased name -> resource dir, earlier search path wins.

    Adds ipykernel's own ``python3`` spec when none is installed and ipykernel is importable.
    """
    specs: dict[str, Path] = {}
    for d in _kernel_dirs():
        for name, path in _list_kernels_in(d).items():
            specs.setdefault(name, path)
    if NATIVE_KERNEL_NAME not in specs:
        res = _ipykernel_resources()
        if res is not None:
            specs[NATIVE_KERNEL_NAME] = res
    return specs


def get_kernel_spec(name: str) -> KernelSpec:
    """Load the kernelspec called ``name`` (case-insensitive).

    Raises :class:`NoSuchKernel` if there is none, :class:`KernelSpecError` if it is broken.
    """
    specs = find_kernel_specs()
    key = name.lower()
    path = specs.get(key) if is_valid_kernel_name(name) else None
    if path is None:
        raise NoSuchKernel(name, specs)
    if key == NATIVE_KERNEL_NAME and not (path / "kernel.json").is_file():
        # The ipykernel fallback: its resources dir has no kernel.json, the spec is code.
        return _ipykernel_spec(path)
    return KernelSpec.from_dir(key, path)


def builtin_kernel_spec() -> KernelSpec:
    """kconsole's own Python kernel, run with this interpreter."""
    pkg = Path(__file__).resolve().parent
    kernel_pkg = pkg / "kernel"
    return KernelSpec(
        name=BUILTIN_KERNEL_NAME,
        resource_dir=kernel_pkg if kernel_pkg.is_dir() else pkg,
        argv=[sys.executable, "-m", "kconsole.kernel", "-f", "{connection_file}"],
        display_name="Python 3 (kconsole built-in)",
        language="python",
        interrupt_mode="signal",
        metadata={"supported_encryption": ["curve"]},
    )


def connection_kernel_name(spec: KernelSpec) -> str:
    """The ``kernel_name`` a connection file of ``spec``'s kernel gets: its name, but for
    the built-in kernel that of an installed kernelspec running it (``kconsole kernel
    install``), else empty: ``builtin`` is no name another tool can resolve."""
    if spec.name != BUILTIN_KERNEL_NAME:
        return spec.name
    for name, path in find_kernel_specs().items():
        if name == BUILTIN_KERNEL_NAME:
            continue
        try:
            argv = get_kernel_spec(name).argv if path.is_dir() else []
        except (KernelSpecError, OSError):
            continue
        if argv[1:3] == ["-m", "kconsole.kernel"]:
            return name
    return ""


def resolve_kernel(name: str | None) -> KernelSpec:
    """The spec to start for ``--kernel name``.

    ``None``: the ``python3`` kernelspec if there is one (ipykernel), else the built-in
    kernel. ``"builtin"``: the built-in kernel. Otherwise the installed spec of that name.
    """
    if name is None:
        try:
            return get_kernel_spec(NATIVE_KERNEL_NAME)
        except NoSuchKernel:
            return builtin_kernel_spec()
    if name.lower() == BUILTIN_KERNEL_NAME:
        return builtin_kernel_spec()
    try:
        return get_kernel_spec(name)
    except NoSuchKernel as e:
        # "builtin" is always available, so the error should offer it too.
        raise NoSuchKernel(name, {*e.known_names, BUILTIN_KERNEL_NAME}) from e


def all_kernel_specs(
    include_builtin: bool = True,
) -> tuple[list[KernelSpec], list[KernelSpecError]]:
    """Every loadable kernelspec sorted by name (the built-in kernel first when asked),
    and the errors of those that could not be read, for ``kconsole kernels``."""
    specs: list[KernelSpec] = [builtin_kernel_spec()] if include_builtin else []
    errors: list[KernelSpecError] = []
    for name in sorted(find_kernel_specs()):
        if include_builtin and name == BUILTIN_KERNEL_NAME:
            continue  # shadowed: resolve_kernel("builtin") never reaches it
        try:
            specs.append(get_kernel_spec(name))
        except KernelSpecError as e:
            errors.append(e)
    return specs, errors
