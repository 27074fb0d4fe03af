"""Lesson 04's exercises: the package references are right, and the notebook's tests (visible and
hidden) accept the reference answers and reject the wrong answers learners really write."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ppo_course.gae import compute_gae
from ppo_course.losses import ppo_loss

from exercise_checks import LessonExerciseChecks, function_answer, run_tests_against

LESSON = "04-ppo-cartpole"

GAE_SIGNATURE = "def compute_gae(rewards, values, dones, last_value, gamma=0.99, lam=0.95):"
LOSS_SIGNATURE = "def ppo_loss(logp_new, logp_old, adv, values, returns, entropy, eps=0.2, c1=0.5, c2=0.01):"


def gae_body(delta: str = "rewards + gamma * next_values * not_done - values",
             carry: str = "gamma * lam * not_done[t]", next_values: str = "torch.cat([values[1:], last[None]])",
             result: str = "advantages, advantages + values") -> str:
    """A GAE answer with one piece swapped for a wrong one (the defaults are right)."""
    return f"""{GAE_SIGNATURE}
    not_done = 1.0 - dones.to(values.dtype)
    last = last_value.reshape(values.shape[1:])
    next_values = {next_values}
    deltas = {delta}
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in reversed(range(len(values))):
        running = deltas[t] + {carry} * running
        advantages[t] = running
    return {result}
"""


WRONG_GAE = {
    "ignores dones": gae_body(delta="rewards + gamma * next_values - values", carry="gamma * lam"),
    "bootstraps across an episode end": gae_body(delta="rewards + gamma * next_values - values"),
    "lets the advantage flow back across an episode end": gae_body(carry="gamma * lam"),
    "off by one: V(s_t) as the next value": gae_body(next_values="values"),
    "off by one: next value two steps ahead": gae_body(next_values="torch.cat([values[2:], last[None], last[None]])"),
    "off by one: dones of the previous step": gae_body(
        carry="gamma * lam * torch.cat([torch.ones_like(not_done[:1]), not_done[:-1]])[t]"),
    "gamma and lambda swapped": gae_body(delta="rewards + lam * next_values * not_done - values"),
    "gamma and lambda swapped everywhere": gae_body(delta="rewards + lam * next_values * not_done - values",
                                                    carry="lam * gamma * not_done[t]").replace(
        "gamma=0.99, lam=0.95):", "lam=0.99, gamma=0.95):"),
    "advantages returned as returns": gae_body(result="advantages, advantages"),
    "returns and advantages swapped": gae_body(result="advantages + values, advantages"),
    "ignores last_value": gae_body(next_values="torch.cat([values[1:], torch.zeros_like(last)[None]])"),
    "no lambda (Monte Carlo)": gae_body(carry="gamma * not_done[t]"),
}


def loss_answer(body: str) -> str:
    return function_answer(LOSS_SIGNATURE, body)


POLICY = "policy = ppo_policy_loss(logp_new, logp_old, adv, eps)\n"
WRONG_LOSS = {
    "wrong sign on the value term":
        POLICY + "return policy - c1 * ((values - returns) ** 2).mean() - c2 * entropy.mean()",
    "wrong sign on the entropy term":
        POLICY + "return policy + c1 * ((values - returns) ** 2).mean() + c2 * entropy.mean()",
    "missing c1": POLICY + "return policy + ((values - returns) ** 2).mean() - c2 * entropy.mean()",
    "missing c2": POLICY + "return policy + c1 * ((values - returns) ** 2).mean() - entropy.mean()",
    "hard-coded coefficients":
        POLICY + "return policy + 0.5 * ((values - returns) ** 2).mean() - 0.01 * entropy.mean()",
    "policy term maximised": POLICY + "return -policy + c1 * ((values - returns) ** 2).mean() - c2 * entropy.mean()",
    "absolute value error": POLICY + "return policy + c1 * (values - returns).abs().mean() - c2 * entropy.mean()",
    "sum instead of mean": POLICY + "return policy + c1 * ((values - returns) ** 2).sum() - c2 * entropy.sum()",
    "value gradient cut":
        POLICY + "return policy + c1 * ((values.detach() - returns) ** 2).mean() - c2 * entropy.mean()",
    "eps not passed on": "policy = ppo_policy_loss(logp_new, logp_old, adv)\n"
                         "return policy + c1 * ((values - returns) ** 2).mean() - c2 * entropy.mean()",
}

UPDATE_SIGNATURE = ("def ppo_update(batch, step, evaluate, epochs=4, minibatch_size=64, eps=0.2, target_kl=None,\n"
                    "               norm_adv=True, generator=None):")


def update_body(shuffle: str = "order = torch.randperm(size, generator=generator)",
                minibatches: str = "range(0, size, minibatch_size)",
                normalise: str = "(adv - adv.mean()) / (adv.std() + 1e-8)", guard: str = "norm_adv and len(adv) > 1",
                kl: str = "(log_ratio.exp() - 1 - log_ratio).mean()", log_ratio: str = "evaluate() - batch['logp']",
                stop: str = "target_kl is not None and approx_kl > target_kl", eps: str = "eps",
                epochs_run: str = "epoch", loop: str = "range(1, epochs + 1)") -> str:
    """A ppo_update answer with one piece swapped for a wrong one (the defaults are right)."""
    return f"""{UPDATE_SIGNATURE}
    size = len(batch["adv"])
    order = torch.randperm(size, generator=generator)
    for epoch in {loop}:
        {shuffle}
        for start in {minibatches}:
            indices = order[start:start + minibatch_size]
            adv = batch["adv"][indices]
            if {guard}:
                adv = {normalise}
            step(indices, adv)
        log_ratio = {log_ratio}
        approx_kl = {kl}
        if {stop}:
            break
    clip_fraction = ((log_ratio.exp() - 1).abs() > {eps}).float().mean()
    return {{"epochs": {epochs_run}, "approx_kl": float(approx_kl), "clip_fraction": float(clip_fraction)}}
"""


WRONG_UPDATE = {
    "shuffles once, not every epoch": update_body(shuffle="pass"),
    "never shuffles": update_body(shuffle="order = torch.arange(size)"),
    "drops the last, smaller minibatch": update_body(
        minibatches="range(0, size - minibatch_size + 1, minibatch_size)"),
    "minibatch count by floor division": update_body(
        minibatches="range(0, (size // minibatch_size) * minibatch_size, minibatch_size)"),
    "normalises over the whole batch": update_body(
        normalise="(adv - batch['adv'].mean()) / (batch['adv'].std() + 1e-8)"),
    "population std": update_body(normalise="(adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)"),
    "forgets to subtract the mean": update_body(normalise="adv / (adv.std() + 1e-8)"),
    "normalises a minibatch of one (NaN)": update_body(guard="norm_adv"),
    "ignores norm_adv": update_body(guard="len(adv) > 1"),
    "k1 estimator mean(-log r)": update_body(kl="(-log_ratio).mean()"),
    "KL with the ratio inverted": update_body(log_ratio="batch['logp'] - evaluate()"),
    "|log r| as the KL": update_body(kl="log_ratio.abs().mean()"),
    "never stops early": update_body(stop="False"),
    "stops at KL >= target even with None": update_body(stop="approx_kl > (target_kl or 0.0)"),
    "counts epochs from zero": update_body(loop="range(epochs)", epochs_run="epoch"),
    "hard-coded eps = 0.2": update_body(eps="0.2"),
}
# Stopping inside an epoch (after every minibatch) is a different algorithm from the one asked for.
WRONG_UPDATE["stops in the middle of an epoch"] = update_body().replace(
    "            step(indices, adv)\n",
    "            step(indices, adv)\n            lr_ = evaluate() - batch['logp']\n"
    "            if target_kl is not None and (lr_.exp() - 1 - lr_).mean() > target_kl:\n                break\n")

CASES = ([("compute_gae", name, src) for name, src in WRONG_GAE.items()]
         + [("ppo_loss", name, loss_answer(body)) for name, body in WRONG_LOSS.items()]
         + [("ppo_update", name, src) for name, src in WRONG_UPDATE.items()])

# The visible tests alone (what a learner sees before submitting) catch these, with a hint naming the bug.
VISIBLE = {
    ("compute_gae", "ignores dones"): "dones",
    ("compute_gae", "bootstraps across an episode end"): "must not bootstrap",
    ("compute_gae", "lets the advantage flow back across an episode end"): "nothing flows back",
    ("compute_gae", "off by one: V(s_t) as the next value"): "V(s_{t+1})",
    ("compute_gae", "off by one: next value two steps ahead"): "V(s_{t+1})",
    ("compute_gae", "off by one: dones of the previous step"): "(1 - done_t)",
    ("compute_gae", "gamma and lambda swapped"): "swapped",
    ("compute_gae", "advantages returned as returns"): "returns = advantages + values",
    ("compute_gae", "returns and advantages swapped"): "delta_t",
    ("compute_gae", "ignores last_value"): "last_value",
    ("compute_gae", "no lambda (Monte Carlo)"): "lam",
    ("ppo_loss", "wrong sign on the value term"): "value loss",
    ("ppo_loss", "wrong sign on the entropy term"): "entropy",
    ("ppo_loss", "missing c1"): "c1",
    ("ppo_loss", "missing c2"): "c2",
    ("ppo_loss", "hard-coded coefficients"): "arguments",
    ("ppo_loss", "policy term maximised"): "policy",
    ("ppo_loss", "absolute value error"): "(V - R)^2",
    ("ppo_loss", "sum instead of mean"): "mean",
    ("ppo_loss", "value gradient cut"): "pull V towards the returns",
    ("ppo_loss", "eps not passed on"): "eps",
    ("ppo_update", "shuffles once, not every epoch"): "shuffle in every epoch",
    ("ppo_update", "never shuffles"): "shuffle",
    ("ppo_update", "drops the last, smaller minibatch"): "do not drop it",
    ("ppo_update", "minibatch count by floor division"): "do not drop it",
    ("ppo_update", "normalises over the whole batch"): "over that minibatch",
    ("ppo_update", "population std"): "A.std()",
    ("ppo_update", "forgets to subtract the mean"): "A - A.mean()",
    ("ppo_update", "normalises a minibatch of one (NaN)"): "minibatch of 1",
    ("ppo_update", "ignores norm_adv"): "norm_adv=False",
    ("ppo_update", "k1 estimator mean(-log r)"): "mean((r - 1) - log r)",
    ("ppo_update", "KL with the ratio inverted"): "other way round",
    ("ppo_update", "|log r| as the KL"): "mean((r - 1) - log r)",
    ("ppo_update", "never stops early"): "stop when it is above target_kl",
    ("ppo_update", "stops at KL >= target even with None"): "target_kl=None",
    ("ppo_update", "counts epochs from zero"): "epochs",
    ("ppo_update", "hard-coded eps = 0.2"): "eps argument",
    ("ppo_update", "stops in the middle of an epoch"): "after each whole epoch",
}
SOURCES = {(exercise, name): source for exercise, name, source in CASES}


EXERCISES = ("compute_gae", "ppo_loss", "ppo_update")
RIGHT_ANSWERS = {
    "compute_gae": {
        "the pieces written as the tests' own defaults": gae_body(),
        "episode ends as a boolean mask": gae_body(
            delta="rewards + gamma * next_values * (~dones.bool()) - values",
            carry="gamma * lam * (~dones[t].bool())")},
    "ppo_loss": {"policy term written inline": loss_answer(
        "ratio = torch.exp(logp_new - logp_old)\n"
        "policy = -torch.min(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv).mean()\n"
        "return policy + c1 * (values - returns).pow(2).mean() - c2 * entropy.mean()")},
    "ppo_update": {
        "the pieces written as the tests' own defaults": update_body(),
        "KL from the ratio, guard on numel": update_body(
            guard="norm_adv and adv.numel() > 1", kl="(torch.exp(log_ratio) - 1 - log_ratio).mean()")},
}


WRONG_ANSWERS = {exercise: {name: source for e, name, source in CASES if e == exercise} for exercise in EXERCISES}
VISIBLE_WRONG_ANSWERS = {exercise: {name: (SOURCES[e, name], hint) for (e, name), hint in VISIBLE.items()
                                     if e == exercise} for exercise in EXERCISES}


class TestExercises(LessonExerciseChecks, lesson=LESSON, wrong_answers=WRONG_ANSWERS,
                    visible_wrong_answers=VISIBLE_WRONG_ANSWERS, right_answers=RIGHT_ANSWERS):
    """Lesson 04's graded exercises against the lesson's own test cells."""


@pytest.mark.parametrize("exercise", EXERCISES)
def test_package_reference_passes_the_notebook_tests(exercise):
    import inspect

    import ppo_course.gae
    import ppo_course.losses
    import ppo_course.update

    source = inspect.getsource({"compute_gae": ppo_course.gae.compute_gae, "ppo_loss": ppo_course.losses.ppo_loss,
                                "ppo_update": ppo_course.update.ppo_update}[exercise])
    run_tests_against(LESSON, exercise, source)


def test_gae_known_values_and_batched_envs():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0])
    values = torch.tensor([2.0, 1.0, 3.0, 2.5])
    dones = torch.tensor([0.0, 1.0, 0.0, 0.0])
    adv, ret = compute_gae(rewards, values, dones, torch.tensor(2.0), gamma=0.9, lam=0.5)
    np.testing.assert_allclose(adv.numpy(), [-0.1, 0.0, 0.385, 0.3], atol=1e-6)
    np.testing.assert_allclose(ret.numpy(), [1.9, 1.0, 3.385, 2.8], atol=1e-6)
    # Two envs side by side equal two separate single-env calls.
    gen = torch.Generator().manual_seed(0)
    r, v = torch.rand(9, 2, generator=gen), torch.randn(9, 2, generator=gen)
    d, last = (torch.rand(9, 2, generator=gen) < 0.3), torch.randn(2, generator=gen)
    both, _ = compute_gae(r, v, d, last, 0.99, 0.95)
    for i in range(2):
        single, _ = compute_gae(r[:, i], v[:, i], d[:, i], last[i], 0.99, 0.95)
        torch.testing.assert_close(both[:, i], single)


def test_loss_gradients_have_the_right_signs():
    logp = torch.log(torch.tensor([0.2, 0.5, 0.3]))
    values = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    entropy = torch.tensor([0.6, 0.3, 0.3], requires_grad=True)
    loss = ppo_loss(logp, logp, torch.tensor([1.0, -2.0, 0.5]), values, torch.tensor([2.0, 2.0, 1.0]), entropy)
    loss.backward()
    assert torch.allclose(loss, torch.tensor(1 / 6 + 0.5 * 5 / 3 - 0.01 * 0.4)), (
        f"ppo_loss = -mean(adv) (ratio 1) + c1 * MSE(V, R) - c2 * mean(entropy) = 1/6 + 0.5 * 5/3 - 0.01 * 0.4, "
        f"got {loss.item()}")
    assert (entropy.grad < 0).all() and values.grad[0] < 0 < values.grad[2], (
        f"descending the loss must raise the entropy (grad < 0) and pull V towards R (V=1 < R=2: grad < 0; "
        f"V=3 > R=1: grad > 0): entropy.grad={entropy.grad}, values.grad={values.grad}")
