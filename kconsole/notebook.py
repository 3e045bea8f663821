"""Recording a console session as a Jupyter notebook (``--save FILE.ipynb``).

Theory
------
A :class:`NotebookRecorder` sees exactly what the console runs: ``start_cell(code)``
before an execute_request is sent, every IOPub output message of that execution
(``add_output``), then ``finish_cell(reply)``. Output messages are turned into nbformat
v4 outputs the way Jupyter frontends do it: consecutive stream text of one name is
merged, ``clear_output`` empties the cell (lazily with ``wait=True``),
``update_display_data`` rewrites earlier outputs with the same ``display_id``.

The notebook is written as plain JSON (nbformat 4.5: every cell has an ``id``), so
nbformat is not a runtime dependency; the tests validate the file with nbformat.
Writing is atomic (temporary file + rename), so an interrupted save never leaves a
truncated notebook behind.

Every cell is recorded (so Ctrl-X s works without ``--save``), which must not make a
long session's memory grow with everything it printed. With ``--save`` (``keep_all``)
stream text past :data:`STREAM_SPOOL_CHARS` per output goes to one unlinked temporary
file per recorder (:class:`StreamText`, :class:`Spool`), read back only when the
notebook is saved. Without it nothing is written anywhere: a long stream output keeps
its first and last :data:`STREAM_KEPT_CHARS` characters (a line in between says how
much was left out), so a 50 MB print costs no second copy on its way to the screen.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import replace_file, umask_mode
from .protocol import Message

NBFORMAT = 4
NBFORMAT_MINOR = 5
#: Stream text kept in memory per output before it moves to a temporary file.
STREAM_SPOOL_CHARS = 64 * 1024
#: Characters encoded at a time into the spool.
_SPOOL_SLICE = 1 << 20
#: Without ``keep_all`` (no ``--save``): the characters a long stream output keeps of
#: its start, and as many of its end.
STREAM_KEPT_CHARS = STREAM_SPOOL_CHARS // 2

#: language_info keys nbformat's schema knows; the rest of a kernel's dict is kept too
#: (the schema allows extra keys), but these are the ones frontends read.
_LANGUAGE_INFO_KEYS = (
    "name",
    "version",
    "mimetype",
    "file_extension",
    "pygments_lexer",
    "codemirror_mode",
    "nbconvert_exporter",
)


def _multiline(text: str) -> list[str]:
    """nbformat's on-disk form of a string: a list of lines, each keeping its newline."""
    return text.splitlines(keepends=True)


def _mime_bundle(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mime, value in data.items():
        if isinstance(value, str) and not mime.endswith("json"):
            out[mime] = _multiline(value)
        else:
            out[mime] = value
    return out


class Spool:
    """One unlinked temporary file (0600) per recorder for the text of long stream
    outputs: one file descriptor however many outputs spill into it."""

    def __init__(self) -> None:
        self._file: Any = None

    def write(self, text: str) -> tuple[int, int]:
        """Append ``text``; return where it is (offset, length in bytes)."""
        if self._file is None:
            import tempfile  # on the first long output: script mode may have none

            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives with the recorder
        f = self._file
        f.seek(0, os.SEEK_END)
        offset = f.tell()
        length = 0
        # Encoded in slices: a 50 MB print is not copied whole once more.
        for start in range(0, len(text), _SPOOL_SLICE):
            # surrogatepass: a kernel may send a lone surrogate (a JSON \ud800 escape);
            # each is encoded alone, so a slice boundary changes no byte.
            data = text[start : start + _SPOOL_SLICE].encode("utf-8", "surrogatepass")
            f.write(data)
            length += len(data)
        return offset, length

    def read(self, offset: int, length: int) -> str:
        self._file.seek(offset)
        return str(self._file.read(length).decode("utf-8", "surrogatepass"))


class StreamText:
    """One stream output's text: in memory while short, then in the recorder's
    :class:`Spool`, so a flood is kept whole without being held. Without a spool, a
    long one keeps only its start and its end (:data:`STREAM_KEPT_CHARS` each)."""

    def __init__(self, spool: Spool | None, text: str = "") -> None:
        self._spool = spool
        self._chunks: list[str] = []
        self._size = 0
        #: (offset, length) runs in the spool, once spilled.
        self._runs: list[tuple[int, int]] = []
        #: Without a spool, once cut: the start kept, and characters left out since.
        self._head: str | None = None
        self._left_out = 0
        self.append(text)

    def append(self, text: str) -> None:
        if not text:
            return
        if self._head is not None:
            self._keep_end(text)
            return
        if not self._runs:
            self._chunks.append(text)
            self._size += len(text)
            if self._size <= STREAM_SPOOL_CHARS:
                return
            text, self._chunks = "".join(self._chunks), []
            if self._spool is None:
                self._head = text[:STREAM_KEPT_CHARS]
                self._size = 0
                # Only what may be kept is copied: not the rest of a 50 MB print.
                rest = len(text) - STREAM_KEPT_CHARS
                self._left_out = max(0, rest - 2 * STREAM_KEPT_CHARS)
                self._keep_end(text[len(text) - rest + self._left_out :])
                return
        assert self._spool is not None
        offset, length = self._spool.write(text)
        last = self._runs[-1] if self._runs else None
        if last is not None and last[0] + last[1] == offset:
            self._runs[-1] = (last[0], last[1] + length)  # contiguous: one run
        else:
            self._runs.append((offset, length))

    def _keep_end(self, text: str) -> None:
        """Add ``text`` to the end kept; drop what falls out of it (once it is twice
        too long: a flood's messages are not cut one by one)."""
        self._chunks.append(text)
        self._size += len(text)
        if self._size <= 2 * STREAM_KEPT_CHARS:
            return
        chunks, size, drop = self._chunks, self._size, 0
        while size - len(chunks[drop]) >= STREAM_KEPT_CHARS:
            size -= len(chunks[drop])
            drop += 1
        if drop:
            del chunks[:drop]  # at once: a flood of 1-character messages stays linear
            self._left_out += self._size - size
            self._size = size
        excess = self._size - STREAM_KEPT_CHARS
        if excess > 0:
            self._chunks[0] = self._chunks[0][excess:]
            self._size -= excess
            self._left_out += excess

    @property
    def cut(self) -> bool:
        """Whether some of the text was left out (no spool, and it was long)."""
        return self._head is not None and (self._left_out > 0 or self._size > STREAM_KEPT_CHARS)

    def getvalue(self) -> str:
        if self._runs:
            assert self._spool is not None
            return "".join(self._spool.read(o, n) for o, n in self._runs)
        if self._head is None:
            return "".join(self._chunks)
        head, tail, left_out = self._head, "".join(self._chunks), self._left_out
        if len(tail) > STREAM_KEPT_CHARS:
            left_out += len(tail) - STREAM_KEPT_CHARS
            tail = tail[-STREAM_KEPT_CHARS:]
        if not left_out:
            return head + tail
        # Cut at line ends where there are some: whole lines on both sides of the note.
        cut = head.rfind("\n") + 1
        if cut:
            head, left_out = head[:cut], left_out + len(head) - cut
        cut = tail.find("\n") + 1
        if 0 < cut < len(tail):
            tail, left_out = tail[cut:], left_out + cut
        note = (
            f"[kconsole: {left_out:,} characters of this output were not kept; "
            "kconsole --save FILE.ipynb keeps all of it]\n"
        )
        return head + ("" if head.endswith("\n") else "\n") + note + tail


@dataclass
class RecordedCell:
    """One executed cell and its outputs in nbformat form."""

    source: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    execution_count: int | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    #: display_id -> indices into outputs (for update_display_data).
    displays: dict[str, list[int]] = field(default_factory=dict)
    clear_pending: bool = False

    def to_json(self) -> dict[str, Any]:
        outputs = []
        for o in self.outputs:
            o = dict(o)
            if o["output_type"] == "stream":
                o["text"] = _multiline(o["text"].getvalue())
            elif "data" in o:
                o["data"] = _mime_bundle(o["data"])
            outputs.append(o)
        return {
            "cell_type": "code",
            "execution_count": self.execution_count,
            "id": self.id,
            "metadata": {},
            "outputs": outputs,
            "source": _multiline(self.source),
        }


class NotebookRecorder:
    """Collects executed cells and their outputs; :meth:`save` writes the notebook.

    ``keep_all``: keep every stream output whole (``--save``: spilled to a temporary
    file past :data:`STREAM_SPOOL_CHARS`); else a long one keeps its start and end."""

    def __init__(self, path: str | os.PathLike[str], *, keep_all: bool = True) -> None:
        self.path = Path(path)
        self._spool = Spool() if keep_all else None
        self.cells: list[RecordedCell] = []
        self.kernel_info: dict[str, Any] = {}
        self.kernelspec: dict[str, Any] = {}
        self._current: RecordedCell | None = None

    def outputs_cut(self) -> int:
        """How many stream outputs recorded left some of their text out (see
        :class:`StreamText`)."""
        return sum(
            1
            for cell in self.cells
            for o in cell.outputs
            if o["output_type"] == "stream" and o["text"].cut
        )

    # -- what the console tells us ------------------------------------------------------

    def set_kernel(
        self, kernel_info: dict[str, Any], *, name: str = "", display_name: str = ""
    ) -> None:
        """Remember the kernel for the notebook's metadata (kernelspec, language_info)."""
        self.kernel_info = dict(kernel_info)
        lang = dict(kernel_info.get("language_info") or {})
        language = str(lang.get("name") or "")
        spec_name = name or str(kernel_info.get("implementation") or language or "unknown")
        self.kernelspec = {
            "name": spec_name,
            "display_name": display_name or spec_name,
            "language": language,
        }

    def start_cell(self, code: str) -> RecordedCell:
        """A cell is about to be executed."""
        cell = RecordedCell(source=code)
        self.cells.append(cell)
        self._current = cell
        return cell

    def add_output(self, msg: Message) -> None:
        """An IOPub message of the current cell's execution."""
        cell = self._current
        if cell is None:
            return
        t = msg.msg_type
        c = msg.content
        if t == "clear_output":
            if c.get("wait"):
                cell.clear_pending = True
            else:
                self._clear(cell)
            return
        if t == "update_display_data":
            self._update_display(c)
            return
        if t not in ("stream", "execute_result", "display_data", "error"):
            return
        if cell.clear_pending:
            self._clear(cell)
        if t == "stream":
            name = c.get("name", "stdout")
            text = str(c.get("text", ""))
            last = cell.outputs[-1] if cell.outputs else None
            # Appended to a StreamText: `+=` on a string held in a dict copies it every
            # time, quadratic in a flood of small stream messages.
            if last is not None and last["output_type"] == "stream" and last["name"] == name:
                last["text"].append(text)
            else:
                cell.outputs.append(
                    {"output_type": "stream", "name": name, "text": StreamText(self._spool, text)}
                )
        elif t == "error":
            cell.outputs.append(
                {
                    "output_type": "error",
                    "ename": str(c.get("ename", "")),
                    "evalue": str(c.get("evalue", "")),
                    "traceback": [str(line) for line in c.get("traceback") or []],
                }
            )
        else:
            out: dict[str, Any] = {
                "output_type": t,
                "data": dict(c.get("data") or {}),
                "metadata": dict(c.get("metadata") or {}),
            }
            if t == "execute_result":
                count = c.get("execution_count")
                out["execution_count"] = count if isinstance(count, int) else None
            display_id = (c.get("transient") or {}).get("display_id")
            if display_id:
                cell.displays.setdefault(str(display_id), []).append(len(cell.outputs))
            cell.outputs.append(out)

    def finish_cell(self, reply: Message | None) -> None:
        """The cell's execute_reply (None when the kernel died before answering)."""
        cell = self._current
        self._current = None
        if cell is None or reply is None:
            return
        count = reply.content.get("execution_count")
        if isinstance(count, int):
            cell.execution_count = count
        for o in cell.outputs:
            if o["output_type"] == "execute_result" and o.get("execution_count") is None:
                o["execution_count"] = cell.execution_count

    def discard_last(self) -> None:
        """Forget the last cell (``exit``: not part of the work being saved)."""
        if self.cells:
            self.cells.pop()

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _clear(cell: RecordedCell) -> None:
        cell.outputs.clear()
        cell.displays.clear()
        cell.clear_pending = False

    def _update_display(self, content: dict[str, Any]) -> None:
        display_id = str((content.get("transient") or {}).get("display_id") or "")
        if not display_id:
            return
        # A display may be updated from a later cell: search every cell, newest first.
        for cell in reversed(self.cells):
            for i in cell.displays.get(display_id, []):
                if i < len(cell.outputs):
                    cell.outputs[i]["data"] = dict(content.get("data") or {})
                    cell.outputs[i]["metadata"] = dict(content.get("metadata") or {})

    # -- writing ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The notebook as an nbformat 4.5 JSON object."""
        metadata: dict[str, Any] = {}
        if self.kernelspec:
            metadata["kernelspec"] = dict(self.kernelspec)
        lang = dict(self.kernel_info.get("language_info") or {})
        if lang.get("name"):
            info = {k: lang[k] for k in _LANGUAGE_INFO_KEYS if k in lang}
            info.update({k: v for k, v in lang.items() if k not in info})
            metadata["language_info"] = info
        return {
            "cells": [c.to_json() for c in self.cells],
            "metadata": metadata,
            "nbformat": NBFORMAT,
            "nbformat_minor": NBFORMAT_MINOR,
        }

    def save(self) -> Path:
        """Write the notebook to ``path`` atomically; return the path."""
        nb = self.to_json()
        try:
            text = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: only JSON's \u escapes carry it
            text = json.dumps(nb, indent=1, ensure_ascii=True, sort_keys=True) + "\n"
        if self.path.exists() and not self.path.is_file():
            # The rename below would replace a device or FIFO with a regular file.
            raise OSError(f"{self.path} is not a regular file")
        # A saved notebook gets the user's usual permissions, as any file they write.
        replace_file(self.path, text.encode("utf-8"), umask_mode())
        return self.path
