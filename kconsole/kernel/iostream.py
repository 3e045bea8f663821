"""Stream capture for the built-in kernel: sys.stdout/sys.stderr and fds 1/2.

Theory of this module
---------------------
All text written by user code, from any thread, and from any subprocess that
inherited fds 1 and 2, ends up in one :class:`StreamBatcher`. The batcher keeps a
single pending chunk *for one stream name at a time*: a write to ``stderr`` while
``stdout`` text is pending first flushes the ``stdout`` text. So the order of writes
is the order of ``stream`` messages, across both names, and nothing is reordered.
Pending text is flushed by a flusher thread a few milliseconds after the first write
of a batch, when a batch grows past ``max_chars``, before any other IOPub message
(the kernel calls :meth:`StreamBatcher.flush`), and at the end of every request.

File descriptors 1 and 2 are pipes read by :class:`FdCapture` threads; a cell's end
is synchronised with a marker written into the pipe (pipes are FIFO, so once the
reader sees the marker, everything written before it has been forwarded).
"""

from __future__ import annotations

import codecs
import io
import os
import threading
import time
from collections.abc import Callable

SendStream = Callable[[str, str], None]


def block_sigint() -> None:
    """Keep SIGINT away from the calling (non-main) thread.

    A process-directed SIGINT interrupts ``time.sleep`` only in the thread the OS
    delivers it to; the kernel's helper threads block it so it reaches the main
    thread, where cells run.
    """
    import signal

    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


class StreamBatcher:
    """Batches stream text into few ``stream`` messages without reordering it."""

    def __init__(self, send: SendStream, interval: float = 0.005, max_chars: int = 1 << 20) -> None:
        self._send = send
        self.interval = interval
        self.max_chars = max_chars
        self._lock = threading.RLock()
        self._name: str | None = None
        self._chunks: list[str] = []
        self._size = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, name: str, text: str) -> None:
        """Queue ``text`` for the stream ``name`` (``stdout`` or ``stderr``)."""
        if not text:
            return
        with self._lock:
            if self._chunks and self._name != name:
                self._flush_locked()
            self._name = name
            self._chunks.append(text)
            self._size += len(text)
            if self._size >= self.max_chars:
                self._flush_locked()
                return
            first = len(self._chunks) == 1
        if first:
            if self._thread is None:
                self._start()
            self._wake.set()

    def flush(self) -> None:
        """Send whatever is pending now (in the calling thread)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._chunks:
            return
        text = "".join(self._chunks)
        name = self._name or "stdout"
        self._chunks = []
        self._size = 0
        # Sent under the lock: the order of batches is the order they are queued in.
        self._send(name, text)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kconsole-stream-flusher", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        block_sigint()
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(self.interval)
            try:
                self.flush()
            except Exception:  # never let the flusher die (a closed kernel, ...)
                pass


class OutStream(io.TextIOBase):
    """A text stream (``sys.stdout``/``sys.stderr``) feeding a :class:`StreamBatcher`."""

    def __init__(self, name: str, batcher: StreamBatcher, fd: int | None = None) -> None:
        super().__init__()
        self.name = name
        self._batcher = batcher
        self._fd = fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self._batcher.write(self.name, s)
        return len(s)

    def writelines(self, lines: object) -> None:
        for line in lines:  # type: ignore[attr-defined]
            self.write(line)

    def flush(self) -> None:
        self._batcher.flush()


_MARKER = b"\x00\x01kconsole-fd-sync\x01\x00"


class FdCapture:
    """Points fd ``fd`` at a pipe whose contents are forwarded as stream ``name``."""

    def __init__(self, fd: int, name: str, batcher: StreamBatcher) -> None:
        self.fd = fd
        self.name = name
        self._batcher = batcher
        #: A duplicate of the original fd (the kernel's own log goes there).
        self.saved_fd = os.dup(fd)
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        self._r = r
        # Bytes that are not UTF-8 (a subprocess listing a file name that is not) are
        # shown as what they are, \xff, as the kernel shows such text from sys.stdout.
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self._cond = threading.Condition()
        self._sent = 0
        self._seen = 0
        self._thread = threading.Thread(
            target=self._run, name=f"kconsole-fd{fd}-reader", daemon=True
        )
        self._thread.start()

    def sync(self, timeout: float = 1.0) -> bool:
        """Wait until everything written to the fd so far has been forwarded."""
        with self._cond:
            self._sent += 1
            target = self._sent
        try:
            os.write(self.fd, _MARKER)
        except OSError:
            return False
        with self._cond:
            return self._cond.wait_for(lambda: self._seen >= target, timeout)

    def _emit(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._batcher.write(self.name, text)

    def _run(self) -> None:
        block_sigint()
        pending = b""
        while True:
            try:
                data = os.read(self._r, 65536)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            pending += data
            while True:
                i = pending.find(_MARKER)
                if i < 0:
                    break
                self._emit(pending[:i])
                pending = pending[i + len(_MARKER) :]
                with self._cond:
                    self._seen += 1
                    self._cond.notify_all()
            # Keep back a tail that might be the start of a marker split across reads.
            keep = 0
            for k in range(min(len(_MARKER) - 1, len(pending)), 0, -1):
                if _MARKER.startswith(pending[-k:]):
                    keep = k
                    break
            if keep:
                self._emit(pending[:-keep])
                pending = pending[-keep:]
            else:
                self._emit(pending)
                pending = b""
