"""The runs lesson 05 quotes, stored as JSON, and the command that makes them.

One seeded pipeline: pretrain the reference, label preference pairs, fit and freeze the reward model;
then PPO against it once per KL weight beta (the runs the lesson's slider browses), DPO on the same
pairs once per beta, and PPO at the default beta with K = 1 to 8 epochs per batch on three seeds.
``python -m ppo_course.rlhf --out beta_sweep.json`` runs ``main``, which regenerates the lesson's file.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional, Sequence

import torch

from .dpo import DPOConfig, train_dpo
from .policy import final_samples, pretrain
from .preferences import label_preferences, preference_accuracy
from .reader import human_score
from .reward_model import train_reward_model
from .rollout import RLHFConfig, sample_prompts
from .training import RunResult, finetune

SWEEP_BETAS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
SWEEP_EPOCHS = (1, 2, 4, 8)
EPOCH_SEEDS = (0, 1, 2)
LABELLED_PAIRS, HELD_OUT_PAIRS = 4000, 1000   # labelled with seeds 1 and 2
REWARD_MODEL_STEPS = 200


def beta_sweep(betas: Sequence[float] = SWEEP_BETAS, epochs: Sequence[int] = SWEEP_EPOCHS,
               config: Optional[RLHFConfig] = None, dpo_config: Optional[DPOConfig] = None,
               pretrain_steps: int = 300) -> dict:
    """Run the lesson's pipeline and every stored run (same reference, pairs and reward model for all).

    Returns a dict: the configs, the reward model's held-out accuracy (and the reader's, on the same
    noisy labels), the reference's own scores and samples, and ``RunResult`` lists: ``runs`` (PPO, one
    per beta), ``dpo`` (one per beta above 0) and ``epochs`` (PPO at ``config.beta``, one per K and seed).
    """
    config, dpo_config = config or RLHFConfig(), dpo_config or DPOConfig()
    reference = pretrain(steps=pretrain_steps, seed=config.seed)
    pairs, held_out = label_preferences(LABELLED_PAIRS, seed=1), label_preferences(HELD_OUT_PAIRS, seed=2)
    started = time.process_time()
    reward_model = train_reward_model(pairs, steps=REWARD_MODEL_STEPS, seed=config.seed)
    reward_model_seconds = time.process_time() - started
    with torch.no_grad():
        accuracy = preference_accuracy(reward_model(held_out.prompts, held_out.chosen),
                                       reward_model(held_out.prompts, held_out.rejected))
    reader_accuracy = preference_accuracy(human_score(held_out.prompts, held_out.chosen),
                                          human_score(held_out.prompts, held_out.rejected))
    gen = torch.Generator().manual_seed(config.seed)
    prompts = sample_prompts(config, gen)
    completions = reference.generate(prompts, gen)
    with torch.no_grad():
        reference_reward = float(reward_model(prompts, completions).mean())
    return {
        "config": asdict(config), "dpo_config": asdict(dpo_config), "pretrain_steps": pretrain_steps,
        "torch": torch.__version__,
        "reward_model": {"pairs": LABELLED_PAIRS, "held_out": HELD_OUT_PAIRS, "steps": REWARD_MODEL_STEPS,
                         "seconds": reward_model_seconds, "accuracy": accuracy, "reader_accuracy": reader_accuracy},
        "reference": {"reward": reference_reward, "human": float(human_score(prompts, completions).mean()),
                      "samples": final_samples(reference)},
        "runs": [finetune(reference, reward_model, replace(config, beta=float(beta)))[1] for beta in betas],
        "dpo": [train_dpo(reference, pairs, replace(dpo_config, beta=float(beta)), reward_model)[1]
                for beta in betas if beta > 0],   # at beta = 0 DPO's implicit reward is 0: nothing to learn
        "epochs": [finetune(reference, reward_model, replace(config, epochs=k, seed=seed))[1]
                   for k in epochs for seed in EPOCH_SEEDS],
    }


RUN_LISTS = ("runs", "dpo", "epochs")


def save_sweep(sweep: dict, path: Path) -> None:
    """Write a sweep as JSON, numbers rounded to 4 decimals and each curve on one line (small, and
    readable in a diff)."""
    def rounded(value):
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [rounded(v) for v in value]
        return value

    def one_line(match: re.Match) -> str:   # a list without nested lists or dicts
        return json.dumps(json.loads(f"[{match.group(1)}]"), ensure_ascii=False)

    plain = dict(sweep, **{key: [asdict(run) for run in sweep[key]] for key in RUN_LISTS})
    text = json.dumps(rounded(plain), indent=1, ensure_ascii=False)
    Path(path).write_text(re.sub(r"\[([^\[\]{}]*)\]", one_line, text) + "\n", encoding="utf-8")


def load_sweep(path: Path) -> dict:
    """Read a sweep written by ``save_sweep``; its runs come back as ``RunResult`` objects."""
    sweep = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in RUN_LISTS:
        sweep[key] = [RunResult(**run) for run in sweep[key]]
    return sweep


def load_or_run_sweep(path: Path) -> dict:
    """The sweep stored at ``path``; if it is missing, run it (about a minute) and store it there.

    Binder and a local checkout have the file next to the lesson. Colab opens the notebook alone,
    without its folder, and recomputes: same code and seeds, so the same numbers up to float noise.
    """
    path = Path(path)
    if path.exists():
        return load_sweep(path)
    print(f"{path} not found: running the sweep ({len(SWEEP_BETAS)} PPO runs, {len(SWEEP_BETAS) - 1} DPO runs, "
          f"{len(SWEEP_EPOCHS) * len(EPOCH_SEEDS)} more PPO runs: about a minute)...")
    sweep = beta_sweep()
    save_sweep(sweep, path)
    return sweep


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ppo_course.rlhf",
        description="Lesson 05's stored runs: a reward model fitted to labelled pairs, then PPO against it and "
                    "DPO on the pairs once per KL weight beta, and PPO with K = 1 to 8 epochs per batch.")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write (e.g. beta_sweep.json)")
    parser.add_argument("--betas", type=float, nargs="+", default=list(SWEEP_BETAS),
                        help="KL weights to train with (default: %(default)s)")
    parser.add_argument("--epochs", type=int, nargs="+", default=list(SWEEP_EPOCHS),
                        help="PPO epochs per batch K to compare at the default beta (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=RLHFConfig.iterations, help="PPO iterations per run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    problem = (f"--betas must be >= 0, got {min(args.betas)}" if min(args.betas) < 0 else
               f"--epochs must be >= 1, got {min(args.epochs)}" if min(args.epochs) < 1 else
               f"--iterations must be >= 1, got {args.iterations}" if args.iterations < 1 else
               f"--out: folder {args.out.parent} does not exist" if not args.out.parent.is_dir() else None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)   # tiny models: threads cost more than they save
    sweep = beta_sweep(args.betas, args.epochs, RLHFConfig(iterations=args.iterations, seed=args.seed))
    save_sweep(sweep, args.out)
    print(f"reward model: held-out accuracy {sweep['reward_model']['accuracy']:.3f} "
          f"(the reader itself: {sweep['reward_model']['reader_accuracy']:.3f})")
    for run in sweep["runs"] + sweep["dpo"]:
        final = run.final()
        print(f"{run.method} beta {run.beta:<5g} reward {final['reward']:.2f}  KL {final['kl']:.2f}  "
              f"reader {final['human']:+.2f}  e.g. {run.samples[0]}")
    print(f"wrote {args.out}")
    return 0
