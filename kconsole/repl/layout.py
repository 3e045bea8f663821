"""The cell prompt's layout: the prompt_toolkit session (lexer, style, processors,
toolbar, history, completion, keys), and text wrapped for the terminal (the banner)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import is_done
from prompt_toolkit.input.typeahead import store_typeahead
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.layout.processors import (
    ConditionalProcessor,
    HighlightMatchingBracketProcessor,
)
from prompt_toolkit.lexers import Lexer, PygmentsLexer

from ..display.terminal import take_typed_ahead
from .history import IndexedAutoSuggest, load_history_at_once, search_history_quickly
from .key_bindings import load_repl_bindings
from .style import input_style

if TYPE_CHECKING:
    from .repl import Repl


def lexer_for(language_info: dict[str, Any]) -> Lexer | None:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    name = str(language_info.get("pygments_lexer") or language_info.get("name") or "")
    if not name:
        return None
    if name.lower() in _PYTHON_LEXERS:
        # ipykernel names IPython's lexer, which pygments can only find by scanning
        # plugin entry points and importing IPython: ~30 ms and 7 MB before the first
        # prompt. Pygments' own Python lexer highlights the same code.
        from pygments.lexers.python import PythonLexer

        return PygmentsLexer(PythonLexer)
    try:
        lexer_cls = type(get_lexer_by_name(name))
    except ClassNotFound:
        return None
    return PygmentsLexer(lexer_cls)


_PYTHON_LEXERS = frozenset({"ipython3", "ipython", "python3", "python", "ipython2"})


def wrap_words(text: str, width: int) -> str:
    """``text`` with each line wider than ``width`` - 1 terminal cells broken between
    words (the terminal would break it mid-word at the edge); continuation lines keep
    the line's indentation. Lines with escape sequences or tabs, and words wider than
    a line, are left as they are: their width on the screen is not known here."""
    from ..display.text import cell_width

    limit = max(20, width - 1)
    out: list[str] = []
    for line in text.split("\n"):
        if "\x1b" in line or "\t" in line or cell_width(line) <= limit or not line.strip():
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        current, used = indent, cell_width(indent)
        for word in line.split():
            w = cell_width(word)
            if current.strip() and used + 1 + w > limit:
                out.append(current)
                current, used = indent + word, cell_width(indent) + w
            elif current.strip():
                current, used = current + " " + word, used + 1 + w
            else:
                current, used = current + word, used + w
        out.append(current)
    return "\n".join(out)


def build_session(
    repl: Repl, language_info: dict[str, Any], *, style: str | None
) -> PromptSession[str]:
    """The cell prompt's session; ValueError if ``style`` is unknown."""
    session: PromptSession[str] = PromptSession(
        history=repl.history,
        lexer=lexer_for(language_info),
        completer=repl.completer,
        complete_while_typing=False,
        enable_history_search=True,
        key_bindings=load_repl_bindings(repl),
        multiline=True,
        prompt_continuation=repl.status.continuation,
        rprompt=repl.status.rprompt,
        bottom_toolbar=repl.status.toolbar if repl.status.toolbar_on else None,
        # prompt_toolkit's AutoSuggestFromHistory scans every entry on every key.
        auto_suggest=IndexedAutoSuggest(),
        input_processors=[ConditionalProcessor(HighlightMatchingBracketProcessor(), ~is_done)],
        vi_mode=repl.vi_mode,
        style=input_style(style),
        # The chosen style alone colours the input: prompt_toolkit's fallback is
        # pygments' default, made for white paper (pure blue names on black).
        include_default_pygments_style=False,
        enable_suspend=True,  # Ctrl-Z stops kconsole (in cooked mode), `fg` resumes
    )
    load_history_at_once(session.default_buffer)
    search_history_quickly(session.default_buffer)
    return session


def replay_typed_ahead(session: PromptSession[str]) -> None:
    """Keys read from the terminal with the answers to kconsole's startup query: the
    first prompt reads them before the terminal, as if typed at it."""
    typed = take_typed_ahead()
    if typed:
        parsed: list[KeyPress] = []
        parser = Vt100Parser(parsed.append)
        parser.feed(typed)
        parser.flush()
        store_typeahead(session.app.input, parsed)
