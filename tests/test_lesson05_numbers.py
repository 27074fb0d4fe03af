"""Lesson 05 says its stored runs are its own: the sweep's beta = 0 and beta = BETA PPO runs are section 5's
live full-mode runs, its DPO run at BETA is section 7's, and its reward model is section 3's (same code,
seeds, pretraining, labelled pairs, iterations and epochs). The prose quotes the stored file.

A full-mode run is cheap on a CPU (about 2 s of pretraining, 1 s for the reward model, 2 s per 40-iteration
PPO run and 1 s for DPO), so this test trains section 5's and section 7's full-mode configurations, read
from the notebook's own setup cell, and compares them with ``beta_sweep.json``. It fails when the code,
the notebook's settings or the stored file drift apart; then regenerate the sweep
(``python -m ppo_course.rlhf --out solutions/05-ppo-for-rlhf/beta_sweep.json``) and re-release the
lesson. The runs are seeded and single-threaded, so on one machine they repeat exactly; on another
processor they repeat only for a while: processors with other vector units (AVX-512 against AVX2) round
sums differently, and PPO's updates amplify that (on an AMD EPYC with AVX-512 a PPO run once left the
file's curve at iteration 11 of 40). So the first EXACT_ITERATIONS points are compared to the file's 4
decimals (a change of code, settings or seed shows from the first point), the rest through the final
values the prose reads, within FINAL_TOLERANCE, and the samples where the whole curve repeated.
"""
from __future__ import annotations

import re
from dataclasses import asdict

import nbformat
import pytest
import torch

from ppo_course import rlhf

from conftest import SOLUTIONS

LESSON = SOLUTIONS / "05-ppo-for-rlhf"
CURVES = ("reward", "human", "kl", "reviews")
EXACT_ITERATIONS = 8
# How far the mean of the last 5 points may move between processors (seen: reader 0.07, KL 0.01, real
# reviews 0.014), well inside the gaps between the sweep's betas that the prose reads.
FINAL_TOLERANCE = {"reward": 0.2, "human": 0.2, "kl": 0.3, "reviews": 0.05}
SETTINGS = ("ITERATIONS", "DPO_EPOCHS", "PRETRAIN_STEPS", "REWARD_MODEL_STEPS", "BETA")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]   # slow: trains the sweep's runs


def notebook_code() -> tuple[str, str]:
    """(the setup cell's source, every code cell's source)."""
    nb = nbformat.read(LESSON / "05-ppo-for-rlhf.ipynb", as_version=4)
    setup = next(c.source for c in nb.cells if "setup" in c.metadata.get("tags", []))
    return setup, "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def full_mode_settings() -> dict:
    """The setup cell's constants as it sets them outside the tests' short mode."""
    setup, _ = notebook_code()
    namespace = {"FAST": False}
    for name in SETTINGS:
        line = re.search(rf"^{name} = .*$", setup, re.MULTILINE)
        assert line, f"the setup cell no longer sets {name}; update this test"
        exec(line.group(0), namespace)
    return {name: namespace[name] for name in SETTINGS}


def test_the_notebook_builds_what_the_sweep_builds():
    settings, sweep = full_mode_settings(), rlhf.load_sweep(LESSON / "beta_sweep.json")
    _, code = notebook_code()
    for built in ("rlhf.pretrain(steps=PRETRAIN_STEPS, seed=0)",
                  f"rlhf.label_preferences({rlhf.sweep.LABELLED_PAIRS}, seed=1)",
                  f"rlhf.label_preferences({rlhf.sweep.HELD_OUT_PAIRS}, seed=2)",
                  "rlhf.train_reward_model(pairs, steps=REWARD_MODEL_STEPS, seed=0, loss_fn=preference_loss)",
                  "rlhf.RLHFConfig(beta=beta, iterations=ITERATIONS, seed=seed)",
                  "rlhf.DPOConfig(beta=beta, epochs=DPO_EPOCHS)"):
        assert built in code, f"the notebook no longer builds {built}: check that the sweep still matches it"
    expected = {"iterations": settings["ITERATIONS"], "beta": settings["BETA"], "seed": 0}
    assert {key: sweep["config"][key] for key in expected} == expected, (
        f"the sweep must use the notebook's {expected}, got {sweep['config']}")
    assert sweep["dpo_config"] == asdict(rlhf.DPOConfig(beta=settings["BETA"], epochs=settings["DPO_EPOCHS"])), (
        f"the sweep's DPO runs must use the notebook's beta and {settings['DPO_EPOCHS']} epochs,"
        f" got {sweep['dpo_config']}")
    assert sweep["pretrain_steps"] == settings["PRETRAIN_STEPS"], (
        f"the sweep must pretrain for the notebook's {settings['PRETRAIN_STEPS']} steps, not {sweep['pretrain_steps']}")
    assert sweep["reward_model"]["steps"] == settings["REWARD_MODEL_STEPS"], (
        f"the sweep's reward model must train for the notebook's {settings['REWARD_MODEL_STEPS']} steps")
    assert {0.0, settings["BETA"]} <= {run.beta for run in sweep["runs"]} and settings["BETA"] in {
        run.beta for run in sweep["dpo"]}, f"the sweep must hold beta = 0 and the notebook's beta = {settings['BETA']}"


def assert_repeats(live: rlhf.RunResult, stored: rlhf.RunResult, what: str) -> None:
    repeated = True
    for key in CURVES:
        ours, theirs = getattr(live, key), getattr(stored, key)
        assert len(ours) == len(theirs), f"{what}: {len(ours)} points live, {len(theirs)} stored"
        gap = max(abs(a - b) for a, b in zip(ours[:EXACT_ITERATIONS], theirs[:EXACT_ITERATIONS]))
        assert gap < 1e-3, (
            f"{what}: the live run's first {EXACT_ITERATIONS} points of {key} differ from beta_sweep.json's by up"
            f" to {gap:.4f}: the code, settings or seed changed; regenerate the sweep")
        drift = abs(live.final()[key] - stored.final()[key])
        assert drift <= FINAL_TOLERANCE[key], (
            f"{what}: the live run's final {key} ({live.final()[key]:.4f}) is {drift:.4f} from the sweep's"
            f" ({stored.final()[key]:.4f}), more than processors' rounding explains: regenerate")
        repeated &= max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-3
    if repeated:
        assert live.samples == stored.samples, f"{what}: the final samples differ from the sweep's"


def test_sweep_entries_are_the_live_full_mode_runs():
    settings, sweep = full_mode_settings(), rlhf.load_sweep(LESSON / "beta_sweep.json")
    reference = rlhf.pretrain(steps=settings["PRETRAIN_STEPS"], seed=0)
    pairs = rlhf.label_preferences(rlhf.sweep.LABELLED_PAIRS, seed=1)
    held_out = rlhf.label_preferences(rlhf.sweep.HELD_OUT_PAIRS, seed=2)
    reward_model = rlhf.train_reward_model(pairs, steps=settings["REWARD_MODEL_STEPS"], seed=0)
    with torch.no_grad():
        accuracy = rlhf.preference_accuracy(reward_model(held_out.prompts, held_out.chosen),
                                            reward_model(held_out.prompts, held_out.rejected))
    assert accuracy == pytest.approx(sweep["reward_model"]["accuracy"], abs=2e-3), (
        f"the live reward model's held-out accuracy {accuracy:.4f} must be the sweep's"
        f" {sweep['reward_model']['accuracy']:.4f}: regenerate the sweep")

    gen = torch.Generator().manual_seed(0)   # the reference row, sampled as section 2 samples it
    prompts = rlhf.sample_prompts(rlhf.RLHFConfig(), gen)
    completions = reference.generate(prompts, gen)
    with torch.no_grad():
        reward = float(reward_model(prompts, completions).mean())
    assert reward == pytest.approx(sweep["reference"]["reward"], abs=1e-3), (
        f"the live reference row's reward {reward:.4f} must be the sweep's {sweep['reference']['reward']:.4f}")
    assert float(rlhf.human_score(prompts, completions).mean()) == pytest.approx(sweep["reference"]["human"],
                                                                                abs=1e-3), (
        "the live reference row's reader score must be the sweep's: regenerate the sweep")

    stored = {run.beta: run for run in sweep["runs"]}
    for beta in (0.0, settings["BETA"]):
        config = rlhf.RLHFConfig(beta=beta, iterations=settings["ITERATIONS"], seed=0)
        live = rlhf.finetune(reference, reward_model, config, method="ppo")[1]
        assert_repeats(live, stored[beta], f"PPO, beta = {beta}")
    stored_dpo = {run.beta: run for run in sweep["dpo"]}
    config = rlhf.DPOConfig(beta=settings["BETA"], epochs=settings["DPO_EPOCHS"])
    assert_repeats(rlhf.train_dpo(reference, pairs, config, reward_model)[1], stored_dpo[settings["BETA"]],
                   f"DPO, beta = {settings['BETA']}")
