"""Printing what a kernel publishes on IOPub to the terminal (or a pipe).

One :class:`OutputPrinter` per console. The REPL hands it every IOPub message that
carries output, in arrival order; it writes text to its stream and never reads
anything back. Rich MIME rendering plugs in through :mod:`kconsole.display`.
"""

from __future__ import annotations

from typing import Any, TextIO

from .protocol import Message

OUTPUT_TYPES = frozenset(
    {
        "stream",
        "execute_result",
        "display_data",
        "update_display_data",
        "error",
        "clear_output",
        "execute_input",
    }
)


class OutputPrinter:
    """Writes IOPub output messages to ``stream``.

    ``own`` tells whether the message answers a request of this console; output of
    other clients is prefixed with their execution count so it is told apart.
    """

    def __init__(self, stream: TextIO, *, color: bool = True) -> None:
        self.stream = stream
        self.color = color
        self._at_line_start = True

    # -- helpers --------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if not text:
            return
        self.stream.write(text)
        self._at_line_start = text.endswith("\n")

    def _ensure_newline(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def render_bundle(self, data: dict[str, Any], metadata: dict[str, Any]) -> str:
        """The terminal text for a MIME bundle (text/plain for now)."""
        text = data.get("text/plain")
        if isinstance(text, list):
            text = "".join(text)
        if text is None:
            kinds = ", ".join(sorted(data)) or "nothing"
            return f"<{kinds}>"
        return str(text)

    # -- messages -------------------------------------------------------------------

    def handle(self, msg: Message, *, own: bool = True) -> None:
        """Print one IOPub message (non-output types are ignored)."""
        t = msg.msg_type
        c = msg.content
        if t == "stream":
            text = c.get("text", "")
            if c.get("name") == "stderr" and self.color:
                text = self._style(text, "31") if text.strip() else text
            self._write(text)
        elif t == "execute_result":
            self._ensure_newline()
            count = c.get("execution_count")
            prompt = self._style(f"Out[{count}]: ", "31;1")
            body = self.render_bundle(c.get("data", {}), c.get("metadata", {}))
            sep = "\n" if "\n" in body else ""
            self._write(f"{prompt}{sep}{body}\n")
        elif t in ("display_data", "update_display_data"):
            self._ensure_newline()
            body = self.render_bundle(c.get("data", {}), c.get("metadata", {}))
            self._write(body if body.endswith("\n") else body + "\n")
        elif t == "error":
            self._ensure_newline()
            tb = c.get("traceback") or [f"{c.get('ename', 'Error')}: {c.get('evalue', '')}"]
            self._write("\n".join(tb) + "\n")
        elif t == "execute_input" and not own:
            self._ensure_newline()
            count = c.get("execution_count")
            head = self._style(f"[remote] In [{count}]: ", "32")
            self._write(head + str(c.get("code", "")).rstrip("\n") + "\n")

    def flush(self) -> None:
        self.stream.flush()

    def note(self, text: str) -> None:
        """A one-line message from kconsole itself (kernel died, interrupted...)."""
        self._ensure_newline()
        self._write(self._style(text, "33") + "\n")
