"""The built-in kernel: requests in, replies and IOPub out.

Theory of this module
---------------------
Cells run on the main thread, so SIGINT raises KeyboardInterrupt in them (the signal
handler raises only while a request is being executed; otherwise it is ignored).
The IO thread reads shell requests into a queue the main thread serves one at a
time, in order; control requests are handled on the IO thread at once, so
``interrupt_request`` and ``shutdown_request`` work during a long cell. stdin replies
go to a queue ``input()`` waits on.

For every request: ``status: busy`` (parent = the request), for execute
``execute_input``, the outputs, the reply, then ``status: idle`` after all output of
the request has been flushed. Every message is built and signed by
:class:`kconsole.protocol.Session` and leaves through :meth:`Server.send`, which
keeps the order of sending.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..connection import ConnectionInfo
from ..protocol import PROTOCOL_VERSION, Message, utcnow_iso
from .iostream import FdCapture, OutStream, StreamBatcher
from .server import Server, log_to

if TYPE_CHECKING:
    from .history_store import History
    from .shell import Shell

_SHUTDOWN = "__kconsole_shutdown__"
#: How long a kernel_info_reply waits for IOPub's first subscriber (see _kernel_info).
FIRST_SUBSCRIBER_WAIT = 2.0


def kernel_info_content() -> dict[str, Any]:
    """The ``kernel_info_reply`` content of the built-in kernel."""
    import platform

    v = sys.version_info
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "kconsole",
        "implementation_version": __version__,
        "language_info": {
            "name": "python",
            "version": platform.python_version(),
            "mimetype": "text/x-python",
            "file_extension": ".py",
            "pygments_lexer": "python3",
            "codemirror_mode": {"name": "ipython", "version": 3},
            "nbconvert_exporter": "python",
        },
        "banner": (
            f"Python {sys.version.split()[0]} ({platform.python_implementation()})\n"
            f"kconsole built-in kernel {__version__}: display(), input(), obj? and help(obj) "
            "work.\n"
            # Written out, not taken from magics.py: kernel_info imports nothing it can
            # do without (tests check every magic %lsmagic lists is named here).
            "Magics (%lsmagic): %cd %env %matplotlib %pip %pwd %time %timeit %who %%bash %%sh "
            "%%time %%timeit %%writefile; !cmd runs a shell command.\n"
        ),
        "help_links": [
            {"text": "Python Reference", "url": f"https://docs.python.org/{v.major}.{v.minor}"},
            {"text": "kconsole", "url": "https://github.com/kconsole/kconsole"},
        ],
        "supported_features": [],
        "debugger": False,
    }


class Kernel:
    """One running built-in kernel process."""

    def __init__(
        self,
        info: ConnectionInfo,
        capture_fds: bool = True,
        history: History | None = None,
    ) -> None:
        self.info = info
        self.session = info.session()
        self.batcher = StreamBatcher(self._send_stream)
        self.captures: list[FdCapture] = []
        log_fd = 2
        if capture_fds:
            try:
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    self.captures.append(FdCapture(fd, name, self.batcher))
                log_fd = self.captures[-1].saved_fd
            except OSError:
                pass
        self.log: Callable[[str], None] = log_to(log_fd)
        try:
            self.server = Server(info, self.session, self.log)
        except BaseException:
            # Not bound (a port taken meanwhile): the error must reach the real stderr,
            # where the launcher reads why the kernel died (a port clash it retries).
            for capture in self.captures:
                os.dup2(capture.saved_fd, capture.fd)
            raise
        self._history_store = history
        self._shell: Shell | None = None
        self._parent: Message | None = None
        self._requests: queue.Queue[Message | str] = queue.Queue()
        self._stdin_replies: queue.Queue[Message] = queue.Queue()
        self.executing = False
        self.shutting_down = False
        self._to_abort: list[Message] = []
        self._main_thread = threading.main_thread()
        self._exit_lock = threading.Lock()

    # -- publishing --------------------------------------------------------------

    def _send_stream(self, name: str, text: str) -> None:
        msg = self.session.msg("stream", {"name": name, "text": text}, parent=self._parent)
        self.server.send_msg("iopub", msg)

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        parent: Message | None = None,
    ) -> None:
        """Publish on IOPub (pending stream text first), parented to the current request."""
        if msg_type != "stream":
            self.batcher.flush()
        msg = self.session.msg(msg_type, content, parent=parent or self._parent, metadata=metadata)
        self.server.send_msg("iopub", msg)

    def _status(self, state: str, parent: Message | None) -> None:
        msg = self.session.msg("status", {"execution_state": state}, parent=parent)
        self.server.send_msg("iopub", msg)

    def _reply(
        self,
        channel: str,
        request: Message,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        reply_type = request.msg_type.rsplit("_", 1)[0] + "_reply"
        msg = self.session.msg(reply_type, content, parent=request, metadata=metadata)
        self.server.send_msg(channel, msg, request.identities)

    def flush_output(self) -> None:
        """Forward everything written so far (fds included) before the request ends."""
        for c in self.captures:
            c.sync()
        self.batcher.flush()

    # -- startup -----------------------------------------------------------------

    def start(self) -> None:
        """Bind (done), install the shell, start the IO threads, say ``starting``."""
        out = OutStream("stdout", self.batcher, 1 if self.captures else None)
        err = OutStream("stderr", self.batcher, 2 if self.captures else None)
        sys.stdout = out
        sys.stderr = err
        sys.stdin = _StdinStream(self)
        import builtins
        import getpass

        builtins.input = self.input
        getpass.getpass = self.getpass
        signal.signal(signal.SIGINT, self._sigint)
        self.server.start(self._on_shell, self._on_control, self._on_stdin)
        self._status("starting", None)

    @property
    def shell(self) -> Shell:
        """The execution engine, created (and imported) on first use.

        Startup theory: nothing a ``kernel_info_request`` does not need is imported
        before the kernel answers it; the main thread builds the shell as soon as it is
        idle after that (or when a request needs it), always before any user code runs.
        """
        if self._shell is None:
            from .history_store import History
            from .shell import Shell

            shell = Shell(
                self.publish, self._history_store or History(), before_output=self.batcher.flush
            )
            shell.install()
            self._shell = shell
        return self._shell

    def _sigint(self, signum: int, frame: Any) -> None:
        if self.executing:
            raise KeyboardInterrupt

    # -- the IO thread's handlers ------------------------------------------------

    def _on_shell(self, msg: Message) -> None:
        self._requests.put(msg)

    def _on_stdin(self, msg: Message) -> None:
        self._stdin_replies.put(msg)

    def _on_control(self, msg: Message) -> None:
        self._status("busy", msg)
        try:
            self._control(msg)
        except Exception as e:  # a request no handler foresaw: answer it all the same
            self._reply_failed("control", msg, e)
        finally:
            self._status("idle", msg)

    def _reply_failed(self, channel: str, msg: Message, error: Exception) -> None:
        """Answer ``msg`` with an error reply (its handler raised): a client waiting
        for a reply gets one, whatever the request held."""
        self.log(f"kconsole kernel: error in {_shown(msg)}: {type(error).__name__}: {error}")
        if not msg.msg_type.endswith("_request"):
            return
        content: dict[str, Any] = {
            "status": "error",
            "ename": type(error).__name__,
            "evalue": str(error),
            "traceback": [],
        }
        if msg.msg_type == "execute_request" and self._shell is not None:
            content["execution_count"] = self._shell.execution_count
        self._reply(channel, msg, content)

    def _control(self, msg: Message) -> None:
        t = msg.msg_type
        if t == "interrupt_request":
            self.interrupt()
            self._reply("control", msg, {"status": "ok"})
        elif t == "shutdown_request":
            self._shutdown(msg, "control")
        elif t == "kernel_info_request":
            self._reply("control", msg, kernel_info_content())
        elif t == "connect_request":
            self._connect(msg, "control")
        elif t == "debug_request":
            self._reply(
                "control",
                msg,
                {
                    "status": "error",
                    "ename": "NotImplementedError",
                    "evalue": "no debugger",
                    "traceback": [],
                },
            )
        else:
            self.log(f"kconsole kernel: unknown control message {_shown(msg)}")

    def interrupt(self) -> None:
        """Raise KeyboardInterrupt in the running cell (nothing when idle)."""
        if not self.executing or self._main_thread.ident is None:
            return
        if hasattr(signal, "pthread_kill"):
            # A signal to the main thread also wakes a blocking sleep/read there.
            signal.pthread_kill(self._main_thread.ident, signal.SIGINT)
        else:  # Windows
            import _thread

            _thread.interrupt_main()

    def _shutdown(self, msg: Message, channel: str) -> None:
        restart = bool(msg.content.get("restart", False))
        self._reply(channel, msg, {"status": "ok", "restart": restart})
        self.shutting_down = True
        self._requests.put(_SHUTDOWN)
        if threading.current_thread() is not self._main_thread:
            threading.Thread(target=self._shutdown_watchdog, daemon=True).start()

    def _shutdown_watchdog(self) -> None:
        # The main thread exits cleanly when idle; a cell that keeps running is
        # interrupted once, then the process exits regardless.
        deadline = time.monotonic() + 1.0
        self.interrupt()
        while time.monotonic() < deadline:
            time.sleep(0.02)
        self.hard_exit(0)

    # -- the main thread -----------------------------------------------------------

    def run(self) -> None:
        """Serve shell requests until shutdown; then exit the process."""
        while True:
            msg = self._requests.get()
            if msg == _SHUTDOWN or self.shutting_down:
                break
            assert isinstance(msg, Message)
            try:
                self.dispatch(msg)
            except KeyboardInterrupt:
                continue
            except Exception as e:
                import traceback

                self.log(f"kconsole kernel: error in {_shown(msg)}: {e}\n" + traceback.format_exc())
            if self._shell is None and self._requests.empty():
                try:
                    self.shell  # noqa: B018 - warm up while idle
                except Exception as e:  # out of descriptors or memory: the next
                    # request that needs the shell tries again and gets an error reply
                    self.log(f"kconsole kernel: cannot build the shell yet: {e}")
        self.hard_exit(0)

    def hard_exit(self, code: int) -> None:
        """Flush, run atexit handlers, close the sockets and leave the process."""
        if not self._exit_lock.acquire(blocking=False):
            return
        try:
            self.flush_output()
        except Exception:
            pass
        try:
            import atexit

            atexit._run_exitfuncs()
        except Exception:
            pass
        try:
            if self._shell is not None:
                self._shell.history.close()
        except Exception:
            pass
        try:
            self.flush_output()
        except Exception:
            pass
        self.server.stop()
        os._exit(code)

    def dispatch(self, msg: Message) -> None:
        """Serve one shell request: busy, handler, reply, idle."""
        t = msg.msg_type
        handler = _SHELL_HANDLERS.get(t)
        self._parent = msg
        self._status("busy", msg)
        try:
            if handler is None:
                if t not in ("comm_msg", "comm_close"):
                    self.log(f"kconsole kernel: unknown shell message {_shown(msg)}")
                return
            try:
                handler(self, msg)
            except Exception as e:  # odd request content: an error reply, not silence
                self.executing = False
                self._reply_failed("shell", msg, e)
        finally:
            self.batcher.flush()
            self._status("idle", msg)
        if self._to_abort:
            aborted, self._to_abort = self._to_abort, []
            self._abort(aborted)

    def _execute(self, msg: Message) -> None:
        c = msg.content
        code = str(c.get("code", ""))
        silent = bool(c.get("silent", False))
        store_history = bool(c.get("store_history", not silent)) and not silent
        started = utcnow_iso()
        # executing before execute_input: a client that saw execute_input may interrupt.
        self.executing = True
        try:
            if not silent:
                self.publish(
                    "execute_input", {"code": code, "execution_count": self.shell.execution_count}
                )
            result = self.shell.run_cell(code, silent=silent, store_history=store_history)
            expressions = c.get("user_expressions")
            # Not a dict: none (the cell has run; its reply must not say it failed).
            user_expr = self.shell.user_expressions(
                expressions if isinstance(expressions, dict) else {}
            )
        except KeyboardInterrupt as e:  # interrupted between the cell and the reply
            result = self.shell._error_result(e)
            user_expr = {}
        finally:
            self.executing = False
        self.flush_output()
        content: dict[str, Any] = {
            "status": result.status,
            "execution_count": self.shell.execution_count - 1,
        }
        if result.status == "ok":
            content["payload"] = result.payload
            content["user_expressions"] = user_expr
        else:
            content.update(ename=result.ename, evalue=result.evalue, traceback=result.traceback)
        metadata = {
            "started": started,
            "status": result.status,
            "dependencies_met": True,
            "engine": self.session.session_id,
        }
        if result.status == "error" and c.get("stop_on_error", True):
            # Taken out of the queue *before* the reply leaves: whatever the client
            # sends after seeing the error is not aborted.
            self._to_abort = self._take_queued_executes()
        self._reply("shell", msg, content, metadata)

    def _take_queued_executes(self) -> list[Message]:
        taken: list[Message] = []
        keep: list[Message | str] = []
        while True:
            try:
                m = self._requests.get_nowait()
            except queue.Empty:
                break
            if isinstance(m, Message) and m.msg_type == "execute_request":
                taken.append(m)
            else:
                keep.append(m)
        for m in keep:
            self._requests.put(m)
        return taken

    def _abort(self, requests: list[Message]) -> None:
        """Answer execute_requests with ``aborted`` (stop_on_error), busy/idle around each."""
        for m in requests:
            self._status("busy", m)
            self._reply(
                "shell", m, {"status": "aborted"}, {"status": "aborted", "dependencies_met": False}
            )
            self._status("idle", m)

    def _complete(self, msg: Message) -> None:
        c = msg.content
        code = str(c.get("code", ""))
        pos = _cursor_pos(c.get("cursor_pos"), code)
        try:
            content = self.shell.complete(code, pos)
        except Exception:
            content = {
                "status": "ok",
                "matches": [],
                "cursor_start": pos,
                "cursor_end": pos,
                "metadata": {},
            }
        self._reply("shell", msg, content)

    def _inspect(self, msg: Message) -> None:
        c = msg.content
        code = str(c.get("code", ""))
        pos = _cursor_pos(c.get("cursor_pos"), code)
        try:
            content = self.shell.inspect(code, pos, int(c.get("detail_level", 0)))
        except Exception:
            content = {"status": "ok", "found": False, "data": {}, "metadata": {}}
        self._reply("shell", msg, content)

    def _is_complete(self, msg: Message) -> None:
        from .shell import is_complete

        self._reply("shell", msg, is_complete(str(msg.content.get("code", ""))))

    def _history(self, msg: Message) -> None:
        c = msg.content
        h = self.shell.history
        output = bool(c.get("output", False))
        kind = c.get("hist_access_type", "tail")
        n = c.get("n")
        if kind == "tail":
            items = h.tail(int(n) if n is not None else 10, output=output)
        elif kind == "range":
            stop = c.get("stop")
            items = h.range(
                int(c.get("session") or 0),
                int(c.get("start") or 1),
                int(stop) if stop is not None else None,
                output=output,
            )
        elif kind == "search":
            items = h.search(
                str(c.get("pattern") or "*"),
                int(n) if n is not None else None,
                bool(c.get("unique", False)),
                output=output,
            )
        else:
            items = []
        self._reply("shell", msg, {"status": "ok", "history": [list(i) for i in items]})

    def _connect(self, msg: Message, channel: str = "shell") -> None:
        # Deprecated in protocol 5.1, still answered by ipykernel: the kernel's ports.
        i = self.info
        ports = {
            "shell_port": i.shell_port,
            "iopub_port": i.iopub_port,
            "stdin_port": i.stdin_port,
            "hb_port": i.hb_port,
            "control_port": i.control_port,
        }
        self._reply(channel, msg, {**ports, "status": "ok"})

    def _kernel_info(self, msg: Message) -> None:
        # jupyter console (6.6) and many scripts take the first kernel_info_reply as
        # "ready" and run a cell at once; a fresh kernel's IOPub subscriber may still be
        # connecting then, and the cell's busy/output/idle go to nobody: jupyter
        # console waits for that idle forever. Until some client has subscribed, the
        # reply waits for one (bounded: a client that never subscribes is only slowed).
        if not self.server.iopub_joined.is_set():
            self.server.iopub_joined.wait(FIRST_SUBSCRIBER_WAIT)
        self._reply("shell", msg, kernel_info_content())

    def _comm_info(self, msg: Message) -> None:
        self._reply("shell", msg, {"status": "ok", "comms": {}})

    def _comm_open(self, msg: Message) -> None:
        # No comm targets: close it, as ipykernel does for an unknown target.
        comm_id = msg.content.get("comm_id", "")
        self.publish("comm_close", {"comm_id": comm_id, "data": {}})

    def _shell_shutdown(self, msg: Message) -> None:
        self._shutdown(msg, "shell")

    # -- stdin ---------------------------------------------------------------------

    def input(self, prompt: object = "") -> str:
        """``input()`` for user code: asks the frontend over the stdin channel."""
        return self._request_input(str(prompt), password=False)

    def getpass(self, prompt: str = "Password: ", stream: Any = None) -> str:
        """``getpass.getpass()`` for user code."""
        return self._request_input(str(prompt), password=True)

    def _request_input(self, prompt: str, password: bool) -> str:
        parent = self._parent
        if parent is None or not parent.content.get("allow_stdin", False):
            from .shell import StdinNotImplementedError

            raise StdinNotImplementedError(
                "input was called, but this frontend does not support input requests."
            )
        self.batcher.flush()
        while True:  # drop replies to earlier requests
            try:
                self._stdin_replies.get_nowait()
            except queue.Empty:
                break
        req = self.session.msg(
            "input_request", {"prompt": prompt, "password": password}, parent=parent
        )
        self.server.send_msg("stdin", req, parent.identities)
        while True:
            reply = self._stdin_replies.get()
            if reply.msg_type == "input_reply":
                break
        value = str(reply.content.get("value", ""))
        if value == "\x04":
            raise EOFError("EOF when reading a line")
        return value


def _shown(msg: Message) -> str:
    """A message's type for the log: a client may send a megabyte of one."""
    t = msg.msg_type
    return repr(t) if len(t) <= 80 else repr(t[:80]) + f"... ({len(t)} characters)"


def _cursor_pos(value: Any, code: str) -> int:
    """A request's ``cursor_pos`` as an offset into ``code``: what is not an integer
    means the end (as an absent one does), and the rest is clamped, so a reply never
    echoes a cursor no console can slice the line with."""
    if isinstance(value, bool) or not isinstance(value, int):
        return len(code)
    return min(max(value, 0), len(code))


_SHELL_HANDLERS: dict[str, Callable[[Kernel, Message], None]] = {
    "execute_request": Kernel._execute,
    "complete_request": Kernel._complete,
    "inspect_request": Kernel._inspect,
    "is_complete_request": Kernel._is_complete,
    "history_request": Kernel._history,
    "kernel_info_request": Kernel._kernel_info,
    "connect_request": Kernel._connect,
    "comm_info_request": Kernel._comm_info,
    "comm_open": Kernel._comm_open,
    "shutdown_request": Kernel._shell_shutdown,
}


class _StdinStream:
    """``sys.stdin`` for user code: lines come from the frontend via input_request."""

    encoding = "utf-8"

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    def readline(self, size: int = -1) -> str:
        try:
            return self._kernel.input("") + "\n"
        except EOFError:
            return ""

    def read(self, size: int = -1) -> str:
        return self.readline()

    def isatty(self) -> bool:
        return False

    def __iter__(self) -> _StdinStream:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def run_kernel(connection_file: str | os.PathLike[str] | None) -> None:
    """Start a kernel on ``connection_file`` (created with free ports if missing)."""
    from ..connection import new_connection_file_path
    from ..protocol import new_key

    path = Path(connection_file) if connection_file else new_connection_file_path()
    if not path.is_absolute() and not path.exists():
        from .. import paths

        if path.parent == Path("."):
            path = paths.runtime_dir() / path
    if path.exists():
        info = ConnectionInfo.from_file(path)
        write = False
    else:
        info = ConnectionInfo(key=new_key())
        write = True
    kernel = Kernel(info, capture_fds=os.environ.get("KCONSOLE_KERNEL_CAPTURE_FDS", "1") != "0")
    if write:
        info.write(path)
        kernel.log(f"kconsole kernel: connection file {path}")
    kernel.start()
    _watch_parent(kernel)
    kernel.run()


def _watch_parent(kernel: Kernel) -> None:
    """Exit when the process named by JPY_PARENT_PID (or our parent) goes away."""
    try:
        ppid = int(os.environ.get("JPY_PARENT_PID", "0"))
    except ValueError:
        ppid = 0
    if ppid <= 1 or sys.platform == "win32":
        return
    original = os.getppid()

    def alive() -> bool:
        if ppid == original:
            return os.getppid() == original
        try:
            os.kill(ppid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def watch() -> None:
        from .iostream import block_sigint

        block_sigint()
        while alive():
            time.sleep(1.0)
        kernel.log("kconsole kernel: parent process exited, exiting")
        kernel.hard_exit(0)

    threading.Thread(target=watch, name="kconsole-parent-watch", daemon=True).start()
