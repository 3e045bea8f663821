"""The REPL's input history: a file per kernel language, plus the kernel's own.

The file (``<Jupyter data dir>/kconsole/history-<language>``) persists what was typed
in kconsole. When kconsole attaches to a kernel that already has a history (typed in
a notebook, another console, an earlier session), the tail of that history is merged
in for this session only: entries not already in the file come after the file's
entries (so Up reaches them first) and are never written to the file.

Theory of the size
------------------
What prompt_toolkit does per prompt and per key grows with the entries loaded: every
new prompt copies them all into its buffer, and its ``AutoSuggestFromHistory`` splits
and scans every one of them on every key. So at most ``size`` entries are ever loaded
(``--history-size``), whatever the file holds:

* the file is read from its end (:func:`read_tail`), only as far back as its newest
  ``size`` entries reach, so loading costs the same for a file of any size;
* the entries loaded in memory stay at most ``size`` plus a tenth during a session
  (the oldest drop off);
* suggestions come from an index of those entries' lines (:class:`SuggestIndex`),
  sorted, so a key costs a binary search, not a scan;
* a file that holds more than twice what is loaded is trimmed to its newest
  ``size`` entries when it is read (at most once per session): rewritten into a
  temporary file beside it and put in its place (``os.replace``), keeping its mode.
  Never with a ``size`` below :data:`TRIM_MIN_SIZE` (the default): the file is shared by
  every session of the language, and one run with a small ``--history-size`` must
  not take from the others (nor from the next default run) what they load;
  Appends (:meth:`TailFileHistory.store_string`) and the trim take an exclusive
  ``flock`` on the file and an append that waited for a trim goes to the new file, so
  a concurrent kconsole loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import fcntl
import os
import re
import stat
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, BinaryIO

from prompt_toolkit.auto_suggest import AutoSuggest, AutoSuggestFromHistory, Suggestion
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from .. import paths

if TYPE_CHECKING:
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.document import Document
    from prompt_toolkit.search import SearchState

    from ..client import KernelClient

#: Entries of the history file loaded at start (``--history-size``): jupyter console
#: loads 1,000; a key here costs about the same with any number (:class:`SuggestIndex`).
DEFAULT_HISTORY_SIZE = paths.DEFAULT_HISTORY_SIZE
#: The least size a file is trimmed to (see the theory at the top).
TRIM_MIN_SIZE = DEFAULT_HISTORY_SIZE
#: How much the file is read at a time, from its end.
_CHUNK = 1 << 16


#: Where one entry ends: a newline not followed by another line of the entry.
_ENTRY_END = re.compile(rb"\n(?!\+)")


def _entry_text(piece: bytes) -> str:
    """The entry a piece of the file holds: its ``+`` lines, without the ``+``."""
    return piece[piece.find(b"\n+") + 2 :].replace(b"\n+", b"\n").decode("utf-8", errors="replace")


def read_tail(f: BinaryIO, size: int, n: int) -> tuple[list[str], int]:
    """The newest ``n`` entries of a history file in prompt_toolkit's format, newest
    first, read from the end of its first ``size`` bytes; and the offset of the line
    before the oldest of them (0: the whole file was read).

    The format (FileHistory's): ``\\n# <date>\\n`` then ``+<line>\\n`` for each line of
    an entry; any line not starting with ``+`` ends an entry. A last line cut short
    (a write that did not finish) is taken as it is; bytes that are not UTF-8 are
    replaced, as FileHistory does. Read a chunk at a time, each parsed as it comes:
    what is held besides the entries is one chunk's worth.
    """
    entries: list[str] = []
    if n <= 0 or size <= 0:
        return entries, 0
    pos = size
    # The piece cut at the start of the data after the block: its parts, the last
    # first, joined only once a block ends it (an entry or a file without newlines
    # would otherwise be copied and split again with every chunk: quadratic), and
    # its first two bytes (what the block's last newline is followed by).
    tail: list[bytes] = []
    head = b""
    while pos > 0:
        step = min(_CHUNK, pos)
        f.seek(pos - step)
        block = f.read(step)
        if len(block) != step:  # shortened under us: the entries read are all there is
            return entries, 0
        pos -= step
        # Each piece is a line that is not an entry's, then the entry's lines after
        # it. The first is cut short unless the file's start was read, where it may
        # be an entry's lines alone. The block is split with what follows it as far
        # as it tells whether its last newline ends an entry.
        look = head[:2] if head[:1] == b"\n" else head[:1]
        pieces = _ENTRY_END.split(block + look)
        if look:
            pieces[-1] = pieces[-1][: len(pieces[-1]) - len(look)]
        if len(pieces) == 1 and pos > 0:  # no entry ends in this block
            tail.append(block)
            head = (block[:2] + head)[:2]
            continue
        if tail:
            pieces[-1] = b"".join([pieces[-1], *reversed(tail)])
            tail = []
        first = len(pieces[0])
        if pos > 0:
            tail, head = [pieces[0]], pieces[0][:2]
            pieces[0] = b""
        elif pieces[0].startswith(b"+"):
            pieces[0] = b"\n" + pieces[0]
        found = [q for q in pieces if b"\n+" in q][-(n - len(entries)) :]
        entries.extend(map(_entry_text, reversed(found)))
        if len(entries) == n:
            # Where the oldest entry kept starts: at the first piece that is it (an
            # equal one before it only makes the start earlier, keeping more).
            i = pieces.index(found[0])
            offset = sum(map(len, pieces[1:i])) + first + i if i else 0
            return entries, pos + offset
    return entries, 0


class TailFileHistory(FileHistory):
    """A FileHistory that loads only its newest ``size`` entries and keeps its file
    from growing without limit (see the theory at the top)."""

    def __init__(self, filename: str, size: int = DEFAULT_HISTORY_SIZE) -> None:
        super().__init__(filename)
        self.filename: str = filename
        self.size = size
        self._trim_tried = False

    def load_history_strings(self) -> list[str]:
        try:
            f = open(self.filename, "rb")  # noqa: SIM115 - kept open for the trim
        except FileNotFoundError:
            return []
        with f:
            end = os.fstat(f.fileno()).st_size
            entries, start = read_tail(f, end, self.size)
            # More than as much again before the entries loaded: about twice as many
            # entries as are ever loaded. Trimmed once per session at most.
            if (
                not self._trim_tried
                and self.size >= TRIM_MIN_SIZE
                and start > 0
                and start >= end - start
            ):
                self._trim_tried = True
                try:
                    self._trim(f, start, end)
                except OSError:
                    pass  # the file stays as it was; nothing typed is lost
        return entries

    def _trim(self, f: BinaryIO, start: int, end: int) -> None:
        """Replace the file by its bytes from ``start`` on (and whatever was appended
        since it was read), atomically, with the same mode."""
        # The file itself, not a symlink to it (that would replace the link).
        target = os.path.realpath(self.filename)
        fd = f.fileno()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            st, now = os.fstat(fd), os.stat(target)
            if (
                (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)  # replaced since read
                or st.st_size < end  # shortened by someone: leave it be
                or st.st_nlink != 1  # a hard link would be broken off
                or st.st_uid != os.getuid()  # the new file would change owner
            ):
                return
            f.seek(start)
            keep = f.read(st.st_size - start)
            tmp = f"{target}.{os.getpid()}.tmp"
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                try:
                    os.fchmod(out, stat.S_IMODE(st.st_mode))
                    _write_all(out, keep)
                    os.fsync(out)
                finally:
                    os.close(out)
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def store_string(self, string: str) -> None:
        data = f"\n# {datetime.datetime.now()}\n".encode()
        data += "".join(f"+{line}\n" for line in string.split("\n")).encode(
            "utf-8", errors="replace"
        )
        for _ in range(5):
            fd = os.open(self.filename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # released by the close
                except OSError:
                    # A file system without locks: append anyway (no trim runs there:
                    # it needs the lock).
                    _write_all(fd, data)
                    return
                try:
                    now, ours = os.stat(self.filename), os.fstat(fd)
                    replaced = (now.st_dev, now.st_ino) != (ours.st_dev, ours.st_ino)
                except FileNotFoundError:
                    replaced = True
                if not replaced:
                    _write_all(fd, data)
                    return
            finally:
                os.close(fd)
            # A trim replaced the file while this waited for the lock: append to the
            # new one.
        raise OSError(errno.EAGAIN, "the file kept being replaced")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SuggestIndex:
    """The suggestion prompt_toolkit's ``AutoSuggestFromHistory`` would give, found
    by binary search: the most recent line (of the entries, newest first; of an
    entry's lines, the last first) that starts with the text typed.

    Every distinct line is kept once, sorted, with the serial number of its most
    recent occurrence; the lines starting with a text are a range of that list, and
    the greatest serial in a range is found from per-block maxima. Lines added later
    (this session's) are looked through first, newest first, until there are enough
    of them to be worth sorting in.
    """

    _BLOCK = 64

    def __init__(self, strings_oldest_first: Iterable[str]) -> None:
        # (The line of a one-line entry is the entry's own string, not a copy.)
        lines = list(chain.from_iterable(map(str.splitlines, strings_oldest_first)))
        self._build(dict(zip(lines, range(1, len(lines) + 1), strict=True)), len(lines))

    def _build(self, latest: dict[str, int], serial: int) -> None:
        self._serial = serial
        self._lines = sorted(latest)
        s = self._serials = array("q", map(latest.__getitem__, self._lines))
        b = self._BLOCK
        self._blocks = array("q", (max(s[i : i + b]) for i in range(0, len(s), b)))
        #: Lines added since, oldest first.
        self._recent: list[str] = []

    def add(self, string: str) -> None:
        """``string`` is now the most recent entry."""
        self._recent.extend(string.splitlines())
        if len(self._recent) > max(512, len(self._lines) // 64):
            latest = dict(zip(self._lines, self._serials, strict=True))
            first, last = self._serial + 1, self._serial + len(self._recent)
            latest.update(zip(self._recent, range(first, last + 1), strict=True))
            self._build(latest, last)

    def suggest(self, text: str) -> str | None:
        """The most recent line starting with ``text``, or None."""
        for line in reversed(self._recent):
            if line.startswith(text):
                return line
        lines = self._lines
        lo = bisect_left(lines, text)
        end = _after_prefix(text)
        hi = len(lines) if end is None else bisect_left(lines, end, lo)
        if lo >= hi:
            return None
        return lines[self._argmax(lo, hi)]

    def _argmax(self, lo: int, hi: int) -> int:
        b, s = self._BLOCK, self._serials
        first, last = -(-lo // b), hi // b  # the blocks wholly inside [lo, hi)
        if first >= last:
            best = max(s[lo:hi])
            return s.index(best, lo, hi)
        best = max(s[lo : first * b]) if lo < first * b else 0
        where = lo
        if best:
            where = s.index(best, lo, first * b)
        inner = max(self._blocks[first:last])
        if inner > best:
            best = inner
            block = self._blocks.index(inner, first, last)
            where = s.index(inner, block * b, block * b + b)
        if last * b < hi:
            tail = max(s[last * b : hi])
            if tail > best:
                where = s.index(tail, last * b, hi)
        return where


def _after_prefix(text: str) -> str | None:
    """The least string greater than every string starting with ``text`` (None: no
    string is)."""
    text = text.rstrip(chr(0x10FFFF))
    if not text:
        return None
    return text[:-1] + chr(ord(text[-1]) + 1)


class IndexedAutoSuggest(AutoSuggest):
    """``AutoSuggestFromHistory``'s suggestion, from a :class:`SessionHistory`'s
    index instead of a scan of every entry (another history: prompt_toolkit's own)."""

    def __init__(self) -> None:
        self._fallback = AutoSuggestFromHistory()

    def get_suggestion(self, buffer: Any, document: Any) -> Suggestion | None:
        history = buffer.history
        if not isinstance(history, SessionHistory):
            return self._fallback.get_suggestion(buffer, document)
        # As AutoSuggestFromHistory: the last line only, and not when it is blank.
        text = document.text.rsplit("\n", 1)[-1]
        if not text.strip():
            return None
        line = history.suggest(text)
        return None if line is None else Suggestion(line[len(text) :])


class SessionHistory(History):
    """``backend`` (usually a :class:`TailFileHistory`), at most ``size`` of its
    entries loaded (see the theory at the top), plus entries merged in memory.

    A backend that fails (a full disk, an unreadable file) is replaced by one in
    memory for the rest of the session: an exception here would surface from every
    Enter (prompt_toolkit stores the entry after accepting it). Why, in one line, is
    :attr:`problem`; ``on_problem`` is told once.
    """

    def __init__(
        self, backend: History, problem: str | None = None, size: int = DEFAULT_HISTORY_SIZE
    ) -> None:
        super().__init__()
        self.backend = backend
        self.size = max(1, size)
        self._merged: list[str] = []  # oldest first
        #: The backend's strings as read, newest first (None: not read yet).
        self._backend_cache: list[str] | None = None
        #: The suggestion index, the list of loaded strings it indexes and that list's
        #: length when it was last brought in step.
        self._index: SuggestIndex | None = None
        self._index_list: list[str] | None = None
        self._index_len = 0
        #: Why the history is not kept on disk (None while it is).
        self.problem = problem
        self.on_problem: Callable[[str], None] | None = None

    def _fail(self, doing: str, e: OSError) -> None:
        self._backend_cache = None
        if self.problem is not None and not isinstance(self.backend, FileHistory):
            return
        name = getattr(self.backend, "filename", "the history file")
        reason = e.strerror or str(e)
        self.problem = f"could not {doing} {name} ({reason}); history is kept in memory"
        self.backend = InMemoryHistory()
        if self.on_problem is not None:
            self.on_problem(self.problem)

    def _backend_strings(self) -> list[str]:
        # Read once (merge() and the prompt's load both need them), then kept in step
        # with what is stored.
        if self._backend_cache is None:
            try:
                strings = list(islice(self.backend.load_history_strings(), self.size))
            except OSError as e:
                self._fail("read", e)
                strings = []
            self._backend_cache = strings
        return self._backend_cache

    def merge(self, entries: Iterable[str]) -> int:
        """Add ``entries`` (oldest first) that the backend does not have; return how
        many were added. Call before the first prompt (history loads once)."""
        known = set(self._backend_strings()) | set(self._merged)
        added = 0
        for e in entries:
            if not e.strip() or e in known:
                continue
            known.add(e)
            self._merged.append(e)
            added += 1
        if self._loaded:  # already loaded by a prompt: keep the cache in step
            self._loaded_strings = list(self.load_history_strings())
        return added

    def load_history_strings(self) -> Iterable[str]:
        yield from reversed(self._merged)
        yield from self._backend_strings()

    def append_string(self, string: str) -> None:
        loaded = self._loaded_strings
        in_step = self._index_in_step()
        super().append_string(string)
        keep = self.size + len(self._merged)
        if len(loaded) > keep + max(self.size // 10, 100):
            # A long session: the oldest entries drop off (the index is rebuilt).
            del loaded[keep:]
        elif in_step and self._index is not None:
            self._index.add(string)
            self._index_len = len(loaded)

    def _index_in_step(self) -> bool:
        loaded = self._loaded_strings
        return (
            self._index is not None
            and self._index_list is loaded
            and self._index_len == len(loaded)
        )

    def store_string(self, string: str) -> None:
        try:
            self.backend.store_string(string)
        except OSError as e:
            # The entry is in the loaded strings already (History.append_string): Up
            # still finds it.
            self._fail("write", e)
        else:
            if self._backend_cache is not None:
                self._backend_cache.insert(0, string)
                del self._backend_cache[self.size :]

    def loaded_strings(self) -> list[str]:
        """The entries prompt_toolkit's buffer gets, newest first (loaded now if not
        yet, as :meth:`History.load` does)."""
        if not self._loaded:
            self._loaded_strings = list(self.load_history_strings())
            self._loaded = True
        return self._loaded_strings

    def suggest(self, text: str) -> str | None:
        """The most recent line of the loaded entries that starts with ``text`` (as
        prompt_toolkit's ``AutoSuggestFromHistory`` finds it), or None."""
        if self._index is None or not self._index_in_step():
            loaded = self._loaded_strings
            self._index = SuggestIndex(reversed(loaded))
            self._index_list, self._index_len = loaded, len(loaded)
        return self._index.suggest(text)


def load_history_at_once(buffer: Buffer) -> None:
    """Have ``buffer`` take its history's entries in one step at each new prompt.

    prompt_toolkit's Buffer copies every loaded entry into its working lines at each
    prompt, one at a time through an async generator (some 3 ms per 10,000 entries,
    on every Enter); a deque's ``extendleft`` does the same at C speed. For a
    :class:`SessionHistory` only, and only where the Buffer still has the attributes
    this relies on: elsewhere prompt_toolkit's own loading stays.
    """
    if not isinstance(buffer.history, SessionHistory) or not all(
        hasattr(buffer, a) for a in ("_working_lines", "_load_history_task", _WORKING_INDEX)
    ):
        return
    history = buffer.history
    original = buffer.load_history_if_not_yet_loaded

    def load_history_if_not_yet_loaded() -> None:
        if buffer._load_history_task is not None:
            return
        try:
            done = asyncio.get_running_loop().create_future()
        except RuntimeError:  # no loop running: prompt_toolkit's way
            original()
            return
        strings = history.loaded_strings()
        # The same deque as prompt_toolkit's appendleft of each, newest first, gives.
        buffer._working_lines.extendleft(strings)
        setattr(buffer, _WORKING_INDEX, getattr(buffer, _WORKING_INDEX) + len(strings))
        done.set_result(None)
        buffer._load_history_task = done

    # An attribute of the instance: the method prompt_toolkit's BufferControl calls.
    setattr(buffer, "load_history_if_not_yet_loaded", load_history_if_not_yet_loaded)  # noqa: B010


#: Buffer's private ``__working_index``, as its methods see it.
_WORKING_INDEX = "_Buffer__working_index"


def search_history_quickly(buffer: Buffer) -> None:
    """Have ``buffer``'s search (Ctrl-R, Ctrl-S, vi's ``/``) find the history entries
    that hold the text with one search of them all, instead of one per entry.

    prompt_toolkit's ``Buffer._search`` makes a Document and a regex iterator of every
    entry it passes (some 6 µs each), and runs four times per key typed into the
    search: a text in none of 10,000 entries cost 0.1-0.4 s a key. This one looks for
    the text in the entries joined by a NUL (a substring search, or a regex one per
    entry when case is ignored) and does what prompt_toolkit does with each entry that
    holds it, in prompt_toolkit's order, so it stops at the same place.
    """
    if not hasattr(buffer, "_search") or not hasattr(buffer, "_working_lines"):
        return
    original = buffer._search

    def _search(
        search_state: SearchState, include_current_position: bool = False, count: int = 1
    ) -> tuple[int, int] | None:
        if not search_state.text:  # found at once anywhere
            return original(search_state, include_current_position, count)
        lines = list(buffer._working_lines)  # a deque is slow to index in the middle
        found = _EntrySearch(lines, search_state, include_current_position)
        return found.run(buffer.working_index, buffer.document, count)

    setattr(buffer, "_search", _search)  # noqa: B010


class _EntrySearch:
    """One search (of ``count`` steps) in the history entries ``lines``, as
    prompt_toolkit's ``Buffer._search`` does it, looking only at the entries that hold
    the text (see :func:`search_history_quickly`)."""

    def __init__(
        self, lines: list[str], search_state: SearchState, include_current_position: bool
    ) -> None:
        from prompt_toolkit.search import SearchDirection

        self.lines = lines
        self.text = text = search_state.text
        self.ignore_case = ignore_case = search_state.ignore_case()
        self.forward = search_state.direction == SearchDirection.FORWARD
        self.include_current_position = include_current_position
        self.joined: str | None = None
        if not ignore_case and "\0" not in text:
            self.joined = "\0".join(lines)
            if self.joined.count("\0") != len(lines) - 1:  # an entry holds a NUL
                self.joined = None

    def run(self, working_index: int, document: Document, count: int) -> tuple[int, int] | None:
        """Where the search ends: (working index, cursor position), or None."""
        for _ in range(count):
            result = self.search_once(working_index, document)
            if result is None:
                return None
            working_index, document = result
        return working_index, document.cursor_position

    def holding(self, working_index: int) -> Iterator[int]:
        """The other entries that hold the text, in prompt_toolkit's order: forward,
        those after the current one and then the first; backward, those before it and
        then the last."""
        lines, text, joined, n = self.lines, self.text, self.joined, len(self.lines)
        if joined is None:
            rx = re.compile(re.escape(text), re.IGNORECASE if self.ignore_case else 0)
            order = (
                range(working_index + 1, n + 1)
                if self.forward
                else range(working_index - 1, -2, -1)
            )
            yield from (i % n for i in order if rx.search(lines[i % n]))
            return
        if self.forward:
            at = sum(map(len, lines[: working_index + 1])) + working_index + 1
            while (found := joined.find(text, at)) >= 0:
                yield joined.count("\0", 0, found)
                at = joined.find("\0", found) + 1 or len(joined) + 1
            if text in lines[0]:
                yield 0
        else:
            end = sum(map(len, lines[:working_index])) + working_index - 1
            while end > 0 and (found := joined.rfind(text, 0, end)) >= 0:
                yield joined.count("\0", 0, found)
                end = joined.rfind("\0", 0, found)
            if text in lines[n - 1]:
                yield n - 1

    def search_once(self, working_index: int, document: Document) -> tuple[int, Document] | None:
        """prompt_toolkit's search_once, for the entries that hold the text only."""
        from prompt_toolkit.document import Document

        text, ignore_case, lines = self.text, self.ignore_case, self.lines
        if self.forward:
            at = document.find(
                text,
                include_current_position=self.include_current_position,
                ignore_case=ignore_case,
            )
            if at is not None:
                return working_index, Document(document.text, document.cursor_position + at)
            for i in self.holding(working_index):
                at = Document(lines[i], 0).find(
                    text, include_current_position=True, ignore_case=ignore_case
                )
                if at is not None:
                    return i, Document(lines[i], at)
        else:
            at = document.find_backwards(text, ignore_case=ignore_case)
            if at is not None:
                return working_index, Document(document.text, document.cursor_position + at)
            for i in self.holding(working_index):
                line = lines[i]
                at = Document(line, len(line)).find_backwards(text, ignore_case=ignore_case)
                if at is not None:
                    return i, Document(line, len(line) + at)
        return None


def history_for(language: str, size: int = DEFAULT_HISTORY_SIZE) -> SessionHistory:
    """The persistent history for ``language`` (in memory if it can't be written),
    loading at most ``size`` entries."""
    d = paths.user_state_dir()
    # Lower case: a kernelspec says "Python" where its kernel_info says "python", and
    # `start` (the prompt is up before kernel_info) and `attach` must share one file.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in language.lower())
    safe = safe or "unknown"
    path = d / f"history-{safe}"
    try:
        # Everything typed is kept here: private to the user, like a shell history.
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_NONBLOCK: a FIFO there must not block the open (it is refused below).
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NONBLOCK, 0o600)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        if not regular:
            # The file is read at the first prompt: /dev/full or /dev/zero never end
            # (nor have an end to read back from), a FIFO blocks.
            raise OSError(errno.EINVAL, "not a regular file")
    except OSError as e:
        problem = f"could not open {path} ({e.strerror or e}); history is kept in memory"
        return SessionHistory(InMemoryHistory(), problem, size=size)
    return SessionHistory(TailFileHistory(str(path), size), size=size)


#: How many entries of the kernel's history are merged at start.
KERNEL_HISTORY_TAIL = 1000
#: How long the start waits for the kernel's history (a busy kernel answers late).
KERNEL_HISTORY_TIMEOUT = 3.0


async def merge_kernel_history(history: History, client: KernelClient) -> None:
    """Add the kernel's recent inputs (history_request) to a :class:`SessionHistory`
    in memory, after the file's; any other history is left as it is."""
    from ..client import KernelError

    if not isinstance(history, SessionHistory):
        return
    # TypeError: a reply whose "history" is not a list (the client's list() of it);
    # the kernel's history is a bonus, never a reason not to start.
    with contextlib.suppress(KernelError, TypeError):
        items = await client.history(
            timeout=KERNEL_HISTORY_TIMEOUT,
            hist_access_type="tail",
            n=KERNEL_HISTORY_TAIL,
            raw=True,
            output=False,
        )
        history.merge(kernel_history_inputs(items))


def kernel_history_inputs(items: Iterable[Any]) -> list[str]:
    """The inputs of a history_reply's ``history`` (oldest first), consecutive
    duplicates collapsed."""
    out: list[str] = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) < 3:
            continue
        source = item[2]
        if isinstance(source, (list, tuple)):  # output=True form: (input, output)
            source = source[0] if source else ""
        if not isinstance(source, str) or not source.strip():
            continue
        source = source.rstrip("\n")
        if out and out[-1] == source:
            continue
        out.append(source)
    return out
