"""Similar submissions: answers that are near-identical once what a copier changes cheaply is taken away.

Each answer (one exercise's cell) is normalised with Python's own parser: comments, docstrings and
layout go (``ast.unparse``), string contents become ``S``, and every name the answer binds (its
variables, arguments, helpers) is renamed by its first appearance *within its statement* (``v0``,
``v1``...). Renaming per statement rather than per answer keeps a copy whose independent statements
were reordered identical statement by statement; what the code calls (``torch.clamp``, a keyword
argument's name) is kept, since that is the answer's content, not a name the student chose.

The tokens are fingerprinted as MOSS does (Schleimer, Wilkerson and Aiken, "Winnowing: local
algorithms for document fingerprinting", SIGMOD 2003): every ``K``-gram of tokens is hashed, and in
every window of ``WINDOW`` consecutive hashes the smallest is kept, so any shared run of at least
``K + WINDOW - 1`` tokens is found, wherever it is. What the release gave everyone (the exercise's
stub: signature, docstring, ``raise NotImplementedError``) is subtracted: every k-gram of the stub.

A pair of students is scored by the code they share that few others have: each shared token counts
``log(N / n) / log(N / 2)`` where ``n`` of the ``N`` students with code have that fingerprint (1 when
only these two do, 0 when everyone does), so a one-line answer half the class wrote the same way is not
evidence, and a long stretch that only two students wrote is. The score is that weighted number of shared
tokens, the smaller of the two sides' (as MOSS ranks by lines matched).

copydetect (PyPI) implements the winnowing, but tokenises with Pygments, which turns every name and
attribute into ``V`` (``torch.minimum`` and ``torch.maximum`` become the same, so the one-line answers
of a whole class look alike), hashes with Python's per-process ``hash`` and works on files; the
winnowing itself is the dozen lines below.
"""
from __future__ import annotations

import ast
import hashlib
import io
import keyword
import math
import re
import tokenize
from dataclasses import dataclass, field
from itertools import combinations

from ..grading.contract import bound_names, python_lines
from ..syntax import parse_python

K = 5          # tokens per k-gram
WINDOW = 4     # k-grams per winnowing window: any shared run of K + WINDOW - 1 = 8 tokens is found
COMMON = 0.25  # a fingerprint rarer than this (most of the class has it) is common code: no evidence, not compared
MAX_ANSWER_TOKENS = 20_000   # an answer's tokens fingerprinted (an answer is at most 64 KB of code anyway)
SOLUTION_BLOCK = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*$", re.MULTILINE | re.DOTALL)
FALLBACK_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\S")


def released_stub(source_cell: str) -> str:
    """An answer cell as nbgrader releases it: each solution block replaced by ``raise NotImplementedError()``."""
    return SOLUTION_BLOCK.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", source_cell)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _imported(tree: ast.AST) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names}


def normalised_tokens(source: str, keep: frozenset[str] = frozenset()) -> list[str]:
    """The answer as tokens, with what a copier changes cheaply gone (module docstring). ``keep``: names
    never renamed (the exercise's own function names, which the contract fixes)."""
    tree = parse_python(python_lines(source))
    if tree is None:   # a syntax error: still compare it, by plain tokens with every name made alike
        return [t if keyword.iskeyword(t) or not (t[0].isalpha() or t[0] == "_") else "v"
                for t in FALLBACK_TOKEN.findall(re.sub(r"#[^\n]*", "", source))][:MAX_ANSWER_TOKENS]
    chosen = bound_names(tree) - set(keep) - _imported(tree)
    try:
        text = ast.unparse(_without_docstrings(tree))
        raw = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (ValueError, RecursionError, tokenize.TokenError, SyntaxError, MemoryError):
        return [t if keyword.iskeyword(t) or not (t[0].isalpha() or t[0] == "_") else "v"
                for t in FALLBACK_TOKEN.findall(source)][:MAX_ANSWER_TOKENS]
    tokens: list[str] = []
    numbering: dict[str, str] = {}
    depth = 0
    for position, token in enumerate(raw):
        kind = tokenize.tok_name[token.type]
        following = raw[position + 1].string if position + 1 < len(raw) else ""
        if kind == "NEWLINE":
            tokens.append(";")
            numbering = {}
        elif kind == "INDENT":
            tokens.append("{")
        elif kind == "DEDENT":
            tokens.append("}")
        elif kind in ("STRING", "FSTRING_START"):
            tokens.append("S")
        elif kind in ("FSTRING_MIDDLE", "FSTRING_END", "NL", "COMMENT", "ENCODING", "ENDMARKER"):
            continue
        elif kind == "NAME" and token.string in chosen and (not tokens or tokens[-1] != ".") \
                and not (depth and following == "="):   # (a keyword argument's name is the callee's)
            tokens.append(numbering.setdefault(token.string, f"v{len(numbering)}"))
        else:
            if kind == "OP":
                depth += token.string in ("(", "[", "{")
                depth -= token.string in (")", "]", "}")
            tokens.append(token.string)
        if len(tokens) >= MAX_ANSWER_TOKENS:
            break
    return tokens


def kgram_hashes(tokens: list[str]) -> list[int]:
    """A stable 64-bit hash of every K-gram (one of the whole answer when it is shorter)."""
    grams = [tokens[i:i + K] for i in range(max(1, len(tokens) - K + 1))] if tokens else []
    return [int.from_bytes(hashlib.blake2b("\x1f".join(g).encode(), digest_size=8).digest(), "big") for g in grams]


def winnow(hashes: list[int]) -> dict[int, list[int]]:
    """Robust winnowing: the smallest hash of each window of WINDOW (the rightmost on a tie), with the
    positions where it was chosen."""
    chosen: dict[int, list[int]] = {}
    last = -1
    for start in range(max(1, len(hashes) - WINDOW + 1)):
        window = hashes[start:start + WINDOW]
        if not window:
            break
        low = min(window)
        position = start + max(i for i, h in enumerate(window) if h == low)
        if position != last:
            chosen.setdefault(low, []).append(position)
            last = position
    return chosen


@dataclass
class Answer:
    """One student's answer to one exercise, as fingerprints."""
    source: str
    tokens: list[str]
    fingerprints: dict[int, list[int]]   # hash -> k-gram positions (the stub's k-grams removed)
    written: list[bool]                  # per token: not covered by a k-gram of the stub (the student wrote it)

    @property
    def own(self) -> int:
        return self.written.count(True)


def fingerprint(source: str, stub: str, keep: frozenset[str]) -> Answer:
    tokens = normalised_tokens(source, keep)
    hashes = kgram_hashes(tokens)
    released = set(kgram_hashes(normalised_tokens(stub, keep))) if stub else set()
    covered = [False] * len(tokens)
    for position, value in enumerate(hashes):
        if value in released:
            covered[position:position + K] = [True] * len(covered[position:position + K])
    prints = {h: where for h, where in winnow(hashes).items() if h not in released}
    return Answer(source, tokens, prints, [not c for c in covered])


@dataclass
class Pair:
    """Two students whose answers share code few others have: ``score`` (weighted shared tokens, the smaller
    side's), each side's share of its own code that the other has, and per exercise the shared tokens."""
    first: str
    second: str
    score: float
    shares: tuple[float, float]
    exercises: dict[str, tuple[float, float]] = field(default_factory=dict)   # exercise -> each side's share


def rarity(students_with_it: int, students: int) -> float:
    """How much a fingerprint says about a pair: 1 when only two students have it, 0 when all do."""
    if students <= 2:
        return 1.0
    return max(0.0, min(1.0, math.log(students / students_with_it) / math.log(students / 2)))


def _coverage(answer: Answer, weights: dict[int, float]) -> tuple[float, int]:
    """(weighted, plain) number of the tokens the student wrote that the k-grams with a hash in ``weights`` cover."""
    best = [0.0] * len(answer.tokens)
    for value, weight in weights.items():
        for position in answer.fingerprints.get(value, ()):
            for i in range(position, min(position + K, len(best))):
                best[i] = max(best[i], weight) if answer.written[i] else 0.0
    return sum(best), sum(1 for b in best if b > 0)


def similar_pairs(answers: dict[str, dict[str, Answer]], minimum: float) -> list[Pair]:
    """Every pair of students (``answers``: student -> exercise -> Answer) whose score is at least ``minimum``,
    highest first."""
    holders: dict[tuple[str, int], set[str]] = {}
    for student, by_exercise in answers.items():
        for exercise, answer in by_exercise.items():
            for value in answer.fingerprints:
                holders.setdefault((exercise, value), set()).add(student)
    with_code = sum(1 for by_exercise in answers.values() if any(a.fingerprints for a in by_exercise.values()))
    shared: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for (exercise, value), students in holders.items():
        weight = rarity(len(students), with_code)
        if weight < COMMON or len(students) < 2:
            continue
        for first, second in combinations(sorted(students), 2):
            shared.setdefault((first, second), {}).setdefault(exercise, {})[value] = weight
    pairs = []
    for (first, second), by_exercise in shared.items():
        weighted, plain, per_exercise = [0.0, 0.0], [0, 0], {}
        for exercise, weights in by_exercise.items():
            sides = []
            for side, student in enumerate((first, second)):
                answer = answers[student][exercise]
                w, p = _coverage(answer, weights)
                weighted[side] += w
                plain[side] += p
                sides.append(min(1.0, p / answer.own) if answer.own else 0.0)
            per_exercise[exercise] = (sides[0], sides[1])
        score = min(weighted)
        if score >= minimum:
            own = [sum(a.own for a in answers[s].values()) for s in (first, second)]
            shares = tuple(min(1.0, plain[i] / own[i]) if own[i] else 0.0 for i in (0, 1))
            pairs.append(Pair(first, second, round(score, 1), shares, per_exercise))
    return sorted(pairs, key=lambda p: (-p.score, p.first, p.second))
