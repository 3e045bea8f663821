"""The docs move with the code: README, man page and --help name the same options."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from kconsole.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def walk(cmd: click.Command, path: tuple[str, ...] = ()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from walk(sub, (*path, name))


def cli_options() -> set[str]:
    opts = set()
    for _, cmd in walk(cli):
        for p in cmd.params:
            if isinstance(p, click.Option):
                opts.update(o for o in [*p.opts, *p.secondary_opts] if o.startswith("--"))
    return opts - {"--help", "--version"}


def man_text() -> str:
    return (ROOT / "man" / "kconsole.1").read_text().replace("\\-", "-")


def test_every_option_is_documented_in_readme_and_man() -> None:
    readme = (ROOT / "README.md").read_text()
    man = man_text()
    for opt in sorted(cli_options()):
        assert re.search(re.escape(opt) + r"(?![\w-])", readme), f"{opt} missing from README.md"
        assert re.search(re.escape(opt) + r"(?![\w-])", man), f"{opt} missing from man/kconsole.1"


def test_docs_name_no_option_that_does_not_exist() -> None:
    known = cli_options() | {"--help", "--version"}
    for name, text in (("man", man_text()), ("README", (ROOT / "README.md").read_text())):
        # Only kconsole's own command lines: skip pip/pytest/jupyter flags in the README.
        lines = [
            ln for ln in text.splitlines() if "kconsole" in ln or ln.startswith(("|", ".B", ".TP"))
        ]
        for ln in lines:
            if (
                ln.lstrip().startswith(("pip ", "python", "ruff", "mypy"))
                or "jupyter console" in ln
            ):
                continue
            for opt in re.findall(r"(?<![\w-])--[a-z][a-z-]*", ln):
                assert opt in known, f"{name} documents {opt}, which kconsole does not have: {ln!r}"


def test_every_command_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    man = man_text()
    for path, _ in walk(cli):
        if path:
            words = " ".join(path)
            assert f"kconsole {words}" in readme, f"`kconsole {words}` missing from README"
            assert f"kconsole {words}" in man.replace(".B ", ""), (
                f"`kconsole {words}` missing from man"
            )


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_page_renders() -> None:
    out = subprocess.run(
        ["man", "-l", str(ROOT / "man" / "kconsole.1")],
        capture_output=True,
        text=True,
        env={"MANPAGER": "cat", "PATH": "/usr/bin:/bin", "MANWIDTH": "80"},
    )
    assert out.returncode == 0, out.stderr
    assert "kconsole - a terminal console for Jupyter kernels" in out.stdout


def test_readme_tables_are_well_formed() -> None:
    # A table row after a blank line must start a new table (header + separator),
    # or Markdown renders the rows as plain text.
    lines = (ROOT / "README.md").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            assert i + 1 < len(lines) and re.match(r"\|[-| :]+\|$", lines[i + 1]), (
                f"README.md:{i + 1}: a table row with no header separator after it: {line!r}"
            )


def test_every_exit_status_is_in_the_man_page_and_the_readme() -> None:
    # kconsole.errors.ExitStatus is the one definition; the docs list the same values.
    from kconsole.errors import ExitStatus

    man = man_text()
    section = man[man.index(".SH EXIT STATUS") :]
    section = section[: section.index(".SH", 1)]
    listed = {int(n) for n in re.findall(r"^\.B (\d+)", section, re.M)}
    listed |= {int(n) for n in re.findall(r"^\.B \d+, (\d+)", section, re.M)}
    assert {int(s) for s in ExitStatus} <= listed, (sorted(listed), list(ExitStatus))
    readme = (ROOT / "README.md").read_text()
    status_line = readme[readme.index("Exit status: ") :].split("\n\n", 1)[0]
    for s in ExitStatus:
        assert re.search(rf"(?<!\d){int(s)}(?!\d)", status_line), f"{s!r} missing from README"


def test_debug_and_its_variable_are_documented() -> None:
    for name, text in (("man", man_text()), ("README", (ROOT / "README.md").read_text())):
        assert "KCONSOLE_DEBUG=1" in text, name
    assert ".B KCONSOLE_DEBUG" in man_text()  # in ENVIRONMENT, beside the other variables
