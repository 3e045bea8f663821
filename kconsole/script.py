"""Script mode: code piped on stdin, output to stdout, no screen handling.

Lines are grouped into cells the way the Python REPL groups piped input: a line is
added to the current cell until the kernel's is_complete says the cell is complete
(or invalid, so the kernel reports the error); an ``input()`` in a cell is answered
by the next line of stdin after that cell, and EOF answers as EOF. The exit status is
1 when any cell raised, so ``kconsole start < script.py`` works in a shell pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from typing import Any, TextIO

from .client import EOFInput, KernelDied, KernelTimeout
from .console import EXIT_KERNEL_DIED, KernelConnection, exit_command, payloads_of
from .notebook import NotebookRecorder
from .output import OutputPrinter
from .protocol import Message

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


class LineReader:
    """Reads stdin one line at a time without blocking the event loop."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.eof = False

    async def readline(self) -> str | None:
        if self.eof:
            return None
        loop = asyncio.get_running_loop()
        line = await loop.run_in_executor(None, self.stream.readline)
        if not line:
            self.eof = True
            return None
        return line


class ScriptRunner:
    """Runs piped code cell by cell; ``run()`` returns the exit status.

    ``recorder``: a :class:`~kconsole.notebook.NotebookRecorder` that gets every cell;
    it is saved when ``run()`` returns.
    """

    def __init__(
        self,
        conn: KernelConnection,
        printer: OutputPrinter,
        stdin: TextIO | None = None,
        stderr: TextIO | None = None,
        *,
        recorder: NotebookRecorder | None = None,
    ) -> None:
        self.conn = conn
        self.recorder = recorder
        self.printer = printer
        self.reader = LineReader(stdin or sys.stdin)
        self.stderr = stderr or sys.stderr
        self.failed = False
        #: Writing the output failed (a closed pipe, a full disk): no more cells run.
        self.write_error: OSError | None = None
        conn.client.on_broadcast = self._broadcast

    def _print(self, msg: Message, own: bool = True) -> None:
        if self.write_error is not None:
            return
        try:
            self.printer.handle(msg, own=own)
        except OSError as e:
            self._output_failed(e)

    def _flush(self) -> None:
        if self.write_error is not None:
            return
        try:
            self.printer.flush()
        except OSError as e:
            self._output_failed(e)

    def _output_failed(self, error: OSError) -> None:
        self.write_error = error
        if isinstance(error, BrokenPipeError):
            # The reader is gone (`| head`): nothing more to say, and the interpreter's
            # own flush at exit must not fail again on the dead pipe.
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.printer.stream.fileno())
                os.close(devnull)

    def _broadcast(self, msg: Message) -> None:
        # Output of background threads after idle still belongs on stdout, in order.
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            self.printer.note(f"[kernel {state}]")
        elif msg.msg_type != "execute_input":
            self._print(msg)

    async def _answer_input(self, prompt: str, password: bool) -> str:
        self.printer.stream.write(prompt)
        self.printer.flush()
        line = await self.reader.readline()
        if line is None:
            raise EOFInput
        if prompt:
            # Piped input is not echoed (as in the Python REPL); end the prompt's line
            # so the cell's next output does not run into it.
            self.printer.stream.write("\n")
        self.printer.barrier()  # the prompt is not the printer's: no update erases it
        return line.rstrip("\n")

    async def _cell_status(self, code: str) -> str:
        try:
            reply = await self.conn.client.is_complete(code, timeout=2.0)
        except KernelTimeout:
            return "unknown"
        return str(reply.get("status", "unknown"))

    async def next_cell(self) -> str | None:
        """Read lines until they form a cell; None at EOF with nothing pending."""
        lines: list[str] = []
        while True:
            line = await self.reader.readline()
            if line is None:
                return "".join(lines) if "".join(lines).strip() else None
            if not lines and not line.strip():
                continue  # blank lines between cells
            lines.append(line)
            code = "".join(lines)
            if lines[-1].strip() == "" and len(lines) > 1:
                return code  # a blank line always closes a block, as in the REPL
            status = await self._cell_status(code)
            if status in ("complete", "invalid"):
                return code
            if status == "unknown" and not line.rstrip("\n").endswith("\\"):
                return code

    def _page(self, data: Any) -> None:
        # `obj?` in a script: the help goes to stdout (no pager), uncoloured in a pipe.
        text = data.get("text/plain") if isinstance(data, dict) else str(data)
        if not text:
            return
        text = str(text)
        if not self.printer.color:
            text = _ANSI.sub("", text)
        self.printer.stream.write(text.rstrip("\n") + "\n")
        self.printer.flush()
        self.printer.barrier()  # not the printer's text: no display update erases it

    def _on_output(self, msg: Message) -> None:
        if self.recorder is not None:
            self.recorder.add_output(msg)
        self._print(msg)

    async def run(self) -> int:
        if self.recorder is None:
            return await self._run()
        spec = self.conn.spec
        self.recorder.set_kernel(
            self.conn.client.kernel_info,
            name=spec.name if spec is not None else "",
            display_name=spec.display_name if spec is not None else "",
        )
        try:
            return await self._run()
        finally:
            try:
                self.recorder.save()
            except OSError as e:
                print(f"kconsole: could not save the notebook: {e}", file=self.stderr)

    async def _run(self) -> int:
        client = self.conn.client
        while True:
            code = await self.next_cell()
            if code is None:
                break
            if exit_command(code, self.conn.language_info) is not None:
                break  # the console leaves; the kernel is not told to end itself
            if self.recorder is not None:
                self.recorder.start_cell(code)
            reply = None
            try:
                reply = await client.execute(
                    code,
                    on_output=self._on_output,
                    on_input=self._answer_input,
                    on_idle_lost=lambda: self.printer.note(
                        "[kconsole: the kernel's idle status never came; output may be lost]"
                    ),
                )
            except KernelDied as e:
                self._flush()
                print(f"kconsole: kernel died: {e}", file=self.stderr)
                return EXIT_KERNEL_DIED
            finally:
                self._flush()
                if self.recorder is not None:
                    self.recorder.finish_cell(reply)
            if self.write_error is not None:
                if not isinstance(self.write_error, BrokenPipeError):
                    why = f"kconsole: cannot write the output: {self.write_error}"
                    print(why, file=self.stderr)
                return 1
            status = reply.content.get("status")
            if status == "error":
                self.failed = True
            payload = payloads_of(reply.content)
            for p in payload:
                if p.get("source") == "page":
                    self._page(p.get("data") or {})
            if any(p.get("source") == "ask_exit" for p in payload):
                if self.recorder is not None:
                    self.recorder.discard_last()
                break
        return 1 if self.failed else 0
