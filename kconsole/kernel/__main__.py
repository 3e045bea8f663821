"""``python -m kconsole.kernel -f CONNECTION_FILE``: run the built-in kernel."""

from __future__ import annotations

import os
import sys


def _parse(argv: list[str]) -> str | None:
    connection_file = None
    it = iter(argv)
    for arg in it:
        if arg in ("-f", "--f", "--connection-file", "--existing"):
            connection_file = next(it, None)
        elif arg.startswith(("-f=", "--f=", "--connection-file=")):
            connection_file = arg.split("=", 1)[1]
        elif arg in ("-h", "--help"):
            print(
                "usage: python -m kconsole.kernel [-f CONNECTION_FILE]\n\n"
                "Run kconsole's built-in Python kernel. Without -f, or when the file does\n"
                "not exist, the kernel picks free ports and writes the file itself."
            )
            raise SystemExit(0)
    return connection_file


def main(argv: list[str] | None = None) -> None:
    """Entry point of the kernel process."""
    connection_file = _parse(sys.argv[1:] if argv is None else argv)
    # Figures render off-screen; the kernel shows them as PNG at the end of a cell.
    os.environ.setdefault("MPLBACKEND", "agg")
    import warnings

    warnings.filterwarnings("ignore", message=".*non-interactive, and thus cannot be shown")
    import zmq  # loaded by the kernel anyway: its bind errors are ZMQError

    from ..connection import ConnectionFileError
    from ..protocol import UnknownSignatureScheme
    from ..transport import TransportError
    from .kernel import run_kernel

    try:
        run_kernel(connection_file)
    except (ConnectionFileError, UnknownSignatureScheme, TransportError) as e:
        # One clear line, as every kconsole error: the launcher shows it as the tail.
        print(f"kconsole kernel: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except (OSError, zmq.ZMQError) as e:  # a port taken meanwhile, an address not ours
        print(f"kconsole kernel: cannot listen: {e.strerror or e}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
