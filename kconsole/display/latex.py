"""text/latex as readable Unicode math.

Theory
------
The source is split into tokens and parsed by recursive descent into *boxes*: a
box is a list of equally wide lines plus a baseline row, so a fraction can put its
numerator above the baseline and its denominator below, and boxes set side by side
line up on their baselines (the way TeX does it, in a grid of terminal cells).
Display math (``$$..$$``, ``\\[..\\]``, environments) is laid out in two dimensions;
inline math (``$..$`` inside text, Markdown) is *linear*: one line, ``a/b`` (a side
that is more than one number, symbol or call in parentheses: ``(a + b)/(2a)``, but
``1/2``), Unicode super- and subscripts where every character has one, ``^(..)``
otherwise. Function names hug a parenthesised argument (``log(x + 1)``, as sympy's
``\\log{\\left(x + 1 \\right)}`` means), align environments line up on ``&``, and
matrix rows stack with no blank row between them.

Whatever this module does not understand is shown as the LaTeX source: a renderer
that guesses wrong would be worse than the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .registry import LATEX_LIMIT, check_time
from .text import cell_width

# -- boxes ---------------------------------------------------------------------------


@dataclass
class Box:
    """Lines of equal width with a baseline row (where a neighbour's text sits)."""

    lines: list[str]
    baseline: int = 0

    @property
    def width(self) -> int:
        return max((cell_width(ln) for ln in self.lines), default=0)

    @property
    def height(self) -> int:
        return len(self.lines)

    def padded(self) -> Box:
        w = self.width
        return Box([ln + " " * (w - cell_width(ln)) for ln in self.lines], self.baseline)

    def text(self) -> str | None:
        """The one line of a one-line box, else None."""
        return self.lines[0] if len(self.lines) == 1 else None


def text_box(s: str) -> Box:
    return Box([s], 0)


EMPTY = Box([""], 0)


def hcat(boxes: list[Box]) -> Box:
    """Boxes side by side, aligned on their baselines."""
    boxes = [b for b in boxes if b.lines and (b.width or b.height > 1)]
    if not boxes:
        return Box([""], 0)
    if all(b.height == 1 for b in boxes):
        return Box(["".join(b.lines[0] for b in boxes)], 0)
    above = max(b.baseline for b in boxes)
    below = max(b.height - b.baseline - 1 for b in boxes)
    rows = [""] * (above + below + 1)
    for b in boxes:
        p = b.padded()
        w = p.width
        top = above - b.baseline
        for r in range(len(rows)):
            k = r - top
            rows[r] += p.lines[k] if 0 <= k < p.height else " " * w
    return Box(rows, above)


def center(s: str, width: int) -> str:
    gap = width - cell_width(s)
    return " " * (gap // 2) + s + " " * (gap - gap // 2)


def vstack(boxes: list[Box], baseline_box: int) -> Box:
    """Boxes one above the other, centred; the baseline is that of box ``baseline_box``."""
    w = max(b.width for b in boxes)
    lines: list[str] = []
    base = 0
    for i, b in enumerate(boxes):
        if i == baseline_box:
            base = len(lines) + b.baseline
        lines.extend(center(ln, w) for ln in b.padded().lines)
    return Box(lines, base)


# -- symbols -------------------------------------------------------------------------

GREEK = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ϵ",
    "varepsilon": "ε",
    "zeta": "ζ",
    "eta": "η",
    "theta": "θ",
    "vartheta": "ϑ",
    "iota": "ι",
    "kappa": "κ",
    "lambda": "λ",
    "mu": "μ",
    "nu": "ν",
    "xi": "ξ",
    "omicron": "ο",
    "pi": "π",
    "varpi": "ϖ",
    "rho": "ρ",
    "varrho": "ϱ",
    "sigma": "σ",
    "varsigma": "ς",
    "tau": "τ",
    "upsilon": "υ",
    "phi": "ϕ",
    "varphi": "φ",
    "chi": "χ",
    "psi": "ψ",
    "omega": "ω",
    "Gamma": "Γ",
    "Delta": "Δ",
    "Theta": "Θ",
    "Lambda": "Λ",
    "Xi": "Ξ",
    "Pi": "Π",
    "Sigma": "Σ",
    "Upsilon": "Υ",
    "Phi": "Φ",
    "Psi": "Ψ",
    "Omega": "Ω",
}
ORD = {
    **GREEK,
    "infty": "∞",
    "partial": "∂",
    "nabla": "∇",
    "forall": "∀",
    "exists": "∃",
    "nexists": "∄",
    "emptyset": "∅",
    "varnothing": "∅",
    "neg": "¬",
    "lnot": "¬",
    "hbar": "ℏ",
    "ell": "ℓ",
    "Re": "ℜ",
    "Im": "ℑ",
    "aleph": "ℵ",
    "angle": "∠",
    "triangle": "△",
    "prime": "′",
    "dots": "…",
    "ldots": "…",
    "cdots": "⋯",
    "vdots": "⋮",
    "ddots": "⋱",
    "degree": "°",
    "circ": "∘",
    "langle": "⟨",
    "rangle": "⟩",
    "lfloor": "⌊",
    "rfloor": "⌋",
    "lceil": "⌈",
    "rceil": "⌉",
    "{": "{",
    "}": "}",
    "|": "‖",
    "%": "%",
    "$": "$",
    "#": "#",
    "&": "&",
    "_": "_",
    "top": "⊤",
    "bot": "⊥",
    "square": "□",
    "checkmark": "✓",
    "dagger": "†",
}
REL = {
    "leq": "≤",
    "le": "≤",
    "geq": "≥",
    "ge": "≥",
    "neq": "≠",
    "ne": "≠",
    "approx": "≈",
    "sim": "∼",
    "simeq": "≃",
    "equiv": "≡",
    "cong": "≅",
    "propto": "∝",
    "ll": "≪",
    "gg": "≫",
    "in": "∈",
    "notin": "∉",
    "ni": "∋",
    "subset": "⊂",
    "supset": "⊃",
    "subseteq": "⊆",
    "supseteq": "⊇",
    "to": "→",
    "rightarrow": "→",
    "leftarrow": "←",
    "gets": "←",
    "Rightarrow": "⇒",
    "Leftarrow": "⇐",
    "leftrightarrow": "↔",
    "Leftrightarrow": "⇔",
    "iff": "⟺",
    "implies": "⟹",
    "mapsto": "↦",
    "longrightarrow": "⟶",
    "longleftarrow": "⟵",
    "perp": "⊥",
    "parallel": "∥",
    "mid": "∣",
    "models": "⊨",
    "vdash": "⊢",
    "coloneqq": "≔",
    "prec": "≺",
    "succ": "≻",
    "preceq": "⪯",
    "succeq": "⪰",
}
BIN = {
    "pm": "±",
    "mp": "∓",
    "times": "×",
    "div": "÷",
    "cdot": "⋅",
    "ast": "∗",
    "star": "⋆",
    "bullet": "∙",
    "oplus": "⊕",
    "otimes": "⊗",
    "cup": "∪",
    "cap": "∩",
    "setminus": "∖",
    "wedge": "∧",
    "land": "∧",
    "vee": "∨",
    "lor": "∨",
    "odot": "⊙",
    "bmod": "mod",
}
BIG_LIMITS = {
    "sum": "∑",
    "prod": "∏",
    "coprod": "∐",
    "bigcup": "⋃",
    "bigcap": "⋂",
    "bigoplus": "⨁",
    "bigotimes": "⨂",
    "bigvee": "⋁",
    "bigwedge": "⋀",
}
INTEGRALS = {"int": "∫", "iint": "∬", "iiint": "∭", "oint": "∮"}
FUNCTIONS = {
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "coth",
    "log",
    "ln",
    "lg",
    "exp",
    "det",
    "dim",
    "ker",
    "deg",
    "gcd",
    "arg",
    "max",
    "min",
    "sup",
    "inf",
    "lim",
    "limsup",
    "liminf",
    "Pr",
    "hom",
    "mod",
}
FUNCTIONS_WITH_LIMITS = {"lim", "limsup", "liminf", "max", "min", "sup", "inf", "det", "gcd", "Pr"}
SPACES = {
    ",": " ",
    ";": " ",
    ":": " ",
    ">": " ",
    "!": "",
    " ": " ",
    "quad": "  ",
    "qquad": "    ",
    "enspace": " ",
    "thinspace": " ",
}
IGNORED = {
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "nonumber",
    "notag",
    "mathstrut",
    "middle",
    "allowbreak",
    "centering",
    "tiny",
    "small",
    "normalsize",
    "large",
    "Large",
    "hline",
    "hdashline",
}
SKIP_ARG = {"label", "color", "tag", "vspace", "hspace", "phantom", "ref", "eqref", "cline"}
#: \mathbin{..} and the like: their argument, spaced as that kind of atom.
CLASSES = {"mathbin": "bin", "mathrel": "rel", "mathpunct": "punct", "mathord": "ord"}
FONTS = {
    "mathrm",
    "mathit",
    "mathbf",
    "mathsf",
    "mathtt",
    "boldsymbol",
    "bm",
    "mathcal",
    "mathfrak",
    "mathscr",
    "operatorname",
    "textbf",
    "textit",
    "emph",
    "pmb",
}
TEXT_COMMANDS = {"text", "textrm", "mbox", "hbox", "textnormal", "textsf", "texttt"}
ACCENTS = {
    "hat": "\u0302",
    "widehat": "\u0302",
    "bar": "\u0304",
    "overline": "\u0305",
    "vec": "\u20d7",
    "dot": "\u0307",
    "ddot": "\u0308",
    "tilde": "\u0303",
    "widetilde": "\u0303",
    "underline": "\u0332",
    "check": "\u030c",
    "acute": "\u0301",
    "grave": "\u0300",
    "breve": "\u0306",
}

SUP = dict(
    zip(
        "0123456789+-=()nixyabcdefghjklmoprstuvwzABDEGHIJKLMNOPRTUVWαβγδθφχ−′",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˣʸᵃᵇᶜᵈᵉᶠᵍʰʲᵏˡᵐᵒᵖʳˢᵗᵘᵛʷᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵅᵝᵞᵟᶿᵠᵡ⁻′",
        strict=True,
    )
)
SUB = dict(
    zip(
        "0123456789+-=()aehijklmnoprstuvxβγρφχ−",
        "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ₋",
        strict=True,
    )
)
BLACKBOARD = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}

# Tall delimiters: (top, middle, bottom, one-line form).
DELIMS = {
    "(": ("⎛", "⎜", "⎝", "("),
    ")": ("⎞", "⎟", "⎠", ")"),
    "[": ("⎡", "⎢", "⎣", "["),
    "]": ("⎤", "⎥", "⎦", "]"),
    "{": ("⎧", "⎪", "⎩", "{"),
    "}": ("⎫", "⎪", "⎭", "}"),
    "|": ("│", "│", "│", "|"),
    "‖": ("‖", "‖", "‖", "‖"),
    "⌊": ("│", "│", "⌊", "⌊"),
    "⌋": ("│", "│", "⌋", "⌋"),
    "⌈": ("⌈", "│", "│", "⌈"),
    "⌉": ("⌉", "│", "│", "⌉"),
    "⟨": ("⟨", "⟨", "⟨", "⟨"),
    "⟩": ("⟩", "⟩", "⟩", "⟩"),
    ".": ("", "", "", ""),
}
MATRIX_DELIMS = {
    "pmatrix": ("(", ")"),
    "bmatrix": ("[", "]"),
    "Bmatrix": ("{", "}"),
    "vmatrix": ("|", "|"),
    "Vmatrix": ("‖", "‖"),
    "matrix": (".", "."),
    "smallmatrix": (".", "."),
    "array": (".", "."),
    "cases": ("{", "."),
    "dcases": ("{", "."),
}
ALIGN_ENVS = {
    "align",
    "align*",
    "aligned",
    "eqnarray",
    "eqnarray*",
    "split",
    "gather",
    "gather*",
    "gathered",
    "alignat",
    "alignat*",
    "multline",
    "multline*",
    "equation",
    "equation*",
    "displaymath",
    "math",
}


def tall_delim(ch: str, height: int, baseline: int = 0) -> Box:
    """A delimiter ``height`` rows tall (one row: the plain character)."""
    top, mid, bot, one = DELIMS.get(ch, (ch, ch, ch, ch))
    if height <= 1:
        return Box([one], 0)
    if ch == "{" or ch == "}":
        # A brace has a point in its middle row.
        point = "⎨" if ch == "{" else "⎬"
        rows = [top] + [mid] * (height - 2) + [bot]
        rows[height // 2] = point if height > 2 else rows[height // 2]
        return Box(rows, baseline)
    return Box([top] + [mid] * (height - 2) + [bot], baseline)


# -- tokens --------------------------------------------------------------------------

_TOKEN = re.compile(r"\\([A-Za-z]+)\*?|\\(.)|(\s+)|(.)", re.S)


def tokenize(src: str) -> list[str]:
    """Commands as ``\\name``, ``\\\\`` as a row break, runs of space as ``" "``."""
    toks: list[str] = []
    for m in _TOKEN.finditer(src):
        if m.group(1):
            toks.append("\\" + m.group(1))
        elif m.group(2) is not None:
            toks.append("\\" + m.group(2))
        elif m.group(3):
            toks.append(" ")
        elif m.group(4) == "%":
            # A comment runs to the end of the line.
            continue
        else:
            toks.append(m.group(4))
    return toks


class LatexError(ValueError):
    """The source uses something this renderer does not understand."""


# Atom kinds decide spacing: a relation or a binary operator gets spaces around it.
_REL_CHARS = set("=<>")
_BIN_CHARS = set("+-*")
_PUNCT = set(",;")


@dataclass
class _Atom:
    box: Box
    kind: str = "ord"  # ord, bin, rel, punct, open, close, op


#: Deepest nesting of groups laid out; deeper formulas are shown as their source.
MAX_DEPTH = 32


class _Parser:
    def __init__(self, tokens: list[str], linear: bool) -> None:
        self.t = tokens
        self.i = 0
        self.linear = linear
        self.depth = 0
        #: The outermost sequence's boxes and where a line may break in it (before
        #: each binary operator or relation): a formula wider than the terminal is
        #: broken there.
        self.top: tuple[list[Box], list[int]] = ([], [])

    def peek(self, skip_space: bool = True) -> str | None:
        if skip_space:
            while self.i < len(self.t) and self.t[self.i] == " ":
                self.i += 1
        return self.t[self.i] if self.i < len(self.t) else None

    def next(self) -> str:
        tok = self.peek()
        if tok is None:
            raise LatexError("unexpected end of input")
        self.i += 1
        return tok

    def expect(self, tok: str) -> None:
        if self.next() != tok:
            raise LatexError(f"expected {tok}")

    # -- sequences --------------------------------------------------------------------

    def parse_rows(self, stop: set[str], compact: bool = False) -> list[list[Box]]:
        """Rows (``\\\\``) of cells (``&``) up to a token in ``stop`` (not consumed)."""
        rows: list[list[Box]] = [[]]
        while True:
            box = self.parse_seq(stop | {"&", "\\\\"}, compact)
            rows[-1].append(box)
            tok = self.peek()
            if tok == "&":
                self.i += 1
            elif tok == "\\\\":
                self.i += 1
                if self.peek() == "[":  # \\[2pt] spacing
                    while self.i < len(self.t) and self.t[self.i] != "]":
                        self.i += 1
                    self.i += 1
                rows.append([])
            else:
                break
        if rows and rows[-1] == [] or (len(rows) > 1 and all(not b.width for b in rows[-1])):
            rows.pop()
        return rows

    def parse_seq(self, stop: set[str], compact: bool = False) -> Box:
        self.depth += 1
        try:
            return self._parse_seq(stop, compact)
        finally:
            self.depth -= 1

    def _parse_seq(self, stop: set[str], compact: bool) -> Box:
        if self.depth > MAX_DEPTH:
            raise LatexError("nested too deeply")
        check_time()
        atoms: list[_Atom] = []
        while True:
            tok = self.peek()
            if tok is None or tok in stop:
                break
            if tok in ("^", "_"):
                base = atoms.pop() if atoms else _Atom(EMPTY)
                atoms.append(self.scripts(base))
                continue
            atom = self.parse_atom(compact)
            if atom is not None:
                atoms.append(atom)
        return self.join(atoms, compact)

    def join(self, atoms: list[_Atom], compact: bool) -> Box:
        # A linear fraction with a term right beside it (no operator between) is
        # parenthesised: "1/2mv²" reads as 1/(2mv²), "(1/2)mv²" only one way.
        n = len(atoms)
        for k, a in enumerate(atoms):
            if a.kind == "frac":
                before = k > 0 and atoms[k - 1].kind in _JUXTAPOSED_BEFORE
                after = k + 1 < n and atoms[k + 1].kind in _JUXTAPOSED_AFTER
                atoms[k] = _Atom(_parens(a.box) if before or after else a.box, "ord")
        boxes: list[Box] = []
        breaks: list[int] = []
        prev: str | None = None
        for k, a in enumerate(atoms):
            kind = a.kind
            if (
                prev == "root"
                and kind in ("ord", "root")
                and a.box.lines[a.box.baseline][:1].isalnum()
            ):
                boxes.append(text_box(" "))  # "√2 e", not "√2e" (which reads as √(2e))
            if kind == "bin" and (prev in (None, "bin", "rel", "open", "punct", "op")):
                kind = "ord"  # a unary minus: no spaces
            if not compact and kind in ("bin", "rel") and k < len(atoms) - 1:
                breaks.append(len(boxes))
                if boxes and not _ends_space(boxes[-1]):
                    boxes.append(text_box(" "))
                boxes.append(a.box)
                boxes.append(text_box(" "))
            elif not compact and kind in ("punct", "op") and k < len(atoms) - 1:
                boxes.append(a.box)
                boxes.append(text_box(" "))
            elif (
                kind in ("fn", "lim")
                and k < len(atoms) - 1
                and atoms[k + 1].kind not in ("open", "bin", "rel", "punct", "close")
                and not _opens(atoms[k + 1].box)
            ):
                # "\sin x" reads "sin x"; "\sin(x)" stays "sin(x)", and so does sympy's
                # "\sin{\left(x \right)}" (a group that opens with a delimiter).
                if prev in ("ord", "close", "root") and boxes and not _ends_space(boxes[-1]):
                    boxes.append(text_box(" "))
                boxes.append(a.box)
                boxes.append(text_box(" "))
            elif kind in ("fn", "lim") and prev in ("ord", "close", "root") and boxes:
                # "2 \sin(x)" reads "2 sin(x)", not "2sin(x)" (TeX's thin space).
                if not _ends_space(boxes[-1]):
                    boxes.append(text_box(" "))
                boxes.append(a.box)
            elif a.box.text() == " " and boxes and _ends_space(boxes[-1]):
                continue  # sympy's ",\ ": the comma has its space already
            else:
                boxes.append(a.box)
            prev = kind
        if self.depth == 1:
            self.top = (boxes, breaks)
        return hcat(boxes)

    # -- atoms ------------------------------------------------------------------------

    def parse_arg(self, compact: bool = False) -> Box:
        """One argument: a braced group, a command, or a single character."""
        tok = self.peek()
        if tok is None:
            raise LatexError("missing argument")
        if tok == "{":
            self.i += 1
            box = self.parse_seq({"}"}, compact)
            self.expect("}")
            return box
        atom = self.parse_atom(compact)
        return atom.box if atom else EMPTY

    def raw_group(self) -> str:
        """A braced group's source as text (for ``\\text`` and environment names)."""
        if self.peek() != "{":
            return self.next()
        self.i += 1
        depth = 0
        out: list[str] = []
        while self.i < len(self.t):
            tok = self.t[self.i]
            self.i += 1
            if tok == "{":
                depth += 1
            elif tok == "}":
                if depth == 0:
                    return "".join(out)
                depth -= 1
            out.append(tok[1:] if tok.startswith("\\") and len(tok) == 2 else tok)
        raise LatexError("unclosed group")

    def parse_atom(self, compact: bool) -> _Atom | None:
        tok = self.next()
        if tok == "{":
            box = self.parse_seq({"}"}, compact)
            self.expect("}")
            return _Atom(box)
        if tok == "}":
            raise LatexError("unbalanced }")
        if not tok.startswith("\\") or tok == "\\\\":
            if tok == "\\\\" or tok == "&":
                raise LatexError(f"unexpected {tok}")
            if tok == "-":
                return _Atom(text_box("−"), "bin")
            if tok == "'":
                return _Atom(text_box("′"))
            if tok in _REL_CHARS:
                return _Atom(text_box(tok), "rel")
            if tok in _BIN_CHARS:
                return _Atom(text_box(tok), "bin")
            if tok in _PUNCT:
                return _Atom(text_box(tok), "punct")
            if tok in "([":
                return _Atom(text_box(tok), "open")
            if tok in ")]":
                return _Atom(text_box(tok), "close")
            if tok == "~":
                return _Atom(text_box(" "))
            return _Atom(text_box(tok))
        return self.command(tok[1:], compact)

    def command(self, name: str, compact: bool) -> _Atom | None:
        if name in ORD:
            return _Atom(
                text_box(ORD[name]), "open" if name in ("langle", "lfloor", "lceil") else "ord"
            )
        if name in REL:
            return _Atom(text_box(REL[name]), "rel")
        if name in BIN:
            return _Atom(text_box(BIN[name]), "bin")
        if name in SPACES:
            return _Atom(text_box(SPACES[name]))
        if name in IGNORED:
            return None
        if name in SKIP_ARG:
            self.raw_group()
            return None
        if name in BIG_LIMITS:
            return _Atom(text_box(BIG_LIMITS[name]), "op")
        if name in INTEGRALS:
            return _Atom(text_box(INTEGRALS[name]), "int")
        if name in FUNCTIONS:
            kind = "lim" if name in FUNCTIONS_WITH_LIMITS else "fn"
            # "\sin x" reads "sin x", "\sin(x)" reads "sin(x)".
            return _Atom(text_box(name), kind)
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            num = self.parse_arg()
            den = self.parse_arg()
            # Linear, a fraction beside a term gets parentheses (see join).
            return _Atom(self.fraction(num, den), "frac" if self.linear else "ord")
        if name in ("binom", "dbinom", "tbinom"):
            top = self.parse_arg()
            bot = self.parse_arg()
            if self.linear:
                return _Atom(text_box(f"C({_lin(top)}, {_lin(bot)})"))
            stack = vstack([top, bot], 0)
            stack = Box(stack.lines, stack.height // 2 if stack.height > 1 else 0)
            h = stack.height
            return _Atom(
                hcat(
                    [tall_delim("(", h, stack.baseline), stack, tall_delim(")", h, stack.baseline)]
                )
            )
        if name == "sqrt":
            index = None
            if self.peek() == "[":
                self.i += 1
                index = self.parse_seq({"]"}, True)
                self.expect("]")
            box = self.root(self.parse_arg(), index)
            # "√2" written without a bar: what follows must not read as under the root.
            return _Atom(box, "root" if re.fullmatch(r"\S*√\w+", box.text() or "") else "ord")
        if name == "mathbb":
            return _Atom(text_box("".join(_blackboard(c) for c in self.raw_group())))
        if name in TEXT_COMMANDS:
            return _Atom(text_box(self.raw_group()))
        if name in FONTS:
            return _Atom(self.parse_arg(compact))
        if name in CLASSES:
            return _Atom(self.parse_arg(compact), CLASSES[name])
        if name == "pmod":
            arg = self.parse_arg(compact)
            return _Atom(hcat([text_box(" (mod "), arg, text_box(")")]))
        if name in ACCENTS:
            arg = self.parse_arg(compact)
            s = arg.text()
            if s is None or not s:
                return _Atom(arg)
            mark = ACCENTS[name]
            if name in ("overline", "underline") or len(s) > 1:
                if name in ("overline", "underline", "bar"):
                    mark = ACCENTS["overline" if name != "underline" else "underline"]
                    return _Atom(text_box("".join(c + mark for c in s)))
                return _Atom(text_box(s[:-1] + s[-1] + mark))
            return _Atom(text_box(s + mark))
        if name in ("overset", "stackrel", "underset"):
            a = self.parse_arg(True)
            b = self.parse_arg(compact)
            if self.linear:
                return _Atom(b)
            if name == "underset":
                return _Atom(vstack([b, a], 0), "rel")
            return _Atom(vstack([a, b], 1), "rel")
        if name == "not":
            atom = self.parse_atom(compact)
            if atom and atom.box.text():
                s = atom.box.text() or ""
                negated = {"=": "≠", "∈": "∉", "⊂": "⊄", "≤": "≰", "≥": "≱", "≡": "≢"}
                return _Atom(text_box(negated.get(s, s + "\u0338")), "rel")
            return atom
        if name == "left":
            return self.left_right()
        if name == "right":
            raise LatexError("\\right without \\left")
        if name == "begin":
            return _Atom(self.environment(self.raw_group()))
        if name in ("end",):
            raise LatexError("unexpected \\end")
        raise LatexError(f"unknown command \\{name}")

    # -- constructions ------------------------------------------------------------------

    def fraction(self, num: Box, den: Box) -> Box:
        if self.linear:
            return text_box(f"{_paren(_lin(num))}/{_paren(_lin(den))}")
        w = max(num.width, den.width, 1)
        return Box(
            [center(ln, w) for ln in num.padded().lines]
            + ["─" * w]
            + [center(ln, w) for ln in den.padded().lines],
            num.height,
        )

    def root(self, arg: Box, index: Box | None) -> Box:
        pre = ""
        if index is not None:
            idx = index.text() or ""
            pre = _script(idx, SUP) or (idx + " ")
        s = arg.text()
        if s is not None and (len(s) <= 1 or s.isalnum()):
            return text_box(pre + "√" + s)
        if self.linear:
            return text_box(pre + "√(" + _lin(arg) + ")")
        p = arg.padded()
        lines = [" " * (cell_width(pre) + 1) + "_" * p.width]
        lines += [
            (pre + "√" if k == p.height - 1 else " " * cell_width(pre) + "│") + ln
            for k, ln in enumerate(p.lines)
        ]
        return Box(lines, p.baseline + 1)

    def scripts(self, base: _Atom) -> _Atom:
        sup: Box | None = None
        sub: Box | None = None
        while self.peek() in ("^", "_"):
            tok = self.next()
            arg = self.parse_arg(compact=True)
            if tok == "^":
                sup = arg if sup is None else hcat([sup, arg])
            else:
                sub = arg if sub is None else hcat([sub, arg])
        if base.kind in ("op", "lim") and not self.linear:
            parts = [b for b in (sup, base.box, sub) if b is not None]
            return _Atom(vstack(parts, 1 if sup is not None else 0), "op")
        if base.kind == "frac":
            base = _Atom(_parens(base.box))  # (a/b)², not a/b²
        sup_s = _script(sup.text(), SUP) if sup is not None else ""
        sub_s = _script(sub.text(), SUB) if sub is not None else ""
        # A limit with its subscript reads as an operator: "lim_(x→0) (…)".
        kind = "op" if base.kind in ("op", "int", "lim") else base.kind
        if sup_s is not None and sub_s is not None and (base.box.height == 1 or self.linear):
            return _Atom(hcat([base.box, text_box(sub_s + sup_s)]), kind)
        if self.linear:
            s = _lin(base.box)
            if sub is not None:
                s += sub_s if sub_s is not None else f"_({_lin(sub)})"
            if sup is not None:
                s += sup_s if sup_s is not None else f"^({_lin(sup)})"
            return _Atom(text_box(s), kind)
        hb, bb = base.box.height, base.box.baseline
        if sup_s is not None and sub_s is not None:
            # A tall base (a bracket): Unicode scripts at its top and bottom rows.
            rows = [""] * hb
            rows[0] += sup_s
            rows[-1] += sub_s
            return _Atom(hcat([base.box, Box(rows, bb)]), kind)
        # Two-dimensional scripts: the superscript ends on the row above the base's
        # top row (one-row base) or on its top row (tall base); the subscript starts
        # below the base (one row) or on its bottom row (tall).
        top = sup.padded().lines if sup is not None else []
        bot = sub.padded().lines if sub is not None else []
        overlap = 1 if hb > 1 else 0
        lines = top + [""] * max(0, hb - (overlap if top else 0) - (overlap if bot else 0)) + bot
        base_row = (len(top) - (overlap if top else 0)) + bb
        col = Box(lines, base_row)
        return _Atom(hcat([base.box, col]), kind)

    def left_right(self) -> _Atom:
        open_tok = self.next()
        left = ORD.get(open_tok[1:], open_tok[1:]) if open_tok.startswith("\\") else open_tok
        inner = self.parse_seq({"\\right"})
        self.expect("\\right")
        close_tok = self.next()
        right = ORD.get(close_tok[1:], close_tok[1:]) if close_tok.startswith("\\") else close_tok
        h = inner.height
        return _Atom(
            hcat([tall_delim(left, h, inner.baseline), inner, tall_delim(right, h, inner.baseline)])
        )

    def environment(self, name: str) -> Box:
        name = name.strip()
        spec: list[str] = []
        if name == "array" and self.peek() == "{":
            spec = _column_spec(self.raw_group())
        if name in ("alignat", "alignat*"):
            self.raw_group()
        rows = self.parse_rows({"\\end"})
        self.expect("\\end")
        end = self.raw_group().strip()
        if end != name:
            raise LatexError(f"\\begin{{{name}}} ended by \\end{{{end}}}")
        if name in MATRIX_DELIMS:
            left, right = MATRIX_DELIMS[name]
            if self.linear:
                body = "; ".join(", ".join(_lin(c) for c in r) for r in rows)
                return text_box(f"{DELIMS[left][3]}{body}{DELIMS[right][3]}")
            if name.endswith("cases"):
                grid = _grid(rows, gaps=["  "], align=["left"])
            else:
                # LaTeX centres matrix columns; a column of plain numbers is set flush
                # right instead, so units stand under units (numpy's and sympy's look).
                grid = (
                    _grid(rows, gaps=["  "], align=spec, cycle=False)
                    if spec
                    else _grid(rows, gaps=["  "], align=["center"], numbers_right=True)
                )
            return hcat(
                [
                    tall_delim(left, grid.height, grid.baseline),
                    grid,
                    tall_delim(right, grid.height, grid.baseline),
                ]
            )
        if name in ALIGN_ENVS:
            if self.linear:
                return text_box("; ".join(" ".join(_lin(c) for c in r) for r in rows))
            return _align_grid(name, rows)
        raise LatexError(f"unknown environment {name}")


#: Atom kinds that multiply a fraction written right after them, or right before
#: it. Not a function name after it: a space sets it apart ("d/(dx) sin(x)", as
#: "2 sin(x)"); a function name before it takes it as its argument ("sin(a/b)").
_JUXTAPOSED_BEFORE = frozenset({"ord", "close", "frac", "root", "fn"})
_JUXTAPOSED_AFTER = frozenset({"ord", "open", "frac", "root", "op", "int"})


def _parens(b: Box) -> Box:
    return text_box(f"({_lin(b)})")


def _ends_space(b: Box) -> bool:
    s = b.text()
    return s is not None and s.endswith(" ")


def _column_spec(spec: str) -> list[str]:
    """An array's column alignments from its spec (``{r|cl}``, ``{@{}ll@{}}``)."""
    spec = re.sub(r"[@!>< pmbw]\{[^{}]*\}", "", spec)
    return [{"l": "left", "c": "center", "r": "right"}[ch] for ch in spec if ch in "lcr"]


_REL_START = frozenset("=<>") | frozenset(REL.values())
_GATHER = {"gather", "gather*", "gathered", "multline", "multline*"}
_GATHER |= {"equation", "equation*", "displaymath", "math"}


def _align_grid(name: str, rows: list[list[Box]]) -> Box:
    """The rows of an align-like environment, laid out on their ``&``."""
    if name in _GATHER:
        return _grid(rows, gaps=["  "], align=["center"])
    if name in ("eqnarray", "eqnarray*"):
        # "a & = & b": the relation has a column of its own.
        return _grid(rows, gaps=[" "], align=["right", "center", "left"])
    # align: columns in pairs, right then left, so "a &= b" lines up the "="; the
    # pairs side by side are set apart (amsmath puts 2em between them).
    return _grid(rows, gaps=["", "    "], align=["right", "left"], space_rel=True)


def _grid(
    rows: list[list[Box]],
    gaps: list[str],
    align: list[str],
    space_rel: bool = False,
    numbers_right: bool = False,
    cycle: bool = True,
) -> Box:
    """Boxes in rows and columns: each row as tall as its tallest cell (cells on a
    common baseline), no blank row between rows; column ``k`` aligned by
    ``align[k % len(align)]`` (``cycle`` False, an array's spec: the last one goes
    on), ``gaps[k % len(gaps)]`` between column ``k`` and the next."""
    ncols = max((len(r) for r in rows), default=0)
    blank = Box([""], 0)
    grid = [[r[c] if c < len(r) else blank for c in range(ncols)] for r in rows]
    if space_rel:
        # "&=" puts the relation first in the cell: give it its space back.
        grid = [
            [
                hcat([text_box(" "), c])
                if k and c.lines and c.lines[c.baseline][:1] in _REL_START
                else c
                for k, c in enumerate(r)
            ]
            for r in grid
        ]
    aligns = [
        align[c % len(align)] if cycle else align[min(c, len(align) - 1)] for c in range(ncols)
    ]
    if numbers_right:
        for c in range(ncols):
            texts = [r[c].text() for r in grid if r[c].width]
            if texts and all(t is not None and _NUMBER.fullmatch(t.strip()) for t in texts):
                aligns[c] = "right"
    widths = [max((r[c].width for r in grid), default=0) for c in range(ncols)]
    out: list[str] = []
    for r in grid:
        above = max((b.baseline for b in r), default=0)
        below = max((b.height - b.baseline - 1 for b in r), default=0)
        height = above + below + 1
        cells = []
        for c, b in enumerate(r):
            w, a = widths[c], aligns[c]
            p = b.padded()
            lines = [" " * w] * (above - b.baseline) + [_align_to(ln, w, a) for ln in p.lines]
            cells.append(lines + [" " * w] * (height - len(lines)))
        for k in range(height):
            line = ""
            for c, lines in enumerate(cells):
                line += (gaps[(c - 1) % len(gaps)] if c else "") + lines[k]
            out.append(line)
    w = max((cell_width(ln) for ln in out), default=0)
    out = [ln + " " * (w - cell_width(ln)) for ln in out]
    return Box(out or [""], (len(out) - 1) // 2 if out else 0)


def _align_to(line: str, width: int, align: str) -> str:
    gap = width - cell_width(line)
    if align == "right":
        return " " * gap + line
    if align == "left":
        return line + " " * gap
    return " " * (gap // 2) + line + " " * (gap - gap // 2)


def _blackboard(c: str) -> str:
    if c in BLACKBOARD:
        return BLACKBOARD[c]
    if "A" <= c <= "Z":
        return chr(0x1D538 + ord(c) - ord("A"))
    if "a" <= c <= "z":
        return chr(0x1D552 + ord(c) - ord("a"))
    if "0" <= c <= "9":
        return chr(0x1D7D8 + ord(c) - ord("0"))
    return c


def _script(s: str | None, table: dict[str, str]) -> str | None:
    """``s`` in Unicode super/subscript characters, or None when one has none."""
    if s is None:
        return None
    s = s.replace(" ", "")
    out = []
    for ch in s:
        if ch not in table:
            return None
        out.append(table[ch])
    return "".join(out)


def _lin(b: Box) -> str:
    s = b.text()
    if s is None:
        raise LatexError("two-dimensional box in linear mode")
    return s.strip()


_NUMBER = re.compile(r"−?\d+(?:\.\d+)?")
_SCRIPT_CHARS = frozenset(SUP.values()) | frozenset(SUB.values())


def _group_end(s: str, start: int) -> int:
    """Where the parenthesis opening at ``start`` closes (-1 when it does not)."""
    depth = 0
    for i in range(start, len(s)):
        if s[i] == "(":
            depth += 1
        elif s[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _is_atom(s: str) -> bool:
    """Whether ``s`` (linear math) reads as one term next to a ``/``: a number, one
    symbol, a function call or a parenthesised group, with scripts and a root sign.
    "2a" or "d x" is not: "1/2a" could be read as "(1/2)a"."""
    core = s
    while core:
        if core[-1] in _SCRIPT_CHARS or core[-1] == "′":
            core = core[:-1]  # Unicode super- and subscripts bind to what they follow
        elif core.endswith(")") and (core.rfind("^(") > 0 or core.rfind("_(") > 0):
            at = max(core.rfind("^("), core.rfind("_("))
            if _group_end(core, at + 1) != len(core) - 1:
                break
            core = core[:at]  # linear scripts, x^(n+1)
        else:
            break
    core = core.removeprefix("√")
    if not core:
        return False
    if len(core) == 1 or _NUMBER.fullmatch(core):
        return True
    # One parenthesised group, or a function name applied to one: (a + b), sin(x).
    paren = core.find("(")
    if paren < 0 or (paren and not core[:paren].isalpha()):
        return False
    return _group_end(core, paren) == len(core) - 1


def _paren(s: str) -> str:
    return s if _is_atom(s) else f"({s})"


def _opens(b: Box) -> bool:
    """Whether box ``b`` starts with an opening delimiter (a function's argument)."""
    row = b.lines[b.baseline] if b.lines else ""
    return row[:1] in _OPENERS


_OPENERS = frozenset("([{⟨⌊⌈|‖⎛⎜⎝⎡⎢⎣⎧⎨⎩⎪│")


# -- entry points ----------------------------------------------------------------------

_DISPLAY = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|(\\begin\{(\w+\*?)\}.*?\\end\{\4\})", re.S)
_INLINE = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)", re.S)


def _render_math(src: str, linear: bool, width: int | None = None) -> Box:
    p = _Parser(tokenize(src), linear)
    rows = p.parse_rows(set())
    if p.peek() is not None:
        raise LatexError(f"unexpected {p.peek()}")
    if len(rows) == 1 and len(rows[0]) == 1:
        box = rows[0][0]
        if width is not None and not linear and box.width > width:
            return _broken(p.top[0], p.top[1], width) or box
        return box
    if linear:
        return text_box("; ".join(" ".join(_lin(c) for c in r) for r in rows))
    return _align_grid("align", rows)


def _broken(boxes: list[Box], breaks: list[int], width: int) -> Box | None:
    """A formula's outermost boxes in lines at most ``width`` cells wide, broken
    before operators and relations (as sympy's pretty printer does), the lines set
    apart by a blank row when they are two-dimensional; None when a piece between
    two operators is wider than that on its own."""
    cuts = [0, *breaks, len(boxes)]
    pieces = [boxes[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if a < b]
    lines: list[list[Box]] = []
    used = 0
    for piece in pieces:
        w = sum(b.width for b in piece)
        if lines and used + w > width:
            while piece and _blank(piece[0]):
                piece = piece[1:]  # a line starts with its operator, not a space
            w = sum(b.width for b in piece)
            lines.append([])
            used = 0
        elif not lines:
            lines.append([])
        if w > width:
            return None
        lines[-1].extend(piece)
        used += w
    out: list[str] = []
    rows = [hcat(line) for line in lines]
    tall = any(r.height > 1 for r in rows)
    for r in rows:
        if out and tall:
            out.append("")
        out.extend(r.padded().lines)
    return Box(out, 0)


def _blank(b: Box) -> bool:
    return b.height == 1 and not b.lines[0].strip()


def inline_math(src: str) -> str:
    """Inline LaTeX math as one line of Unicode (the source when not understood)."""
    if len(src) > LATEX_LIMIT:
        return src
    try:
        box = _render_math(src, linear=True)
        s = box.text()
        return s if s is not None else src
    except (LatexError, IndexError, KeyError):
        return src


def display_math(src: str, width: int | None = None) -> list[str]:
    """Display LaTeX math laid out in two dimensions (the source when not understood,
    or when too long to lay out quickly: a formula in a big Markdown document).

    A formula wider than ``width`` is broken before an operator; one that cannot be
    (a wide matrix) is written on one line, inline style, wrapped at spaces: a
    terminal wrapping each row of a 2-D layout on its own leaves nothing readable.
    """
    if len(src) > LATEX_LIMIT:
        return src.strip().split("\n")
    try:
        box = _render_math(src, linear=False, width=width)
    except (LatexError, IndexError, KeyError):
        return src.strip().split("\n")
    if width is not None and box.width > width and box.height > 1:
        try:
            line = _render_math(src, linear=True).text()
        except (LatexError, IndexError, KeyError):
            line = None
        if line is not None:
            return _wrap(line, width)
    return [ln.rstrip() for ln in box.lines]


def _wrap(text: str, width: int) -> list[str]:
    """One line of linear math in lines of at most ``width`` cells, broken at spaces
    (a word wider than that keeps its line)."""
    out: list[str] = []
    cur = ""
    for word in text.split(" "):
        if cur and cell_width(cur) + 1 + cell_width(word) > width:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    out.append(cur)
    return out


def render_latex(source: str, width: int | None = None) -> list[str]:
    """A text/latex bundle as lines: display math in 2-D, text with inline math.
    Display math wider than ``width`` (None: no limit) is broken (:func:`display_math`)."""
    src = source.strip()
    if len(src) > LATEX_LIMIT:  # (an unclosed $$ in a big Markdown document)
        return src.split("\n")
    # The whole bundle is one formula (IPython's Math, sympy): lay it out in 2-D. One:
    # the first formula found ends where the bundle does ("$x$ and $y$" is two, which
    # a fullmatch of "$(.+?)$" took for one, "x$ and $y").
    m = _ANY_MATH.match(src)
    if m and m.end() == len(src):
        return display_math(next(g for g in m.group(1, 2, 3, 5, 6) if g is not None), width)
    if "$" not in src and "\\[" not in src and "\\(" not in src and _bare_math(src):
        return display_math(src, width)
    out: list[str] = []
    pos = 0
    text: list[str] = []  # the text since the last display, inline math laid out
    # One scan for every kind of math, the leftmost first: an environment inside
    # "$...$" is part of that inline formula, not a display of its own.
    for mm in _ANY_MATH.finditer(src):
        text.append(src[pos : mm.start()])
        pos = mm.end()
        body = mm.group(1) or mm.group(2) or mm.group(3)
        if body is None:
            text.append(inline_math(mm.group(5) or mm.group(6)))
            continue
        out.extend(_text_lines("".join(text)))
        text = []
        out.extend("  " + ln for ln in display_math(body, None if width is None else width - 2))
    text.append(src[pos:])
    out.extend(_text_lines("".join(text)))
    return out


_ANY_MATH = re.compile(_DISPLAY.pattern + "|" + _INLINE.pattern, re.S)


def _bare_math(src: str) -> bool:
    """Whether ``src`` (no ``$``) is one formula: no environment, or environments with
    only math around them ("\\left(\\begin{array}..\\end{array}\\right)", "A = \\begin.."),
    not prose ("\\begin{align}..\\end{align} where a is ...")."""
    if "\\begin" not in src:
        return True
    outside = re.sub(r"\\[A-Za-z]+", "", _DISPLAY.sub("", src))
    return re.search(r"[A-Za-z]{2,}", outside) is None


def _text_lines(text: str) -> list[str]:
    text = re.sub(
        r"\\textbf\{([^{}]*)\}|\\emph\{([^{}]*)\}|\\textit\{([^{}]*)\}",
        lambda m: next(g for g in m.groups() if g is not None),
        text,
    )
    lines = [ln.strip() for ln in text.strip().split("\n")]
    return [ln for ln in lines if ln] if text.strip() else []
