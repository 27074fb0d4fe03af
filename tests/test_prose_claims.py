"""No lesson claims that PPO's clip bounds what it does not bound.

The clip removes, for each sample of the batch, the incentive to push its ratio r past [1 - eps, 1 + eps].
It bounds neither the ratio (the other samples' gradients move a clipped sample's ratio too) nor the KL
(each minibatch step and each epoch starts where the last one ended); lesson 03 measures both. So the
course must never say the opposite, in a markdown cell or in a string a code cell prints (a prediction's
``why``, a label). Each pattern below is a way of saying it, with the reason it is false; a sentence that
denies the claim ("bounds neither the KL nor...", "does not keep...") is not flagged. The way
test_prose_numbers guards the numbers a lesson quotes, this guards what it says about the clip.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize

import nbformat
import pytest

from conftest import REPO, SOLUTIONS, notebooks

WHY = ("the clip removes the incentive to push a sample's ratio past 1 ± eps; it bounds neither the ratio nor the "
       "KL (other samples' gradients move a clipped sample's ratio, and every epoch starts where the last ended). "
       "Lesson 03, section 9 measures it")

CLIP = r"(?:\bclip\b|\bclipping\b|\bclipped (?:surrogate|objective)|L\^\{?CLIP\}?|ε|\\epsilon|\bepsilon\b)"
WITHIN_A_SENTENCE = r"(?:[^.;:]|\.(?=\d)){0,60}?"   # decimals' points do not end a sentence
#: (pattern, what it claims). Case-insensitive; matched within one sentence.
FALSE_CLAIMS: list[tuple[str, str]] = [
    (r"only as far as the clip allows", "theta moves only as far as the clip allows"),
    (CLIP + WITHIN_A_SENTENCE + r"\b(?:bounds?|limits?|controls?|constrains?)\b"
            r"(?:\s+(?:each|every|the|how|far|its|any|single))*\s*\*?(?:updates?|steps?|ratios?|KL|polic(?:y|ies)|change)\b",
     "the clip bounds the update, the ratio or the KL"),
    (CLIP + WITHIN_A_SENTENCE + r"\b(?:keeps?|holds?|confines?)\b" + WITHIN_A_SENTENCE
            + r"\b(?:within|inside|near|close to)\b",
     "the clip keeps the policy (or the ratio) within a region"),
    (r"\bkeeps? the new policy within\b", "the new policy is kept within a region"),
    (CLIP + r"\s+(?:is|acts as) (?:a|the) (?:bound|trust region) (?:on|for) ",
     "the clip is a bound on the ratio or the policy"),
]
NEGATION = re.compile(r"\b(?:not|neither|nor|never|no|cannot|n't|without)\b", re.IGNORECASE)

#: A sentence that matches a pattern but says something true, with the reason. lesson -> {fragment: reason}.
ALLOWED: dict[str, dict[str, str]] = {
}


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (at . ! ? ; followed by space, and at blank lines)."""
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n\s*\n", text) if s.strip()]


def false_claims(text: str, allowed: dict[str, str] | None = None) -> list[str]:
    """Each sentence of ``text`` that claims the clip bounds what it does not, with the claim."""
    found = []
    for sentence in sentences(text):
        flat = " ".join(sentence.split())
        if any(fragment in flat for fragment in (allowed or {})):
            continue
        for pattern, claim in FALSE_CLAIMS:
            match = re.search(pattern, flat, re.IGNORECASE)
            if match and not NEGATION.search(flat[max(0, match.start() - 15):match.end()]):
                found.append(f"{claim}: {flat!r}")
                break
    return found


def prose_of_code(source: str) -> str:
    """What a code cell says in words: its string literals (f-strings' text parts) and its comments."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    code = "\n".join(lines)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    words = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    comments = [token.string.lstrip("# ") for token in tokenize.generate_tokens(io.StringIO(code).readline)
                if token.type == tokenize.COMMENT]
    return "\n\n".join(words + comments)


@pytest.mark.parametrize("notebook", notebooks(SOLUTIONS), ids=lambda p: p.parent.name)
def test_no_lesson_says_the_clip_bounds_the_update(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    allowed = ALLOWED.get(notebook.parent.name, {})
    texts = [cell.source if cell.cell_type == "markdown" else prose_of_code(cell.source) for cell in cells]
    found = [f"cell {index}: {claim}" for index, text in enumerate(texts) for claim in false_claims(text, allowed)]
    assert not found, f"{notebook.parent.name} says what is false ({WHY}):\n" + "\n".join(found)


def test_the_readme_says_it_neither():
    found = false_claims((REPO / "README.md").read_text())
    assert not found, f"README.md says what is false ({WHY}):\n" + "\n".join(found)


@pytest.mark.parametrize("text", [
    "After step 3, theta has drifted from theta_old, but only as far as the clip allows.",
    "The clip bounds each update, not their sum.",
    "The clip limits how far each *update* moves the policy.",
    "PPO's clip keeps the new policy within the trust region.",
    "So lesson 03's clip, r within [0.8, 1.2], keeps each log-probability within about 0.2 of its old value.",
    "The clip keeps every step inside the region where the ratio can be trusted.",
    "Clipping bounds the KL between the old and the new policy.",
])
def test_the_check_finds_the_false_claims(text):
    assert false_claims(text), f"this sentence claims the clip bounds the update, and must be found: {text!r}"


@pytest.mark.parametrize("text", [
    "The clip bounds neither the KL nor the ratios.",
    "Nor is ε a bound on the ratios: after ten epochs they spread from 0.68 to 1.34.",
    "The clip caps the gain from moving r past the interval, never the loss.",
    "TRPO's constraint bounds the *mean* KL, not each ratio.",
    "The clip does not keep the policy within the band.",
    "The clip removes the incentive to push a sample's ratio past the band.",
    "The clip may limit what a move earns; the min makes sure it never limits what a move costs.",
])
def test_the_check_lets_true_sentences_pass(text):
    assert not false_claims(text), f"this sentence is true and must pass: {text!r} (found {false_claims(text)})"


def test_the_check_reads_what_code_cells_print():
    code = 'check_prediction(g, m, "x", why="Every epoch starts afresh, and "\n    "the clip bounds each update.")'
    assert false_claims(prose_of_code(code)), "a false claim split over two string literals of a why= must be found"
    assert not false_claims(prose_of_code("clip = 0.2  # the clip bounds nothing\nx = 1")), "a true comment must pass"
