"""Runs ipykernel's vendored message-spec suite against kconsole's built-in kernel.

The kernel is found as a kernelspec installed with kconsole's own installer into a
temporary prefix on JUPYTER_PATH; the suite's ``utils.start_new_kernel`` names it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kconsole.kernel.install import install_kernelspec

KERNEL_NAME = "kconsole-ipykernel-suite"

#: The suite's tests that cannot apply to a kernel without IPython, and why.
SKIPS: dict[str, str] = {
    "test_oinfo_detail": "calls get_ipython() (IPython's InteractiveShell API)",
    "test_single_payload": "calls get_ipython().set_next_input (IPython's InteractiveShell API)",
    "test_kernel_info_request": (
        "needs IPython's version: implementation_version must be >= 2.1 (IPython's "
        "numbering; kconsole's is its own) and 'kernel subshells' (ipykernel 7's)"
    ),
    "test_subshell": (
        "kernel subshells (JEP 91, new in ipykernel 7): the built-in kernel runs one "
        "request at a time and does not claim the feature in supported_features"
    ),
}

#: Tests that fail until another branch lands (strict: an XPASS says remove the entry).
PENDING: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`SKIPS` skipped, each with its reason."""
    for item in items:
        reason = SKIPS.get(item.name)
        if "ipykernel_suite" not in str(item.path):
            continue
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"{item.name}: {reason}"))
        elif item.name in PENDING:
            item.add_marker(pytest.mark.xfail(reason=PENDING[item.name], strict=True))


@pytest.fixture(scope="session")
def _suite_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("ipykernel_suite") / "prefix"
    install_kernelspec(prefix, KERNEL_NAME)
    return prefix / "share" / "jupyter"


@pytest.fixture(autouse=True)
def _builtin_kernelspec(
    jupyter_dirs: Path, _suite_prefix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the shared jupyter_dirs (which clears JUPYTER_PATH): the suite starts its
    # one kernel in the first test's own autouse fixture.
    monkeypatch.setenv("JUPYTER_PATH", str(_suite_prefix))
