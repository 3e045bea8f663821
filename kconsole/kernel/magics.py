"""A minimal IPython-style magic and shell layer for the built-in kernel.

Theory of this module
---------------------
As IPython does, a cell is *transformed* into plain Python before it is compiled: a
line that starts (after its indentation) with ``!cmd`` becomes ``_kc_system('cmd')``,
``x = !cmd`` becomes ``x = _kc_getoutput('cmd')``, ``%name args`` becomes
``_kc_line_magic('name', 'args')`` and a cell whose first line is ``%%name args``
becomes one ``_kc_cell_magic('name', 'args', body)``. So magics work inside loops and
functions, line numbers stay those of the cell, and the shell compiles the result as
any other cell. A line is transformed only where a statement may start: not inside a
string, brackets or after a backslash continuation. The ``_kc_*`` functions live in
``builtins`` (the user namespace stays clean for ``%who``) and are installed the first
time a cell needs them. They find the user's namespace as their caller's frame.

``!cmd`` runs in a pseudo-terminal, as IPython's does: output arrives as the command
writes it (line-buffered programs too), stderr joins stdout, lines end in ``\\r\\n``;
the kernel's interrupt stops the command (``^C``), not the cell.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any


class UsageError(Exception):
    """A magic used wrongly (or unknown): shown as one line, without a traceback."""


class SList(list[str]):
    """The lines of a command's output (IPython's SList, in small): ``.s`` joins them
    with spaces, ``.n`` with newlines, ``.l`` is the list itself."""

    @property
    def s(self) -> str:
        return " ".join(self)

    @property
    def n(self) -> str:
        return "\n".join(self)

    @property
    def l(self) -> list[str]:  # noqa: E743 - IPython's name
        return list(self)


# -- the transform -------------------------------------------------------------------

# Patterns, compiled (and cached by re) on first use: kernel_info imports this module
# for the banner, and compiling them all costs more than the rest of the import.
_MAY_HAVE_MAGIC = r"(?m)^[ \t]*(?:[^\n]*=[ \t]*)?[!%]"
# As IPython 8: a magic's name is everything up to the first blank (`%foo-bar` is one
# unknown name, `%%time` on a later line the line magic `%time`'s unknown cousin).
_LINE_MAGIC = r"([ \t]*)%(\S*)[ \t]*(.*)$"
_SHELL = r"([ \t]*)(!!?)(.*)$"
_ASSIGN = r"([ \t]*)(\S.*?)[ \t]*=[ \t]*([!%])(.*)$"  # the target checked by _is_target


def transform_cell(code: str) -> str:
    """``code`` with its magic and ``!`` lines turned into Python calls (IPython-style).

    Code without such lines is returned unchanged (the same string).
    """
    if "%" not in code and "!" not in code:
        return code
    lines = code.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first][:1] in " \t" and lines[first].lstrip().startswith("%%"):
        import textwrap

        # An indented cell (pasted from a block): IPython dedents it first.
        lines = textwrap.dedent(code).split("\n")
    if first is not None and lines[first].startswith("%%"):
        head = lines[first][2:]
        name, _, args = head.strip().partition(" ")
        body = "\n".join(lines[first + 1 :])
        _install()
        return "\n" * first + f"_kc_cell_magic({name!r}, {args.strip()!r}, {body!r})"
    if not re.search(_MAY_HAVE_MAGIC, code):
        return code
    out: list[str] = []
    changed = False
    starts = _statement_starts(lines)
    i = 0
    while i < len(lines):
        new = _transform_line(lines[i]) if starts[i] else None
        end = _continued_end(lines, i) if new is not None else i
        if end > i:  # `!cmd \` + more lines: one command, joined as IPython does
            new = _transform_line(_join_continued(lines[i : end + 1]))
        if new is None:
            out.append(lines[i])
        else:
            changed = True
            out.append(new)
            out.extend([""] * (end - i))  # the cell's later lines keep their numbers
        i = end + 1
    if not changed:
        return code
    _install()
    return "\n".join(out)


def _continued_end(lines: list[str], i: int) -> int:
    """The last line of the backslash-continued line starting at ``lines[i]``."""
    while lines[i].endswith("\\") and i + 1 < len(lines):
        i += 1
    return i


def _join_continued(parts: list[str]) -> str:
    # IPython's assemble_continued_line: each backslash dropped, the parts joined by a space.
    return " ".join([p.rstrip()[:-1] for p in parts[:-1]] + [parts[-1].rstrip()])


def _transform_line(line: str) -> str | None:
    """The Python for one magic or ``!`` line, or None when it is neither."""
    m = re.match(_ASSIGN, line)
    if m and _is_target(m.group(2)):
        indent, target, kind, rest = m.groups()
        call = f"_kc_getoutput({rest.strip()!r})" if kind == "!" else _magic_call("%" + rest)
        return None if call is None else f"{indent}{target} = {call}"
    stripped = line.lstrip(" \t")
    indent = line[: len(line) - len(stripped)]
    if stripped.startswith("!") and not stripped.startswith("!="):
        call = _shell_call(stripped)
    elif stripped.startswith("%"):
        call = _magic_call(stripped)
    else:
        return None
    return None if call is None else indent + call


def _is_target(text: str) -> bool:
    """Whether ``text`` is what may stand left of ``=`` (``x``, ``a, b``, ``d['k']``)."""
    if re.fullmatch(r"[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*", text):
        return True  # the common case, without parsing
    import ast

    try:
        tree = ast.parse(text + " = 0")
    except SyntaxError:
        return False
    return len(tree.body) == 1 and isinstance(tree.body[0], ast.Assign)


def _shell_call(text: str) -> str | None:
    m = re.match(_SHELL, text)
    if not m:
        return None
    _, bangs, cmd = m.groups()
    return f"_kc_getoutput({cmd.strip()!r})" if bangs == "!!" else f"_kc_system({cmd.strip()!r})"


def _magic_call(text: str) -> str | None:
    m = re.match(_LINE_MAGIC, text)
    if not m:
        return None
    _, name, args = m.groups()
    return f"_kc_line_magic({name!r}, {args.strip()!r})"


def _statement_starts(lines: list[str]) -> list[bool]:
    """For each line: may a statement start there (not in a string, brackets or after
    a backslash)? A line that will be transformed is not scanned as Python."""
    starts: list[bool] = []
    depth = 0
    quote: str | None = None
    cont = absorbed = False
    for line in lines:
        start = depth == 0 and quote is None and not cont
        starts.append(start)
        if absorbed:  # a continuation of a magic line: shell text, not Python
            absorbed = line.endswith("\\")
            cont = absorbed
            starts[-1] = False
            continue
        cont = False
        if start and _transform_line(line) is not None:
            absorbed = cont = line.endswith("\\")
            continue
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if quote is not None:
                if c == "\\":
                    if i == n - 1 and len(quote) == 1:
                        cont = True  # the string goes on on the next line
                    i += 2
                    continue
                if line.startswith(quote, i):
                    i += len(quote)
                    quote = None
                    continue
                i += 1
                continue
            if c == "#":
                break
            if c in "'\"":
                triple = line[i : i + 3]
                quote = triple if triple in ("'''", '"""') else c
                i += len(quote)
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth = max(0, depth - 1)
            elif c == "\\" and i == n - 1:
                cont = True
            i += 1
        if quote is not None and len(quote) == 1 and not cont:
            quote = None  # a one-quote string does not span lines (but for a backslash)
    return starts


def cell_magic_is_complete(code: str) -> dict[str, Any] | None:
    """``is_complete`` of a ``%%`` cell (complete once it ends with a blank line, as in
    IPython), or None when ``code`` is not one."""
    if not code.lstrip("\n").startswith("%%"):
        return None
    if code.splitlines()[-1].strip():
        return {"status": "incomplete", "indent": ""}
    return {"status": "complete"}


def continues_magic_line(code: str) -> bool:
    """Whether ``code`` ends inside a backslash-continued ``!``/``%`` line (for
    ``is_complete``: the command goes on; a backslash in a comment does not)."""
    lines = code.split("\n")
    i = len(lines) - 1
    while i > 0 and lines[i - 1].endswith("\\"):
        i -= 1
    return _statement_starts(lines)[i] and _transform_line(lines[i]) is not None


# -- running -------------------------------------------------------------------------

_installed = False


def _install() -> None:
    global _installed
    if _installed:
        return
    b: Any = builtins
    b._kc_system = system
    b._kc_getoutput = getoutput
    b._kc_line_magic = line_magic
    b._kc_cell_magic = cell_magic
    _installed = True


def _caller(depth: int = 2) -> FrameType:
    return sys._getframe(depth)


def _namespace(frame: FrameType) -> dict[str, Any]:
    ns = dict(frame.f_globals)
    if frame.f_locals is not frame.f_globals:
        ns.update(frame.f_locals)
    return ns


_EXPANSION = r"\{([^{}]+)\}|\$(\$|[A-Za-z_]\w*)"


def expand(cmd: str, ns: dict[str, Any]) -> str:
    """IPython's variable expansion, in one pass: ``{expr}`` and ``$name`` from ``ns``;
    ``$$`` is ``$``. What does not evaluate (``${HOME}``, awk's ``{print $1}``) is left
    as written, for the shell."""

    def sub(m: re.Match[str]) -> str:
        expr, name = m.groups()
        if expr is not None:
            try:
                return str(eval(expr, ns))
            except Exception:
                return m.group(0)
        if name == "$":
            return "$"
        return str(ns[name]) if name in ns else m.group(0)

    return re.sub(_EXPANSION, sub, cmd)


def system(cmd: str) -> None:
    """``!cmd``: run ``cmd`` in a shell, its output streamed to stdout as it comes;
    the exit status goes to ``_exit_code``."""
    frame = _caller()
    cmd = expand(cmd, _namespace(frame))
    if re.search(r"(?<![&|>])&[ \t]*$", cmd):
        # The pty hangs a job up as soon as the shell exits (that is what ties commands
        # to the kernel's life): refuse it, as ipykernel does, rather than pretend.
        raise UsageError("Background processes not supported.")
    frame.f_globals["_exit_code"] = run_streamed(cmd)


def getoutput(cmd: str) -> SList:
    """``x = !cmd``: the command's output (stderr included) as a list of lines. An
    interrupt ends the command, not the cell (as in IPython): the lines so far."""
    import signal
    import subprocess

    frame = _caller()
    # In the kernel's process group (no new session, no pty: a pipe, as IPython's), so
    # whoever kills or interrupts the kernel's group reaches the command too.
    p = subprocess.Popen(
        _shell_argv(expand(cmd, _namespace(frame)), "/bin/sh"),
        shell=os.name == "nt",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out: Any = p.stdout
    data = bytearray()
    try:
        for chunk in iter(lambda: out.read1(65536), b""):
            data += chunk
        code = p.wait()
    except KeyboardInterrupt:
        p.send_signal(signal.SIGINT)  # a pid-only interrupt did not reach it
        try:
            p.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        print("^C")
        code = -int(signal.SIGINT)
    finally:
        out.close()
    frame.f_globals["_exit_code"] = code
    return SList(data.decode("utf-8", "replace").splitlines())


_POSIX_SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "mksh")


def _shell_argv(cmd: str, shell: str | None = None) -> Any:
    """The argv that runs ``cmd`` with ``shell`` (default: the user's ``$SHELL``, as
    IPython's ``!``, when it is a POSIX shell; else /bin/sh). A string on Windows."""
    if os.name == "nt":
        return cmd
    if shell is None:
        user = os.environ.get("SHELL", "")
        shell = user if os.path.basename(user) in _POSIX_SHELLS else "/bin/sh"
    return [shell, "-c", cmd]


def run_streamed(cmd: str) -> int:
    """Run ``cmd`` with the shell on a pseudo-terminal (a pipe where there is none),
    writing its output to ``sys.stdout`` as it arrives; SIGINT stops it."""
    import signal
    import subprocess

    try:
        master, slave = os.openpty()
    except (AttributeError, OSError):  # Windows, or out of ptys
        master = slave = -1
    if slave >= 0:
        _set_size(slave)
        cmd = _take_terminal(slave) + cmd
    out: Any = slave if slave >= 0 else subprocess.PIPE
    try:
        p = subprocess.Popen(
            _shell_argv(cmd),
            shell=os.name == "nt",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out if slave >= 0 else subprocess.STDOUT,
            start_new_session=hasattr(os, "killpg"),
        )
    finally:
        if slave >= 0:
            os.close(slave)
    try:
        if master >= 0:
            _pump_pty(master, p)
        else:
            _pump_pipe(p)
        return int(p.wait())
    except KeyboardInterrupt:
        _stop(p, signal.SIGINT)
        print("^C")
        return -int(signal.SIGINT)
    finally:
        if master >= 0:
            os.close(master)


def _pump_pty(master: int, p: Any) -> None:
    import codecs
    import select

    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        while True:
            if not select.select([master], [], [], 0.1)[0]:
                if p.poll() is not None and not select.select([master], [], [], 0)[0]:
                    break  # exited; a background child may keep the terminal open
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not data:
                break
            sys.stdout.write(decoder.decode(data))
    finally:
        sys.stdout.write(decoder.decode(b"", final=True))


def _pump_pipe(p: Any) -> None:
    # A thread reads (a pipe cannot be select()ed everywhere); the main thread polls
    # in sleeps, which an interrupt breaks on every platform.
    import threading
    import time

    t = threading.Thread(target=_copy, args=(p.stdout, sys.stdout), daemon=True)
    t.start()
    while p.poll() is None:
        time.sleep(0.05)
    t.join()


def _copy(src: Any, dst: Any) -> None:
    """Copy a binary pipe to a text stream as data arrives, until EOF."""
    import codecs

    dec = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        for chunk in iter(lambda: src.read1(65536), b""):
            dst.write(dec.decode(chunk))
        dst.write(dec.decode(b"", final=True))
    finally:
        src.close()


def _take_terminal(slave: int) -> str:
    """A shell prefix that makes the pty the command's controlling terminal, as a real
    terminal (and IPython's pexpect) is: when the kernel dies, however it dies, the
    closed pty hangs the command up instead of leaving it running. (The shell, leader
    of its new session, opening the tty acquires it; no preexec_fn in a threaded
    process.)"""
    import shlex

    try:
        return f"exec 3<>{shlex.quote(os.ttyname(slave))}; exec 3>&-; "
    except OSError:
        return ""


def _set_size(fd: int, rows: int = 24, cols: int = 80) -> None:
    # A terminal of 0x0 makes `ls` and friends lay out oddly; pexpect's default size.
    try:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    except Exception:
        pass


def _stop(p: Any, sig: int) -> None:
    """Send ``sig`` to the command's process group; kill it if it is still there 1 s on."""
    import subprocess

    def send(s: int) -> None:
        try:
            if hasattr(os, "killpg"):
                os.killpg(p.pid, s)
            else:
                p.kill()  # Windows: no signal reaches a console-less child
        except OSError:
            pass

    send(sig)
    try:
        p.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        import signal

        send(getattr(signal, "SIGKILL", signal.SIGTERM))
        p.wait()


# -- the magics ----------------------------------------------------------------------

LineMagic = Callable[[str, FrameType], Any]
CellMagic = Callable[[str, str, FrameType], Any]


def line_magic(name: str, args: str) -> Any:
    """``%name args``: run the line magic ``name`` (its value is the line's)."""
    fn = LINE_MAGICS.get(name)
    if fn is None:
        raise UsageError(f"Line magic function `%{name}` not found.")
    return fn(args, _caller())


def cell_magic(name: str, args: str, body: str) -> Any:
    """``%%name args`` + body: run the cell magic ``name``."""
    fn = CELL_MAGICS.get(name)
    if fn is None:
        raise UsageError(f"Cell magic `%%{name}` not found.")
    return fn(args, body, _caller())


def _format_time(timespan: float, precision: int = 3) -> str:
    """A duration as IPython writes it (``5.96 μs``, ``1min 3s``)."""
    import math

    if timespan >= 60.0:
        parts = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
        out = []
        left = timespan
        for suffix, length in parts:
            value = int(left / length)
            if value > 0:
                left = left % length
                out.append(f"{value}{suffix}")
            if left < 1:
                break
        return " ".join(out)
    units = ["s", "ms", "μs", "ns"]
    order = min(-int(math.floor(math.log10(timespan)) // 3), 3) if timespan > 0 else 3
    scaled = timespan * [1, 1e3, 1e6, 1e9][order]
    return f"{scaled:.{precision}g} {units[order]}"


def _compile_cell(src: str, name: str) -> tuple[Any, Any]:
    """(statements, trailing expression or None) of ``src``, compiled."""
    import ast

    tree = _parse(src, name)
    last = None
    tail = tree.body[-1] if tree.body else None
    if isinstance(tail, ast.Expr):
        tree.body.pop()
        last = compile(ast.Expression(tail.value), name, "eval")
    return compile(tree, name, "exec"), last


def _cpu_times() -> tuple[float, float]:
    """(user, system) CPU seconds of this process: getrusage's microseconds where there
    is one (as IPython), os.times()'s 10 ms ticks elsewhere."""
    try:
        import resource
    except ImportError:
        t = os.times()
        return t.user, t.system
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _parse(src: str, name: str) -> Any:
    # compile(), not ast.parse(): a SyntaxError then has no frame of ast.py to show.
    import ast

    return compile(transform_cell(src), name, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)


def _time(args: str, frame: FrameType, body: str | None = None) -> Any:
    import time

    src = args if body is None else body
    stmts, last = _compile_cell(src, "<magic-time>")
    g, loc = frame.f_globals, frame.f_locals
    t0, w0 = _cpu_times(), time.perf_counter()
    try:
        exec(stmts, g, loc)
        return eval(last, g, loc) if last is not None else None
    finally:
        w1, t1 = time.perf_counter(), _cpu_times()
        user, sys_ = t1[0] - t0[0], t1[1] - t0[1]
        print(
            f"CPU times: user {_format_time(user)}, sys: {_format_time(sys_)}, "
            f"total: {_format_time(user + sys_)}"
        )
        print(f"Wall time: {_format_time(w1 - w0)}")


class TimeitResult:
    """What ``%timeit -o`` returns (IPython's attributes, in small)."""

    def __init__(self, loops: int, repeat: int, timings: list[float], precision: int) -> None:
        self.loops = loops
        self.repeat = repeat
        self.all_runs = timings
        self.timings = [t / loops for t in timings]
        self.best = min(self.timings)
        self.worst = max(self.timings)
        self.average = sum(self.timings) / len(self.timings)
        self.stdev = (sum((x - self.average) ** 2 for x in self.timings) / len(self.timings)) ** 0.5
        self._precision = precision

    def __str__(self) -> str:
        return (
            f"{_format_time(self.average, self._precision)} ± "
            f"{_format_time(self.stdev, self._precision)} per loop (mean ± std. dev. of "
            f"{self.repeat} run{'' if self.repeat == 1 else 's'}, "
            f"{self.loops:,} loop{'' if self.loops == 1 else 's'} each)"
        )

    def __repr__(self) -> str:
        return f"<TimeitResult : {self}>"


def _timeit(args: str, frame: FrameType, body: str | None = None) -> Any:
    import ast
    import timeit

    number, repeat, precision, quiet, ret = 0, 7, 3, False, False
    rest = args.strip()
    while rest.startswith("-"):
        opt, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        flag, value = opt[:2], opt[2:]
        if flag in ("-n", "-r", "-p"):
            if not value:
                value, _, rest = rest.partition(" ")
                rest = rest.lstrip()
            try:
                n = int(value)
            except ValueError:
                raise UsageError(f"option {flag} needs a number, not {value!r}") from None
            if flag == "-n":
                number = n
            elif flag == "-r":
                repeat = n
            else:
                precision = n
        elif opt == "-q":
            quiet = True
        elif opt == "-o":
            ret = True
        else:
            raise UsageError(f"timeit: unknown option {opt} (-n N, -r R, -p P, -q, -o)")
    setup, stmt = (rest, body) if body is not None else ("pass", rest)
    if not stmt.strip():
        return None  # `%timeit` alone: nothing to time (IPython does nothing either)
    template = ast.parse(
        "def inner(_it, _timer):\n    _setup\n    _t0 = _timer()\n"
        "    for _i in _it:\n        _stmt\n    _t1 = _timer()\n    return _t1 - _t0\n"
    )
    fn = template.body[0]
    assert isinstance(fn, ast.FunctionDef)
    setup_body = _parse(setup or "pass", "<magic-timeit>").body or [ast.Pass()]
    stmt_body = _parse(stmt, "<magic-timeit>").body or [ast.Pass()]
    loop = fn.body[2]
    assert isinstance(loop, ast.For)
    loop.body = stmt_body
    fn.body[0:1] = setup_body
    code = compile(ast.fix_missing_locations(template), "<magic-timeit>", "exec")
    ns = _namespace(frame)
    exec(code, ns)
    timer = timeit.Timer()
    timer.inner = ns["inner"]  # type: ignore[attr-defined]
    if number <= 0:
        for index in range(10):  # as IPython: the first 10**k loops taking >= 0.2 s
            number = 10**index
            if timer.timeit(number) >= 0.2:
                break
    result = TimeitResult(number, max(1, repeat), timer.repeat(max(1, repeat), number), precision)
    if not quiet:
        if result.worst > 4 * result.best > 0 and result.worst > 1e-6:
            print(
                f"The slowest run took {result.worst / result.best:0.2f} times longer than "
                "the fastest. This could mean that an intermediate result is being cached."
            )
        print(result)
    return result if ret else None


_old_dirs: list[str] = []


def _pwd(args: str, frame: FrameType) -> str:
    return os.getcwd()


def _cd(args: str, frame: FrameType) -> None:
    target = expand(args.strip(), _namespace(frame))
    if target.startswith("-q "):
        target = target[3:].strip()
    if not target:
        target = os.path.expanduser("~")
    elif target == "-":
        if not _old_dirs:
            raise UsageError("cd -: no previous directory")
        target = _old_dirs[-1]
    target = os.path.expanduser(target)
    here = os.getcwd()
    try:
        os.chdir(target)
    except OSError as e:
        print(e)  # as IPython: a message, not an error
        return
    _old_dirs.append(here)
    print(os.getcwd())


_SECRET = ("key", "token", "secret")


def _env(args: str, frame: FrameType) -> Any:
    args = args.strip()
    if not args:
        env = dict(os.environ)
        for k in env:  # hide likely secrets when showing everything, as IPython does
            if any(s in k.lower() for s in _SECRET):
                env[k] = "<hidden>"
        return env
    if "=" in args or " " in args:
        sep = "=" if "=" in args.split(" ", 1)[0] else " "
        name, _, value = args.partition(sep)
        name, value = name.strip(), expand(value.strip(), _namespace(frame))
        if not name:
            raise UsageError("usage: %env NAME=VALUE")
        os.environ[name] = value
        print(f"env: {name}={value}")
        return None
    if args in os.environ:
        return os.environ[args]
    raise UsageError(f"Environment does not have key: {args}")


def _who(args: str, frame: FrameType) -> None:
    types = set(args.split())
    names = sorted(
        n
        for n, v in frame.f_globals.items()
        if not n.startswith("_") and (not types or type(v).__name__ in types)
    )
    if not names:
        print(
            "No variables match your requested type."
            if types
            else "Interactive namespace is empty."
        )
        return
    for i, n in enumerate(names, 1):
        print(n + "\t", end=" ")
        if i % 9 == 0:
            print()
    print()


def _matplotlib(args: str, frame: FrameType) -> None:
    backend = args.strip() or "inline"
    if backend != "inline":
        raise UsageError(f"the built-in kernel shows figures inline only, not {backend!r}")
    # The kernel shows every open figure after each cell (displays.show_figures): all
    # matplotlib needs is a non-GUI backend.
    os.environ["MPLBACKEND"] = "agg"
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.switch_backend("agg")
    elif "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("agg")


def _pip(args: str, frame: FrameType) -> None:
    import shlex

    run_streamed(f"{shlex.quote(sys.executable)} -m pip {args}")
    print("Note: you may need to restart the kernel to use updated packages.")


class _Listing:
    def __repr__(self) -> str:
        return lsmagic_text()


def _lsmagic(args: str, frame: FrameType) -> _Listing:
    return _Listing()


def lsmagic_text() -> str:
    """What ``%lsmagic`` shows."""
    return (
        "Available line magics:\n"
        + "  ".join(f"%{n}" for n in sorted(LINE_MAGICS))
        + "\n\nAvailable cell magics:\n"
        + "  ".join(f"%%{n}" for n in sorted(CELL_MAGICS))
        + "\n\nShell commands: !cmd (output streamed), x = !cmd (its lines), $name and {expr}"
        " expanded."
    )


# Runs "$@" (the script's shell) as the leader of a new process group, beside a watcher
# that reads the kernel's end of a pipe: when the kernel dies, however it dies, the pipe
# closes and the watcher kills the group (the script and its jobs). When the script ends,
# the kernel writes a line and the watcher leaves quietly (background jobs live on).
# (/dev/fd: dash redirects single-digit descriptors only; without it, no watcher.)
_LIFELINE = (
    'f=/dev/fd/$1; shift; [ -r "$f" ] && (trap "" INT; read _ <"$f" || kill -KILL 0) '
    '</dev/null >/dev/null 2>&1 & exec "$@"'
)


def _script(shell: str) -> CellMagic:
    """``%%bash`` / ``%%sh``: the body on the shell's stdin, stdout and stderr streamed
    as such; a non-zero exit raises CalledProcessError, as in IPython."""

    def run(args: str, body: str, frame: FrameType) -> None:
        import signal
        import subprocess
        import threading

        argv = [shell, *args.split()]
        life_r = life_w = -1
        if hasattr(os, "killpg"):
            life_r, life_w = os.pipe()
            argv = ["/bin/sh", "-c", _LIFELINE, "sh", str(life_r), *argv]
        try:
            p = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=hasattr(os, "killpg"),  # a group _stop can signal
                pass_fds=(life_r,) if life_r >= 0 else (),
            )
        except OSError as e:
            if life_w >= 0:
                os.close(life_w)
            raise UsageError(f"%%{shell}: cannot run {shell}: {e.strerror}") from None
        finally:
            if life_r >= 0:
                os.close(life_r)
        threads = [
            threading.Thread(target=_copy, args=(p.stdout, sys.stdout), daemon=True),
            threading.Thread(target=_copy, args=(p.stderr, sys.stderr), daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            assert p.stdin is not None
            try:
                p.stdin.write(body.encode())
                p.stdin.close()
            except BrokenPipeError:
                pass
            p.wait()
            for t in threads:
                t.join()
        except KeyboardInterrupt:
            _stop(p, signal.SIGINT)
            print("Process was interrupted.")
        finally:
            if life_w >= 0:
                try:
                    os.write(life_w, b"done\n")
                except OSError:
                    pass  # the watcher is gone (killed with the group)
                os.close(life_w)
        if p.returncode:
            # IPython's message: the cell as bytes, with its final newline.
            cell = body if body.endswith("\n") else body + "\n"
            raise subprocess.CalledProcessError(p.returncode, cell.encode())

    return run


def _writefile(args: str, body: str, frame: FrameType) -> None:
    parts = args.split()
    append = bool(parts) and parts[0] in ("-a", "--append")
    path = " ".join(parts[1:] if append else parts)
    if not path:
        raise UsageError("usage: %%writefile [-a] FILE")
    path = os.path.expanduser(path)
    exists = os.path.exists(path)
    print(f"{'Appending to' if append else 'Overwriting' if exists else 'Writing'} {path}")
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        f.write(body if body.endswith("\n") or not body else body + "\n")


LINE_MAGICS: dict[str, LineMagic] = {
    "cd": _cd,
    "env": _env,
    "lsmagic": _lsmagic,
    "matplotlib": _matplotlib,
    "pip": _pip,
    "pwd": _pwd,
    "time": _time,
    "timeit": _timeit,
    "who": _who,
}
CELL_MAGICS: dict[str, CellMagic] = {
    "bash": _script("bash"),
    "sh": _script("sh"),
    "time": lambda args, body, frame: _time(args, frame, body),
    "timeit": lambda args, body, frame: _timeit(args, frame, body),
    "writefile": _writefile,
}
