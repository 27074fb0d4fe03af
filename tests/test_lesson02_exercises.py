"""Lesson 02's tests accept the reference answers and reject the wrong answers students really write."""
from __future__ import annotations

import inspect
import textwrap

from ppo_course import trust_region

from exercise_checks import LessonExerciseChecks, exercise_answer, indented, run_tests_against

LESSON = "02-trpo"


def cg(loop_body: str, setup: str = "x = torch.zeros_like(b)\nr = b.clone()\np = r.clone()\nr_dot_r = r @ r") -> str:
    """A conjugate-gradient answer: the usual set-up, then ``loop_body`` inside ``for _ in range(iters):``."""
    return f"{setup}\nfor _ in range(iters):\n{indented(loop_body)}\nreturn x"


CG_DIRECTION = "p = r + (new_r_dot_r / r_dot_r) * p"   # the direction update of CORRECT_CG_LOOP


def _reference_loop_body() -> str:
    """The body of the package's conjugate-gradient loop: the mutants below start from the reference itself."""
    lines = inspect.getsource(trust_region.conjugate_gradient).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "for _ in range(iters):")
    end = next(i for i, line in enumerate(lines) if line.strip() == "return x")
    return textwrap.dedent("\n".join(lines[start + 1:end]) + "\n")


CORRECT_CG_LOOP = _reference_loop_body()
assert CG_DIRECTION in CORRECT_CG_LOOP, "the reference's direction update is no longer written as the mutants expect"


def cg_with(old: str, new: str) -> str:
    assert old in CORRECT_CG_LOOP, old
    return cg(CORRECT_CG_LOOP.replace(old, new))


LINE_SEARCH = """
for k in range(max_tries):
    step = shrink ** k * full_step
    gain, kl = evaluate(step)
    if {condition}:
        return step
return {fallback}
"""


def line_search(condition: str = "kl <= delta and gain > 0", fallback: str = "torch.zeros_like(full_step)") -> str:
    return LINE_SEARCH.format(condition=condition, fallback=fallback)


KL_LOGS = "log_p, log_q = torch.log_softmax(p_logits, -1), torch.log_softmax(q_logits, -1)\n"

WRONG_ANSWERS = {
    "categorical_kl": {
        "wrong direction, KL(q || p)": KL_LOGS + "return (log_q.exp() * (log_q - log_p)).sum(-1)",
        "logits used as log-probabilities": "return (torch.softmax(p_logits, -1) * (p_logits - q_logits)).sum(-1)",
        "log of softmax (not log_softmax)": "p, q = torch.softmax(p_logits, -1), torch.softmax(q_logits, -1)\n"
                                            "return (p * (p.log() - q.log())).sum(-1)",
        "weighted by q": KL_LOGS + "return (log_q.exp() * (log_p - log_q)).sum(-1)",
        "mean over actions instead of sum": KL_LOGS + "return (log_p.exp() * (log_p - log_q)).mean(-1)",
        "averaged over rows": KL_LOGS + "return (log_p.exp() * (log_p - log_q)).sum(-1).mean()",
        "cross-entropy instead of KL": KL_LOGS + "return -(log_p.exp() * log_q).sum(-1)",
    },
    "conjugate_gradient": {
        "sign error in the residual update": cg_with("r = r - alpha * Ap", "r = r + alpha * Ap"),
        "sign error in the solution update": cg_with("x = x + alpha * p", "x = x - alpha * p"),
        "stale residual in the direction update": cg_with(
            "new_r_dot_r = r @ r\np = r + (new_r_dot_r / r_dot_r) * p",
            "new_r_dot_r = r @ r\np = (r + alpha * Ap) + (new_r_dot_r / r_dot_r) * p"),
        "residual never updated": cg_with("r = r - alpha * Ap\n", ""),
        "beta from the stale residual": cg_with("new_r_dot_r = r @ r", "new_r_dot_r = r_dot_r"),
        "no early stop": cg_with("if r_dot_r < tol:\n    break\n", ""),
        "steepest descent (p = r)": cg_with("p = r + (new_r_dot_r / r_dot_r) * p", "p = r.clone()"),
        "starts from x = b": cg(CORRECT_CG_LOOP, setup="x = b.clone()\nr = b - Avp(x)\np = r.clone()\nr_dot_r = r @ r"),
        "residual in place (modifies b)": cg(CORRECT_CG_LOOP.replace("r = r - alpha * Ap", "r -= alpha * Ap"),
                                             setup="x = torch.zeros_like(b)\nr = b\np = r.clone()\nr_dot_r = r @ r"),
        "tol ignored": cg_with("if r_dot_r < tol:", "if r_dot_r < 1e-30:"),
    },
    "trpo_step_size": {
        "missing the factor 2": "return torch.sqrt(delta / (s @ Fs))",
        "missing the square root": "return 2 * delta / (s @ Fs)",
        "inverted fraction": "return torch.sqrt((s @ Fs) / (2 * delta))",
        "norms instead of s^T F s": "return torch.sqrt(2 * delta / (s.norm() * Fs.norm()))",
        "hard-coded delta": "return torch.sqrt(2 * 0.01 / (s @ Fs))",
    },
    "backtracking_line_search": {
        "accepts a step that breaks the KL bound": line_search("gain > 0"),
        "accepts a step that does not improve": line_search("kl <= delta"),
        "accepts a zero gain (>= 0)": line_search("kl <= delta and gain >= 0"),
        "returns the last try when all fail": line_search(fallback="step"),
        "starts at half the step": LINE_SEARCH.replace("shrink ** k", "shrink ** (k + 1)").format(
            condition="kl <= delta and gain > 0", fallback="torch.zeros_like(full_step)"),
        "hard-coded delta": line_search("kl <= 0.01 and gain > 0"),
        "hard-coded shrink": LINE_SEARCH.replace("shrink ** k", "0.5 ** k").format(
            condition="kl <= delta and gain > 0", fallback="torch.zeros_like(full_step)"),
        "keeps the smallest acceptable step": "accepted = torch.zeros_like(full_step)\n"
                                             "for k in range(max_tries):\n"
                                             "    step = shrink ** k * full_step\n"
                                             "    gain, kl = evaluate(step)\n"
                                             "    if kl <= delta and gain > 0:\n"
                                             "        accepted = step\n"
                                             "return accepted",
        "shrinks full_step in place": "for k in range(max_tries):\n"
                                      "    gain, kl = evaluate(full_step)\n"
                                      "    if kl <= delta and gain > 0:\n"
                                      "        return full_step\n"
                                      "    full_step *= shrink\n"
                                      "return torch.zeros_like(full_step)",
    },
}

def test_the_wrong_conjugate_gradients_are_well_formed():
    """The CG variants above are edits of a correct loop: that loop itself must pass."""
    for exercise, body in (("conjugate_gradient", cg(CORRECT_CG_LOOP)), ("backtracking_line_search", line_search())):
        run_tests_against(LESSON, exercise, exercise_answer(LESSON, exercise, body))


ALTERNATIVE_CORRECT_ANSWERS = {
    "categorical_kl": {
        "torch.distributions": "P = torch.distributions.Categorical(logits=p_logits)\n"
                               "Q = torch.distributions.Categorical(logits=q_logits)\n"
                               "return torch.distributions.kl_divergence(P, Q)",
        "kl_div with log targets": "return torch.nn.functional.kl_div(torch.log_softmax(q_logits, -1), "
                                   "torch.log_softmax(p_logits, -1), reduction='none', log_target=True).sum(-1)",
    },
    "conjugate_gradient": {
        "Spinning Up style (check after the update)":
            "x = torch.zeros_like(b)\nr = b.clone()\np = b.clone()\nr_dot_old = torch.dot(r, r)\n"
            "for _ in range(iters):\n"
            "    z = Avp(p)\n    alpha = r_dot_old / (torch.dot(p, z) + 1e-8)\n    x += alpha * p\n    r -= alpha * z\n"
            "    r_dot_new = torch.dot(r, r)\n    p = r + (r_dot_new / r_dot_old) * p\n    r_dot_old = r_dot_new\n"
            "    if r_dot_old < tol:\n        break\nreturn x",
        "residual from A x0": cg(CORRECT_CG_LOOP, setup="x = torch.zeros_like(b)\nr = b - Avp(x)\np = r.clone()\n"
                                                       "r_dot_r = r @ r"),
        "alpha from r @ Ap (equal to p @ Ap in exact arithmetic)": cg_with("alpha = r_dot_r / (p @ Ap)",
                                                                           "alpha = r_dot_r / (r @ Ap)"),
    },
    "trpo_step_size": {
        "tensor sqrt method": "return (2 * delta / torch.dot(s, Fs)).sqrt()",
    },
    "backtracking_line_search": {
        "fraction variable": "fraction = 1.0\nfor _ in range(max_tries):\n"
                             "    gain, kl = evaluate(fraction * full_step)\n"
                             "    if gain > 0 and kl <= delta:\n        return fraction * full_step\n"
                             "    fraction *= shrink\nreturn 0 * full_step",
    },
}

TRIES_LOOP = "for k in range(max_tries):\n    step = shrink ** k * full_step\n    gain, kl = evaluate(step)\n"

# What a student sees before submitting: the VISIBLE tests alone reject each of these, and the message names
# the real bug (the phrase after the answer must be in it).
VISIBLE_WRONG_ANSWERS = {
    "categorical_kl": {
        "wrong direction, KL(q || p)": (KL_LOGS + "return (log_q.exp() * (log_q - log_p)).sum(-1)", "wrong direction"),
        "kl_div with its arguments swapped": (
            "return torch.nn.functional.kl_div(torch.log_softmax(p_logits, -1), torch.log_softmax(q_logits, -1), "
            "reduction='none', log_target=True).sum(-1)", "wrong direction"),
        "weighted by q": (KL_LOGS + "return (log_q.exp() * (log_p - log_q)).sum(-1)", "weights came from q"),
        "minus the KL": (KL_LOGS + "return (log_p.exp() * (log_q - log_p)).sum(-1)", "minus the KL"),
        "|KL| term by term": (KL_LOGS + "return (log_p.exp() * (log_p - log_q)).abs().sum(-1)", "absolute value"),
        "|log-ratio| averaged": (KL_LOGS + "return (log_p - log_q).abs().mean(-1)", "absolute value"),
        "mean over actions instead of sum": (KL_LOGS + "return (log_p.exp() * (log_p - log_q)).mean(-1)",
                                             "mean over the actions"),
        "averaged over the batch": (KL_LOGS + "return (log_p.exp() * (log_p - log_q)).sum(-1).mean()", "rows"),
        "summed over the batch": (KL_LOGS + "return (log_p.exp() * (log_p - log_q)).sum()", "rows"),
        "keepdim=True": (KL_LOGS + "return (log_p.exp() * (log_p - log_q)).sum(-1, keepdim=True)", "one KL per row"),
        "logits used as log-probabilities": ("return (torch.softmax(p_logits, -1) * (p_logits - q_logits)).sum(-1)",
                                             "log_softmax"),
        "log of softmax": ("p, q = torch.softmax(p_logits, -1), torch.softmax(q_logits, -1)\n"
                           "return (p * (p.log() - q.log())).sum(-1)", "log(softmax(logits))"),
        "log of softmax + eps": ("p, q = torch.softmax(p_logits, -1), torch.softmax(q_logits, -1)\n"
                                 "return (p * ((p + 1e-8).log() - (q + 1e-8).log())).sum(-1)", "log(q + eps)"),
        "cross-entropy instead of KL": (KL_LOGS + "return -(log_p.exp() * log_q).sum(-1)", "cross-entropy"),
        "computed in numpy": ("lp = torch.log_softmax(p_logits, -1).detach().numpy()\n"
                              "lq = torch.log_softmax(q_logits, -1).detach().numpy()\n"
                              "return torch.tensor((np.exp(lp) * (lp - lq)).sum(-1))", "no gradient"),
        "q detached": ("log_p, log_q = torch.log_softmax(p_logits, -1), torch.log_softmax(q_logits.detach(), -1)\n"
                       "return (log_p.exp() * (log_p - log_q)).sum(-1)", "no gradient"),
    },
    "conjugate_gradient": {
        "steepest descent (p = r)": (cg_with(CG_DIRECTION, "p = r.clone()"), "steepest descent"),
        "inverted beta (old over new)": (cg_with(CG_DIRECTION, "p = r + (r_dot_r / new_r_dot_r) * p"),
                                         "beta is inverted"),
        "beta from the stale residual (beta = 1)": (cg_with("new_r_dot_r = r @ r", "new_r_dot_r = r_dot_r"),
                                                    "UPDATED residual"),
        "minus beta in the direction": (cg_with(CG_DIRECTION, "p = r - (new_r_dot_r / r_dot_r) * p"),
                                        "p = r_new + beta * p"),
        "alpha from norms": (cg_with("alpha = r_dot_r / (p @ Ap)", "alpha = r.norm() / (p.norm() * Ap.norm())"),
                             "not norms"),
        "r.norm() in place of r @ r": (cg(CORRECT_CG_LOOP.replace("new_r_dot_r = r @ r", "new_r_dot_r = r.norm()"),
                                          setup="x = torch.zeros_like(b)\nr = b.clone()\np = r.clone()\n"
                                                "r_dot_r = r.norm()"),
                                       "not norms"),
        "alpha over p @ p": (cg_with("alpha = r_dot_r / (p @ Ap)", "alpha = r_dot_r / (p @ p)"), "p @ Ap"),
        "sign error in the residual update": (cg_with("r = r - alpha * Ap", "r = r + alpha * Ap"),
                                              "r = r - alpha * Ap"),
        "residual never updated": (cg_with("r = r - alpha * Ap\n", ""), "Update the residual"),
        "stale residual in the direction update": (cg_with(
            "new_r_dot_r = r @ r\np = r + (new_r_dot_r / r_dot_r) * p",
            "new_r_dot_r = r @ r\np = (r + alpha * Ap) + (new_r_dot_r / r_dot_r) * p"), "from this new r"),
        "r_dot_r never updated": (cg_with("r_dot_r = new_r_dot_r\n", ""), "r_dot_r = new_r_dot_r"),
        "sign error in the solution update": (cg_with("x = x + alpha * p", "x = x - alpha * p"), "x = x + alpha * p"),
        "starts from x = b": (cg(CORRECT_CG_LOOP,
                                 setup="x = b.clone()\nr = b - Avp(x)\np = r.clone()\nr_dot_r = r @ r"),
                              "from x = 0"),
        "no early stop": (cg_with("if r_dot_r < tol:\n    break\n", ""), "before each product"),
        "tol ignored": (cg_with("if r_dot_r < tol:", "if r_dot_r < 1e-30:"), "tol argument"),
        "one step too few": (cg(CORRECT_CG_LOOP).replace("range(iters)", "range(iters - 1)"), "up to `iters` steps"),
        "returns the residual": (cg(CORRECT_CG_LOOP).replace("return x", "return r"), "return x"),
        "residual in place (modifies b)": (cg(CORRECT_CG_LOOP.replace("r = r - alpha * Ap", "r -= alpha * Ap"),
                                              setup="x = torch.zeros_like(b)\nr = b\np = r.clone()\nr_dot_r = r @ r"),
                                           "in place"),
    },
    "trpo_step_size": {
        "missing the factor 2": ("return torch.sqrt(delta / (s @ Fs))", "factor 2 is missing"),
        "missing the square root": ("return 2 * delta / (s @ Fs)", "square root is missing"),
        "delta instead of 2 delta, no square root": ("return delta / (s @ Fs)",
                                                     "both the factor 2 and the square root"),
        "inverted fraction": ("return torch.sqrt((s @ Fs) / (2 * delta))", "upside down"),
        "norms instead of s^T F s": ("return torch.sqrt(2 * delta / (s.norm() * Fs.norm()))", "product of norms"),
        "norm of Fs": ("return torch.sqrt(2 * delta / Fs.norm())", "the norm of Fs"),
        "s @ s instead of s @ Fs": ("return torch.sqrt(2 * delta / (s @ s))", "s @ s is not"),
        "elementwise product": ("return torch.sqrt(2 * delta / (s * Fs))", "0-dimensional"),
        "hard-coded delta": ("return torch.sqrt(2 * 0.01 / (s @ Fs))", "delta argument"),
    },
    "backtracking_line_search": {
        "no KL check": (line_search("gain > 0"), "check kl <= delta"),
        "no improvement check": (line_search("kl <= delta"), "check gain > 0"),
        "accepts a zero gain (>= 0)": (line_search("kl <= delta and gain >= 0"), "exactly 0"),
        "rejects KL = delta (<)": (line_search("kl < delta and gain > 0"), "exactly on the boundary"),
        "conditions inverted": (line_search("kl >= delta and gain > 0"), "was not returned"),
        "returns the last try when all fail": (line_search(fallback="step"), "never the last try"),
        "break, then return the last try": (TRIES_LOOP + "    if kl <= delta and gain > 0:\n        break\nreturn step",
                                            "never the last try"),
        "returns the full step when all fail": (line_search(fallback="full_step"), "zeros_like"),
        "returns None when all fail": (line_search(fallback="None"), "zeros_like"),
        "starts at half the step": (LINE_SEARCH.replace("shrink ** k", "shrink ** (k + 1)").format(
            condition="kl <= delta and gain > 0", fallback="torch.zeros_like(full_step)"), "full step first"),
        "keeps the smallest acceptable step": ("accepted = torch.zeros_like(full_step)\n" + TRIES_LOOP +
                                               "    if kl <= delta and gain > 0:\n        accepted = step\n"
                                               "return accepted",
                                               "return the first try"),
        "keeps the best step of all tries": ("best, best_gain = torch.zeros_like(full_step), 0.0\n" + TRIES_LOOP +
                                             "    if kl <= delta and gain > best_gain:\n"
                                             "        best, best_gain = step, gain\n"
                                             "return best", "FIRST acceptable step"),
        "evaluates the full step every time": ("for k in range(max_tries):\n    step = shrink ** k * full_step\n"
                                               "    gain, kl = evaluate(full_step)\n    if kl <= delta and gain > 0:\n"
                                               "        return step\nreturn torch.zeros_like(full_step)", "each once"),
        "linear shrink (1 - k shrink)": (LINE_SEARCH.replace("shrink ** k", "(1 - k * shrink)").format(
            condition="kl <= delta and gain > 0", fallback="torch.zeros_like(full_step)"), "shrink**k * full_step"),
        "shrinks full_step in place": ("for k in range(max_tries):\n    gain, kl = evaluate(full_step)\n"
                                       "    if kl <= delta and gain > 0:\n        return full_step\n"
                                       "    full_step *= shrink\nreturn torch.zeros_like(full_step)", "in place"),
        "one try too few": (line_search().replace("range(max_tries)", "range(max_tries - 1)"), "max_tries = 10"),
        "hard-coded delta": (line_search("kl <= 0.01 and gain > 0"), "delta argument"),
        "hard-coded shrink": (LINE_SEARCH.replace("shrink ** k", "0.5 ** k").format(
            condition="kl <= delta and gain > 0", fallback="torch.zeros_like(full_step)"), "shrink**k"),
    },
}


class TestExercises(LessonExerciseChecks, lesson=LESSON, wrong_answers=WRONG_ANSWERS,
                    visible_wrong_answers=VISIBLE_WRONG_ANSWERS, right_answers=ALTERNATIVE_CORRECT_ANSWERS):
    """Lesson 02's graded exercises against the lesson's own test cells."""
