"""The beta sweep lesson 05's slider browses: one PPO run per KL weight, stored as JSON, and its command line.

``python -m ppo_course.rlhf --out beta_sweep.json`` runs ``main``, which regenerates the lesson's file.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import torch

from .policy import final_samples, pretrain
from .reward import RewardModel, human_score
from .rollout import RLHFConfig, sample_prompts
from .training import RunResult, finetune

SWEEP_BETAS = (0.0, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0)


def beta_sweep(betas: Sequence[float] = SWEEP_BETAS, config: Optional[RLHFConfig] = None,
               pretrain_steps: int = 300) -> dict:
    """Fine-tune with PPO once per beta (same reference, same seed) and collect the results.

    Returns a dict: the config, the reference's own scores and samples, and one ``RunResult`` per beta.
    """
    config = config or RLHFConfig()
    reference, reward_model = pretrain(steps=pretrain_steps, seed=config.seed), RewardModel()
    gen = torch.Generator().manual_seed(config.seed)
    prompts = sample_prompts(config, gen)
    completions = reference.generate(prompts, gen)
    runs = []
    for beta in betas:
        _, result = finetune(reference, reward_model, RLHFConfig(**{**asdict(config), "beta": float(beta)}))
        runs.append(result)
    return {"config": asdict(config), "pretrain_steps": pretrain_steps, "torch": torch.__version__,
            "reference": {"reward": float(reward_model(prompts, completions).mean()),
                          "human": float(human_score(prompts, completions).mean()),
                          "samples": final_samples(reference)},
            "runs": runs}


def save_sweep(sweep: dict, path: Path) -> None:
    """Write a sweep as JSON, numbers rounded to 4 decimals (small, and readable in a diff)."""
    def rounded(value):
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [rounded(v) for v in value]
        return value

    plain = dict(sweep, runs=[asdict(run) for run in sweep["runs"]])
    Path(path).write_text(json.dumps(rounded(plain), indent=1) + "\n")


def load_sweep(path: Path) -> dict:
    """Read a sweep written by ``save_sweep``; runs come back as ``RunResult`` objects."""
    sweep = json.loads(Path(path).read_text())
    sweep["runs"] = [RunResult(**run) for run in sweep["runs"]]
    return sweep


def load_or_run_sweep(path: Path) -> dict:
    """The sweep stored at ``path``; if it is missing, run it (about half a minute) and store it there.

    Binder and a local checkout have the file next to the lesson. Colab opens the notebook alone,
    without its folder, and recomputes: same code and seed, so the same numbers up to float noise.
    """
    path = Path(path)
    if path.exists():
        return load_sweep(path)
    print(f"{path} not found: running the sweep ({len(SWEEP_BETAS)} PPO runs)...")
    sweep = beta_sweep()
    save_sweep(sweep, path)
    return sweep


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ppo_course.rlhf",
        description="Lesson 05's beta sweep: PPO fine-tuning of the toy language model once per KL weight beta.")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write (e.g. beta_sweep.json)")
    parser.add_argument("--betas", type=float, nargs="+", default=list(SWEEP_BETAS),
                        help="KL weights to train with (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=RLHFConfig.iterations, help="PPO iterations per run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    problem = (f"--betas must be >= 0, got {min(args.betas)}" if min(args.betas) < 0 else
               f"--iterations must be >= 1, got {args.iterations}" if args.iterations < 1 else
               f"--out: folder {args.out.parent} does not exist" if not args.out.parent.is_dir() else None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)   # tiny models: threads cost more than they save
    sweep = beta_sweep(args.betas, RLHFConfig(iterations=args.iterations, seed=args.seed))
    save_sweep(sweep, args.out)
    for run in sweep["runs"]:
        final = run.final()
        print(f"beta {run.beta:<5g} reward {final['reward']:.2f}  KL {final['kl']:.2f}  reader {final['human']:+.2f}"
              f"  e.g. {run.samples[0]}")
    print(f"wrote {args.out}")
    return 0
