"""Lesson 03's tests accept the reference answers and reject the wrong answers students really write.

Every wrong answer below must be rejected twice: by the whole test cell (what grading runs) and by its
VISIBLE part alone (what a student runs before submitting), with a message that names the real bug.
"""
from __future__ import annotations

from exercise_checks import LessonExerciseChecks

LESSON = "03-clipped-surrogate"



# Wrong answers, each with a phrase its visible rejection must contain.
VISIBLE_WRONG_ANSWERS = {
    "clipped_surrogate": {
        "max instead of min": (
            "return torch.maximum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)", "not the max"),
        "clips the product r*A": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio * adv, 1 - eps, 1 + eps))", "not clip(r * A"),
        "clips the product, then scales by A": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio * adv, 1 - eps, 1 + eps) * adv)", "not clip(r * A"),
        "drops the min": ("return torch.clamp(ratio, 1 - eps, 1 + eps) * adv", "do not drop the min"),
        "drops the clip": ("return ratio * adv", "clip the ratio"),
        "clips the top only": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio, max=1 + eps) * adv)", "from below as well"),
        "clips the bottom only": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio, min=1 - eps) * adv)", "the top side too"),
        "clip bounds swapped": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio, 1 + eps, 1 - eps) * adv)", "lower bound first"),
        "hard-codes eps = 0.2": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv)", "use the eps argument"),
        "hard-codes the upper bound": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1.2) * adv)", "use the eps argument"),
        "min of the ratios, then times A": (
            "return torch.minimum(ratio, torch.clamp(ratio, 1 - eps, 1 + eps)) * adv", "not of the two ratios"),
        "clips the advantage": (
            "return torch.minimum(ratio * adv, ratio * torch.clamp(adv, 1 - eps, 1 + eps))", "clip the ratio"),
        "|A| in the clipped term": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv.abs())",
            "(1 - eps) * A = -0.8"),
        "sides swapped by sign": (
            "return torch.where(adv > 0, torch.clamp(ratio, min=1 - eps), torch.clamp(ratio, max=1 + eps)) * adv",
            "not the max"),
        "reduces to a mean": (
            "return torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv).mean()", "do not reduce"),
        "numpy, no gradient": (
            "import numpy as np\nr, a = ratio.detach().numpy(), adv.detach().numpy()\n"
            "return torch.tensor(np.minimum(r * a, np.clip(r, 1 - eps, 1 + eps) * a))", "no gradient"),
        "detached ratio": (
            "r = ratio.detach()\nreturn torch.minimum(r * adv, torch.clamp(r, 1 - eps, 1 + eps) * adv)",
            "no gradient"),
        "clamps the input in place": (
            "clipped = ratio.detach().clamp_(1 - eps, 1 + eps)\nreturn torch.minimum(ratio * adv, clipped * adv)",
            "in place"),
    },
    "clip_is_active": {
        "flags both sides for every sign": ("return (ratio > 1 + eps) | (ratio < 1 - eps)", "only r > 1 + eps"),
        "|r - 1| > eps wherever A != 0": (
            "return ((ratio - 1).abs() > eps) & (adv != 0)", "only r > 1 + eps"),
        ">= at the boundary": (
            "return ((adv > 0) & (ratio >= 1 + eps)) | ((adv < 0) & (ratio <= 1 - eps))", "strict inequalities"),
        "sides swapped": (
            "return ((adv > 0) & (ratio < 1 - eps)) | ((adv < 0) & (ratio > 1 + eps))", "only r > 1 + eps"),
        "forgets negative advantages": ("return (adv > 0) & (ratio > 1 + eps)", "only r < 1 - eps"),
        "thinks A<0 is clipped above too": (
            "return ((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & ((ratio < 1 - eps) | (ratio > 1 + eps)))",
            "never hides a loss"),
        "where the gradient is NOT zero": (
            "return ~(((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps)))", "only r > 1 + eps"),
        "returns floats": (
            "return (((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps))).float()", "dtype"),
        "returns 0/1 integers": (
            "return (((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps))).long()", "dtype"),
        "hard-codes eps = 0.2": (
            "return ((adv > 0) & (ratio > 1.2)) | ((adv < 0) & (ratio < 0.8))", "use the eps argument"),
        "A >= 0 counts as positive": (
            "return ((adv >= 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps))", "a = 0"),
        "A <= 0 counts as negative": (
            "return ((adv > 0) & (ratio > 1 + eps)) | ((adv <= 0) & (ratio < 1 - eps))", "a = 0"),
    },
    "ppo_policy_loss": {
        "sign error": ("return clipped_surrogate(torch.exp(logp_new - logp_old), adv, eps).mean()", "minus the mean"),
        "negates the advantages instead": (
            "return clipped_surrogate(torch.exp(logp_new - logp_old), -adv, eps).mean()", "not the advantages"),
        "ratio inverted": (
            "return -clipped_surrogate(torch.exp(logp_old - logp_new), adv, eps).mean()", "not its inverse"),
        "ratio not exponentiated": (
            "return -clipped_surrogate(logp_new - logp_old, adv, eps).mean()", "exponentiate the log-ratio"),
        "difference of probabilities": (
            "return -clipped_surrogate(logp_new.exp() - logp_old.exp(), adv, eps).mean()", "exp(logp_new - logp_old)"),
        "ratio as a quotient of logs": (
            "return -clipped_surrogate(logp_new / logp_old, adv, eps).mean()", "not a quotient of logs"),
        "first-order ratio 1 + log-ratio": (
            "return -clipped_surrogate(1 + logp_new - logp_old, adv, eps).mean()", "exponential of a difference"),
        "sum instead of mean": (
            "return -clipped_surrogate(torch.exp(logp_new - logp_old), adv, eps).sum()", "average over the batch"),
        "no reduction": ("return -clipped_surrogate(torch.exp(logp_new - logp_old), adv, eps)", "scalar"),
        "normalises the advantages": (
            "adv = (adv - adv.mean()) / (adv.std() + 1e-8)\n"
            "return -clipped_surrogate(torch.exp(logp_new - logp_old), adv, eps).mean()", "do not normalise"),
        "eps not passed on": (
            "return -clipped_surrogate(torch.exp(logp_new - logp_old), adv).mean()", "pass eps on"),
        "hard-codes eps = 0.2": (
            "return -clipped_surrogate(torch.exp(logp_new - logp_old), adv, 0.2).mean()", "pass eps on"),
        "gradient cut": (
            "return -clipped_surrogate(torch.exp(logp_new.detach() - logp_old), adv, eps).mean()", "no gradient"),
        "detached ratio": (
            "ratio = torch.exp(logp_new - logp_old).detach()\nreturn -clipped_surrogate(ratio, adv, eps).mean()",
            "no gradient"),
        "unclipped surrogate": ("return -(torch.exp(logp_new - logp_old) * adv).mean()", "not the plain r * A"),
    },
}

# The wrong answers the whole test cell (visible and hidden parts) must reject: all of the above.
WRONG_ANSWERS = {exercise: {name: body for name, (body, _hint) in named.items()}
                 for exercise, named in VISIBLE_WRONG_ANSWERS.items()}

# Other correct ways to write the answers: the tests must not insist on one spelling.
RIGHT_ANSWERS = {
    "clipped_surrogate": {
        "where by sign": "return torch.where(adv > 0, torch.clamp(ratio, max=1 + eps), "
                         "torch.clamp(ratio, min=1 - eps)) * adv",
        "torch.min of two tensors": "return torch.min(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)",
    },
    "clip_is_active": {
        "sign times (r - 1)": "return torch.sign(adv) * (ratio - 1) > eps",
        "value differs from r*A": "return clipped_surrogate(ratio, adv, eps) != ratio * adv",
    },
    "ppo_policy_loss": {
        "quotient of probabilities": "ratio = torch.exp(logp_new) / torch.exp(logp_old)\n"
                                     "return -clipped_surrogate(ratio, adv, eps).mean()",
        "inline min, logp_old detached": "ratio = (logp_new - logp_old.detach()).exp()\n"
                                         "return -torch.min(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv).mean()",
    },
}


class TestExercises(LessonExerciseChecks, lesson=LESSON, wrong_answers=WRONG_ANSWERS,
                    visible_wrong_answers=VISIBLE_WRONG_ANSWERS, right_answers=RIGHT_ANSWERS):
    """Lesson 03's graded exercises against the lesson's own test cells."""
