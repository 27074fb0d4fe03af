"""Lesson 06's tests accept the reference answers and reject the Gaussian mistakes students really make.

Every wrong answer below must be rejected twice: by the whole test cell (what grading runs) and by its
VISIBLE part alone (what a student runs before submitting), with a message that names the real bug.
"""
from __future__ import annotations

from exercise_checks import LessonExerciseChecks

LESSON = "06-continuous-control"

LOG_2PI = "math.log(2 * math.pi)"

# Wrong answers, each with a phrase its visible rejection must contain.
VISIBLE_WRONG_ANSWERS = {
    "gaussian_log_prob": {
        "mean over dimensions": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z ** 2 - log_std - 0.5 * {LOG_2PI}).mean(-1)",
            "not the mean"),
        "std for variance": (
            f"return (-(actions - mean) ** 2 / (2 * log_std.exp()) - log_std - 0.5 * {LOG_2PI}).sum(-1)",
            "variance sigma^2 (not by sigma)"),
        "no 1/2 on the quadratic term": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-z ** 2 - log_std - 0.5 * {LOG_2PI}).sum(-1)",
            "-(a - mu)^2 / (2 sigma^2)"),
        "distance not squared": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z.abs() - log_std - 0.5 * {LOG_2PI}).sum(-1)",
            "square the distance"),
        "missing log(2 pi)": (
            "z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z ** 2 - log_std).sum(-1)", "log(2 pi)"),
        "log(2 pi) without the 1/2": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z ** 2 - log_std - {LOG_2PI}).sum(-1)",
            "-log(2 pi) / 2"),
        "forgets the log-std term": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z ** 2 - 0.5 * {LOG_2PI}).sum(-1)",
            "-log sigma_d term"),
        "log variance for log std": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z ** 2 - 2 * log_std - 0.5 * {LOG_2PI}).sum(-1)",
            "not log sigma^2"),
        "sigma itself for log sigma": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z ** 2 - log_std.exp() - 0.5 * {LOG_2PI}).sum(-1)",
            "not sigma"),
        "log_std used as sigma": (
            f"z = (actions - mean) / log_std\nreturn (-0.5 * z ** 2 - torch.log(log_std) - 0.5 * {LOG_2PI}).sum(-1)",
            "sigma = log_std.exp()"),
        "no sum (per dimension)": (
            f"z = (actions - mean) / log_std.exp()\nreturn -0.5 * z ** 2 - log_std - 0.5 * {LOG_2PI}", "shape (3,)"),
        "sums over the batch too": (
            f"z = (actions - mean) / log_std.exp()\nreturn (-0.5 * z ** 2 - log_std - 0.5 * {LOG_2PI}).sum()",
            "shape (3,)"),
        "the density, not its log": (
            "return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1).exp()", "constant"),
        "numpy, no gradient": (
            "import numpy as np\nm, s, a = (t.detach().numpy() for t in (mean, log_std, actions))\n"
            "return torch.tensor((-0.5 * ((a - m) / np.exp(s)) ** 2 - s - 0.5 * np.log(2 * np.pi)).sum(-1))",
            "no gradient"),
    },
    "gaussian_entropy": {
        "mean over dimensions": (f"return (log_std + 0.5 * (1 + {LOG_2PI})).mean(-1)", "not the mean"),
        "missing the constant": ("return log_std.sum(-1)", "(1 + log(2 pi)) / 2"),
        "forgets the 1/2 e term": (f"return (log_std + 0.5 * {LOG_2PI}).sum(-1)", "(1 + log(2 pi)) / 2"),
        "no 1/2 on the constant": (f"return (log_std + 1 + {LOG_2PI}).sum(-1)", "(1 + log(2 pi)) / 2"),
        "sigma for log sigma": (f"return (log_std.exp() + 0.5 * (1 + {LOG_2PI})).sum(-1)", "not sigma"),
        "log variance for log sigma": (f"return (2 * log_std + 0.5 * (1 + {LOG_2PI})).sum(-1)", "not log sigma^2"),
        "the constant once, not per dimension": (
            f"return log_std.sum(-1) + 0.5 * (1 + {LOG_2PI})", "not the mean"),
        "no sum (per dimension)": (f"return log_std + 0.5 * (1 + {LOG_2PI})", "shape (5,)"),
        "sums over the batch too": (f"return (log_std + 0.5 * (1 + {LOG_2PI})).sum()", "shape (5,)"),
        "detached": (f"return (log_std.detach() + 0.5 * (1 + {LOG_2PI})).sum(-1)", "no gradient"),
    },
    "tanh_squashed_log_prob": {
        "no correction": ("return gaussian_log_prob(mean, log_std, pre_tanh)", "minus the log-jacobian"),
        "correction added": (
            "return gaussian_log_prob(mean, log_std, pre_tanh) + torch.log(1 - torch.tanh(pre_tanh) ** 2).sum(-1)",
            "minus the log-jacobian"),
        "Gaussian at the squashed action": (
            "a = torch.tanh(pre_tanh)\n"
            "return gaussian_log_prob(mean, log_std, a) - torch.log(1 - a ** 2).sum(-1)", "pre-tanh u"),
        "correction averaged over dimensions": (
            "return gaussian_log_prob(mean, log_std, pre_tanh) - torch.log(1 - torch.tanh(pre_tanh) ** 2).mean(-1)",
            "sum the log-jacobian"),
        "correction not summed": (
            "return gaussian_log_prob(mean, log_std, pre_tanh) - torch.log(1 - torch.tanh(pre_tanh) ** 2)",
            "shape (2,)"),
        "naive 1 - tanh^2 (overflows)": (
            "return gaussian_log_prob(mean, log_std, pre_tanh) - torch.log(1 - torch.tanh(pre_tanh) ** 2).sum(-1)",
            "numerically stable"),
        "epsilon hack 1 - tanh^2 + 1e-6": (
            "return gaussian_log_prob(mean, log_std, pre_tanh)"
            " - torch.log(1 - torch.tanh(pre_tanh) ** 2 + 1e-6).sum(-1)",
            "numerically stable"),
        "softplus with the wrong sign": (
            "return gaussian_log_prob(mean, log_std, pre_tanh) - (2 * (math.log(2) - pre_tanh "
            "- torch.nn.functional.softplus(2 * pre_tanh))).sum(-1)", "log-jacobian"),
        "Jacobian of tanh without the log": (
            "return gaussian_log_prob(mean, log_std, pre_tanh) - (1 - torch.tanh(pre_tanh) ** 2).sum(-1)",
            "log-jacobian"),
    },
}

# The wrong answers the whole test cell (visible and hidden parts) must reject: all of the above.
WRONG_ANSWERS = {exercise: {name: body for name, (body, _hint) in named.items()}
                 for exercise, named in VISIBLE_WRONG_ANSWERS.items()}

# Other correct ways to write the answers: the tests must not insist on one spelling.
RIGHT_ANSWERS = {
    "gaussian_log_prob": {
        "torch.distributions.Normal":
            "return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)",
        "variance written out":
            "var = torch.exp(2 * log_std)\n"
            "return (-(actions - mean) ** 2 / (2 * var) - 0.5 * torch.log(2 * math.pi * var)).sum(-1)",
        "Independent Normal": "std = log_std.exp().expand_as(mean)\n"
                              "return torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)"
                              ".log_prob(actions)",
    },
    "gaussian_entropy": {
        "torch.distributions.Normal": "return torch.distributions.Normal(torch.zeros_like(log_std), log_std.exp())"
                                      ".entropy().sum(-1)",
        "log of 2 pi e": "return (log_std + 0.5 * torch.log(torch.tensor(2 * math.pi * math.e))).sum(-1)",
    },
    "tanh_squashed_log_prob": {
        "torch TanhTransform's Jacobian":
            "return gaussian_log_prob(mean, log_std, pre_tanh) - torch.distributions.transforms"
            ".TanhTransform().log_abs_det_jacobian(pre_tanh, torch.tanh(pre_tanh)).sum(-1)",
        "log-cosh form": "return gaussian_log_prob(mean, log_std, pre_tanh) + 2 * (pre_tanh.abs() + torch.log1p("
                         "torch.exp(-2 * pre_tanh.abs())) - math.log(2)).sum(-1)",
    },
}


class TestExercises(LessonExerciseChecks, lesson=LESSON, wrong_answers=WRONG_ANSWERS,
                    visible_wrong_answers=VISIBLE_WRONG_ANSWERS, right_answers=RIGHT_ANSWERS):
    """Lesson 06's graded exercises against the lesson's own test cells."""
