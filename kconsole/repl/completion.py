"""Tab completion from the kernel (complete_request), never blocking the prompt.

Theory
------
prompt_toolkit runs :meth:`KernelCompleter.get_completions_async` as a background
task and drops its results once the text changed (its ``CompletionState`` no longer
matches), so a late reply for stale text never reaches the menu. What this module
adds is the kernel side: at most one complete_request is in flight. A kernel that is
busy (running a cell of another client) answers shell requests only when it is done;
a second Tab meanwhile does not queue a second request behind the first, it shows
nothing. A request that got no reply within ``timeout`` is given up (its late reply is
dropped by the client's routing, which no longer knows its msg_id).

Cursor positions are Python string indices: unicode code points, as the protocol
(5.2+) counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..client import KernelClient, KernelError

#: Seconds to wait for a complete_reply (IPython's jedi can take a second the first time).
COMPLETE_TIMEOUT = 5.0


def completion_meta(entry: dict[str, Any]) -> str:
    """The menu's right column for one ``_jupyter_types_experimental`` entry."""
    kind = str(entry.get("type") or "")
    if kind == "<unknown>":
        kind = ""
    sig = str(entry.get("signature") or "")
    return f"{kind} {sig}".strip()


def _position(value: Any, default: int) -> int:
    # bool is an int to Python, not to the protocol.
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def completions_from_reply(reply: dict[str, Any], cursor_pos: int) -> list[Completion]:
    """prompt_toolkit completions for a complete_reply's content; what does not fit
    the protocol (a null cursor_start, a match that is not a string) is left out."""
    if reply.get("status") != "ok":
        return []
    # Text between the cursor and cursor_end (completing in the middle of a word) is
    # not replaced: prompt_toolkit only replaces text before the cursor, so a start
    # after the cursor (or before the text) is taken as the cursor (the text's start).
    start = min(max(_position(reply.get("cursor_start"), cursor_pos), 0), cursor_pos)
    types: dict[str, dict[str, Any]] = {}
    metadata = reply.get("metadata")
    entries = metadata.get("_jupyter_types_experimental") if isinstance(metadata, dict) else None
    for t in entries if isinstance(entries, list) else []:
        if isinstance(t, dict) and isinstance(t.get("text"), str):
            types.setdefault(t["text"], t)
    matches = reply.get("matches")
    out: list[Completion] = []
    seen: set[str] = set()
    for match in matches if isinstance(matches, list) else []:
        if not isinstance(match, str) or match in seen:
            continue
        seen.add(match)
        meta = completion_meta(types.get(match, {}))
        out.append(Completion(match, start_position=start - cursor_pos, display_meta=meta or None))
    return out


class KernelCompleter(Completer):
    """Completions from the kernel's complete_request, at the cursor."""

    def __init__(
        self,
        client: KernelClient,
        timeout: float = COMPLETE_TIMEOUT,
        wait_ready: Callable[[], Awaitable[bool]] | None = None,
        hold_redraws: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        self.client = client
        self.timeout = timeout
        #: Waits for a kernel that is still starting (False: it never came up).
        self.wait_ready = wait_ready
        #: Holds the prompt's redraws while the kernel answers: the Tab's next frame
        #: is the one with the menu.
        self.hold_redraws = hold_redraws or contextlib.nullcontext
        self._in_flight: asyncio.Future[dict[str, Any]] | None = None

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        return []  # only the async path is used: the kernel is remote

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        if self.wait_ready is not None and not await self.wait_ready():
            return
        if self.client.dead.is_set():
            return
        if self._in_flight is not None and not self._in_flight.done():
            return  # the kernel has not answered the previous Tab yet: don't queue more
        pos = document.cursor_position
        request = asyncio.ensure_future(
            self.client.complete(document.text, pos, timeout=self.timeout)
        )
        request.add_done_callback(_consume_exception)
        self._in_flight = request
        try:
            # Shielded: when prompt_toolkit cancels us (the text changed), the request
            # stays in flight until the kernel answers, so the guard above holds.
            with self.hold_redraws():
                reply = await asyncio.shield(request)
        except KernelError:
            return  # a busy or slow kernel: no menu, never a hang
        for c in completions_from_reply(reply, pos):
            yield c


def _consume_exception(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # mark retrieved: a timeout after we stopped waiting is not news
