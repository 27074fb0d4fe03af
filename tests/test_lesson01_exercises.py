"""Lesson 01's tests accept the reference answers and reject the wrong answers students really write."""
from __future__ import annotations

from exercise_checks import LessonExerciseChecks

LESSON = "01-importance-sampling"




WRONG_ANSWERS = {
    "is_estimate": {
        "q/p instead of p/q": "return (q_x / p_x * f_x).mean(dim=-1)",
        "sum instead of mean": "return (p_x / q_x * f_x).sum(dim=-1)",
        "no weights (plain mean under q)": "return f_x.mean(dim=-1)",
        "mean over every dimension": "return (p_x / q_x * f_x).mean()",
        "mean over the first dimension": "return (p_x / q_x * f_x).mean(dim=0)",
        "product of means": "return (p_x / q_x).mean(dim=-1) * f_x.mean(dim=-1)",
        "self-normalised estimate": "w = p_x / q_x\nreturn (w * f_x).sum(dim=-1) / w.sum(dim=-1)",
        "divides in place": "p_x /= q_x\nreturn (p_x * f_x).mean(dim=-1)",
        "sum divided by len (counts rows)": "return (p_x / q_x * f_x).sum(dim=-1) / len(f_x)",
        "mean over dim 1": "return (p_x / q_x * f_x).mean(dim=1) if f_x.dim() > 1 else (p_x / q_x * f_x).mean()",
    },
    "probability_ratio": {
        "inverted (old over new)": "return torch.exp(logp_old - logp_new)",
        "no exp (log-ratio)": "return logp_new - logp_old",
        "quotient of log-probabilities": "return logp_new / logp_old",
        "divides probabilities (underflows)": "return torch.exp(logp_new) / torch.exp(logp_old)",
        "first-order approximation": "return 1 + logp_new - logp_old",
        "gradient cut": "return torch.exp(logp_new.detach() - logp_old)",
        "numpy round trip": "import numpy as np\n"
                            "return torch.as_tensor(np.exp(logp_new.detach().numpy() - logp_old.detach().numpy()))",
        "exp of the sum": "return torch.exp(logp_new + logp_old)",
        "averages the ratios": "return torch.exp(logp_new - logp_old).mean()",
    },
    "surrogate_objective": {
        "sum instead of mean": "return (probability_ratio(logp_new, logp_old) * advantages).sum()",
        "returns the loss (minus L)": "return -(probability_ratio(logp_new, logp_old) * advantages).mean()",
        "forgets the ratio": "return advantages.mean()",
        "no exp (log-ratio times A)": "return ((logp_new - logp_old) * advantages).mean()",
        "inverted ratio": "return (probability_ratio(logp_old, logp_new) * advantages).mean()",
        "REINFORCE pseudo-objective (log pi times A)": "return (logp_new * advantages).mean()",
        "per-sample values, not a scalar": "return probability_ratio(logp_new, logp_old) * advantages",
        "gradient cut": "return (probability_ratio(logp_new.detach(), logp_old) * advantages).mean()",
        "clipped ratio (lesson 03 too early)":
            "return (torch.clamp(probability_ratio(logp_new, logp_old), 0.8, 1.2) * advantages).mean()",
        "mean of r times mean of A": "return probability_ratio(logp_new, logp_old).mean() * advantages.mean()",
    },
}

# What a student sees: the VISIBLE tests alone must reject each of these, with a message that names the bug.
# (exercise -> {mistake: (body, a phrase the rejection must contain)})
VISIBLE_WRONG_ANSWERS = {
    "is_estimate": {
        "q/p instead of p/q": ("return (q_x / p_x * f_x).mean(dim=-1)", "q / p"),
        "sum instead of mean": ("return (p_x / q_x * f_x).sum(dim=-1)", "summed"),
        "no weights (plain mean under q)": ("return f_x.mean(dim=-1)", "unweighted"),
        "product of means": ("return (p_x / q_x).mean(dim=-1) * f_x.mean(dim=-1)", "its own p(x_i) / q(x_i)"),
        "ratio of means": ("return (p_x * f_x).mean(dim=-1) / q_x.mean(dim=-1)", "p(x_i) / q(x_i)"),
        "mean over every dimension": ("return (p_x / q_x * f_x).mean()", "averages everything"),
        "torch.mean without dim": ("return torch.mean(p_x / q_x * f_x)", "averages everything"),
        "mean over the first dimension": ("return (p_x / q_x * f_x).mean(dim=0)", "dim=0"),
        "self-normalised estimate": ("w = p_x / q_x\nreturn (w * f_x).sum(dim=-1) / w.sum(dim=-1)", "self-normalised"),
        "weights rescaled to mean 1": ("w = p_x / q_x\nw = w / w.mean(dim=-1, keepdim=True)\n"
                                       "return (w * f_x).mean(dim=-1)", "self-normalised"),
        "sum divided by len (counts rows)": ("return (p_x / q_x * f_x).sum(dim=-1) / len(f_x)", "len(x)"),
        "sum divided by numel": ("return (p_x / q_x * f_x).sum(dim=-1) / f_x.numel()", "numel()"),
        "keepdim=True": ("return (p_x / q_x * f_x).mean(dim=-1, keepdim=True)", "0-dim"),
        "returns a Python float": ("return float((p_x / q_x * f_x).mean())", "torch.Tensor"),
        "divides in place": ("p_x /= q_x\nreturn (p_x * f_x).mean(dim=-1)", "in place"),
        "log-weights": ("return ((torch.log(p_x) - torch.log(q_x)) * f_x).mean(dim=-1)", "p(x_i) / q(x_i)"),
    },
    "probability_ratio": {
        "inverted (old over new)": ("return torch.exp(logp_old - logp_new)", "inverted"),
        "no exp (log-ratio)": ("return logp_new - logp_old", "exponentiate"),
        "difference of probabilities": ("return torch.exp(logp_new) - torch.exp(logp_old)",
                                        "difference of probabilities"),
        "exp of the sum": ("return torch.exp(logp_new + logp_old)", "difference"),
        "quotient of log-probabilities": ("return logp_new / logp_old", "quotient"),
        "divides probabilities (underflows)": ("return torch.exp(logp_new) / torch.exp(logp_old)", "underflows"),
        "multiplies by exp(-logp_old) (overflows)": ("return torch.exp(logp_new) * torch.exp(-logp_old)", "underflows"),
        "first-order approximation": ("return 1 + logp_new - logp_old", "1 + difference"),
        "exp of the absolute difference": ("return torch.exp((logp_new - logp_old).abs())", "exp(logp_new - logp_old)"),
        "averages the ratios": ("return torch.exp(logp_new - logp_old).mean()", "elementwise"),
        "gradient cut (detach)": ("return torch.exp(logp_new.detach() - logp_old)", "no gradient"),
        "gradient cut (no_grad)": ("with torch.no_grad():\n    return torch.exp(logp_new - logp_old)", "no gradient"),
        "numpy round trip": ("import numpy as np\n"
                             "return torch.as_tensor(np.exp(logp_new.detach().numpy() - logp_old.detach().numpy()))",
                             "no gradient"),
        "subtracts in place": ("return logp_new.sub_(logp_old).exp()", "in place"),
    },
    "surrogate_objective": {
        "sum instead of mean": ("return (probability_ratio(logp_new, logp_old) * advantages).sum()", "summed"),
        "dot product (a sum)": ("return probability_ratio(logp_new, logp_old) @ advantages", "summed"),
        "returns the loss (minus L)": ("return -(probability_ratio(logp_new, logp_old) * advantages).mean()",
                                       "minus L"),
        "forgets the ratio": ("return advantages.mean()", "its own ratio"),
        "no exp (log-ratio times A)": ("return ((logp_new - logp_old) * advantages).mean()", "log-ratio"),
        "inverted ratio": ("return (probability_ratio(logp_old, logp_new) * advantages).mean()", "inverted"),
        "exp of the wrong difference": ("return (torch.exp(logp_old - logp_new) * advantages).mean()", "inverted"),
        "REINFORCE pseudo-objective (log pi times A)": ("return (logp_new * advantages).mean()", "REINFORCE"),
        "per-sample values, not a scalar": ("return probability_ratio(logp_new, logp_old) * advantages", "scalar"),
        "returns a Python float": ("return float((probability_ratio(logp_new, logp_old) * advantages).mean())",
                                   "torch.Tensor"),
        "gradient cut": ("return (probability_ratio(logp_new.detach(), logp_old) * advantages).mean()", "no gradient"),
        "clipped ratio (lesson 03 too early)": (
            "return (torch.clamp(probability_ratio(logp_new, logp_old), 0.8, 1.2) * advantages).mean()", "clipped"),
        "PPO's clipped objective": (
            "r = probability_ratio(logp_new, logp_old)\n"
            "return torch.min(r * advantages, torch.clamp(r, 0.8, 1.2) * advantages).mean()", "clipped"),
        "mean of r times mean of A": ("return probability_ratio(logp_new, logp_old).mean() * advantages.mean()",
                                      "mean(r) times mean(A)"),
        "advantages re-normalised inside": (
            "advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)\n"
            "return (probability_ratio(logp_new, logp_old) * advantages).mean()", "as given"),
    },
}

ALTERNATIVE_CORRECT_ANSWERS = {
    "is_estimate": {"torch.mean of the product": "weights = p_x / q_x\nreturn torch.mean(weights * f_x, dim=-1)",
                    "sum over the last dimension divided by its size":
                        "return (p_x / q_x * f_x).sum(dim=-1) / f_x.shape[-1]",
                    "weights from log-densities": "w = torch.exp(torch.log(p_x) - torch.log(q_x))\n"
                                                  "return (w * f_x).mean(dim=-1)"},
    "probability_ratio": {"log-space subtraction via torch.sub": "return torch.sub(logp_new, logp_old).exp()",
                          "old log-probabilities detached (they are data)":
                              "return torch.exp(logp_new - logp_old.detach())"},
    "surrogate_objective": {"inline ratio": "return torch.mean(torch.exp(logp_new - logp_old) * advantages)",
                            "data detached": "r = probability_ratio(logp_new, logp_old.detach())\n"
                                             "return (r * advantages.detach()).mean()"},
}


class TestExercises(LessonExerciseChecks, lesson=LESSON, wrong_answers=WRONG_ANSWERS,
                    visible_wrong_answers=VISIBLE_WRONG_ANSWERS, right_answers=ALTERNATIVE_CORRECT_ANSWERS):
    """Lesson 01's graded exercises against the lesson's own test cells."""
