"""Lesson 05 says its stored beta sweep holds section 5's runs: the sweep's beta = 0 and beta = 0.2 entries
are the live full-mode runs (same code, seed, pretraining and iterations), and its prose quotes the sweep.

A full-mode run is cheap on a CPU (about 2 s of pretraining and 2 s per 40-iteration run), so this test
trains section 5's full-mode configuration, read from the notebook's own setup cell, and compares it with
``beta_sweep.json``. It fails when the code, the notebook's settings or the stored file drift apart; then
regenerate the sweep (``python -m ppo_course.rlhf --out solutions/05-ppo-for-rlhf/beta_sweep.json``) and
re-release the lesson. The runs are seeded and single-threaded, so on one machine they repeat exactly; on
another processor they repeat only for a while: processors with other vector units (AVX-512 against
AVX2) round sums differently, and PPO's updates amplify that (on an AMD EPYC with AVX-512 the beta = 0.2
run left the file's curve at iteration 11 of 40). So the first EXACT_ITERATIONS iterations are compared
to the file's 4 decimals (a change of code, settings or seed shows from the first iteration), the rest
through the final values the prose reads, within FINAL_TOLERANCE, and the samples where the whole curve
repeated.
"""
from __future__ import annotations

import re

import nbformat
import pytest
import torch

from ppo_course import rlhf

from conftest import SOLUTIONS

LESSON = SOLUTIONS / "05-ppo-for-rlhf"
CURVES = ("reward", "human", "kl", "reviews")
EXACT_ITERATIONS = 8
# How far the mean of the last 5 iterations may move between processors (seen here: reader 0.07, KL 0.01,
# real reviews 0.014), well inside the gaps between the sweep's betas that the prose reads.
FINAL_TOLERANCE = {"reward": 0.2, "human": 0.2, "kl": 0.3, "reviews": 0.05}

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]   # slow: trains the sweep's runs


def notebook_code() -> tuple[str, str]:
    """(the setup cell's source, every code cell's source)."""
    nb = nbformat.read(LESSON / "05-ppo-for-rlhf.ipynb", as_version=4)
    setup = next(c.source for c in nb.cells if "setup" in c.metadata.get("tags", []))
    return setup, "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def full_mode_settings() -> dict:
    """ITERATIONS, PRETRAIN_STEPS and BETA as the setup cell sets them outside the tests' short mode."""
    setup, _ = notebook_code()
    namespace = {"FAST": False}
    for name in ("ITERATIONS", "PRETRAIN_STEPS", "BETA"):
        line = re.search(rf"^{name} = .*$", setup, re.MULTILINE)
        assert line, f"the setup cell no longer sets {name}; update this test"
        exec(line.group(0), namespace)
    return {name: namespace[name] for name in ("ITERATIONS", "PRETRAIN_STEPS", "BETA")}


def test_section_5_runs_with_the_sweeps_settings():
    settings, sweep = full_mode_settings(), rlhf.load_sweep(LESSON / "beta_sweep.json")
    _, code = notebook_code()
    # What section 5 trains: the reference, the reward model and the config are built as the sweep builds them.
    for built in ("rlhf.pretrain(steps=PRETRAIN_STEPS, seed=0)", "rlhf.RewardModel(very_bonus=0.5)",
                  "rlhf.RLHFConfig(beta=beta, iterations=ITERATIONS, seed=seed)"):
        assert built in code, f"the notebook no longer builds {built}: check that the sweep still matches it"
    assert rlhf.RewardModel().very_bonus == 0.5, (
        f"RewardModel's default very_bonus must be the notebook's 0.5, got {rlhf.RewardModel().very_bonus}")
    assert sweep["config"]["iterations"] == settings["ITERATIONS"] and sweep["config"]["seed"] == 0, (
        f"the sweep must use the notebook's {settings['ITERATIONS']} iterations and seed 0,"
        f" got {sweep['config']['iterations']} and {sweep['config']['seed']}")
    assert sweep["pretrain_steps"] == settings["PRETRAIN_STEPS"], (
        f"the sweep must pretrain for the notebook's {settings['PRETRAIN_STEPS']} steps, not {sweep['pretrain_steps']}")
    assert {0.0, settings["BETA"]} <= {run.beta for run in sweep["runs"]}, (
        f"the sweep must hold beta = 0 and the notebook's beta = {settings['BETA']},"
        f" it holds {sorted(run.beta for run in sweep['runs'])}")


def test_sweep_entries_are_the_live_full_mode_runs():
    settings, sweep = full_mode_settings(), rlhf.load_sweep(LESSON / "beta_sweep.json")
    stored = {run.beta: run for run in sweep["runs"]}
    reference = rlhf.pretrain(steps=settings["PRETRAIN_STEPS"], seed=0)
    reward_model = rlhf.RewardModel(very_bonus=0.5)

    gen = torch.Generator().manual_seed(0)   # the reference row, sampled as section 2 samples it
    prompts = rlhf.sample_prompts(rlhf.RLHFConfig(), gen)
    completions = reference.generate(prompts, gen)
    assert float(reward_model(prompts, completions).mean()) == pytest.approx(sweep["reference"]["reward"], abs=1e-3), (
        f"the live reference row's reward {float(reward_model(prompts, completions).mean()):.4f} must be the sweep's"
        f" {sweep['reference']['reward']:.4f}: regenerate the sweep")
    assert float(rlhf.human_score(prompts, completions).mean()) == pytest.approx(sweep["reference"]["human"],
                                                                                abs=1e-3), (
        f"the live reference row's human score {float(rlhf.human_score(prompts, completions).mean()):.4f} must be"
        f" the sweep's {sweep['reference']['human']:.4f}: regenerate the sweep")

    for beta in (0.0, settings["BETA"]):
        config = rlhf.RLHFConfig(beta=beta, iterations=settings["ITERATIONS"], seed=0)
        _, live = rlhf.finetune(reference, reward_model, config, method="ppo")
        repeated = True
        for key in CURVES:
            ours, theirs = getattr(live, key), getattr(stored[beta], key)
            assert len(ours) == len(theirs), f"beta = {beta}: {len(ours)} iterations live, {len(theirs)} stored"
            gap = max(abs(a - b) for a, b in zip(ours[:EXACT_ITERATIONS], theirs[:EXACT_ITERATIONS]))
            assert gap < 1e-3, (
                f"beta = {beta}: the live run's first {EXACT_ITERATIONS} iterations of {key} differ from"
                f" beta_sweep.json's by up to {gap:.4f}: the code, settings or seed changed; regenerate the sweep")
            drift = abs(live.final()[key] - stored[beta].final()[key])
            assert drift <= FINAL_TOLERANCE[key], (
                f"beta = {beta}: the live run's final {key} ({live.final()[key]:.4f}) is {drift:.4f} from the"
                f" sweep's ({stored[beta].final()[key]:.4f}), more than processors' rounding explains: regenerate")
            repeated &= max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-3
        if repeated:
            assert live.samples == stored[beta].samples, f"beta = {beta}: the final samples differ from the sweep's"
