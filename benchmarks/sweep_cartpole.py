"""Hyperparameter sweep: how soon our trainer stays solved on CartPole-v1, per setting, on tuning seeds.

    .venv-dev/bin/python benchmarks/sweep_cartpole.py '{"gamma": 0.98, "lam": 0.8}' --seeds 30-45
    .venv-dev/bin/python benchmarks/sweep_cartpole.py '{}' --seeds 46-61 --anneal-eps

Each setting is a JSON object of PPOConfig fields laid over ``PPOConfig()`` (the lesson's defaults, not
the CartPole preset). Runs go two at a time (one torch thread each); each prints its first solve, the
step from which every later evaluation stays solved (greedy mean >= 475) and its final greedy mean, then
the medians. Tune on seeds the benchmark never uses (it uses 0-19 and 70-105; the sweeps so far tuned
on 30-61, 100-131 and 200-247). Step counts, not times, so other load on the machine does not change
the numbers. Results: README-trainer.md, the third and fourth sweeps.
"""
from __future__ import annotations

import argparse
import json
import statistics
from multiprocessing import Pool

from versus_sb3 import as_run, summarise

from ppo_course.trainer import SOLVED_AT, PPOConfig, train


def run_one(job: tuple[int, dict, bool]) -> dict:
    """One seed of one setting; with ``anneal_eps`` the clip range decays linearly to 0 like the lr."""
    seed, overrides, anneal_eps = job
    config = PPOConfig(seed=seed, device="cpu", torch_threads=1, **overrides)
    iterations = -(-config.total_steps // (config.num_envs * config.num_steps))
    eps0 = config.eps

    def anneal(row: dict, result) -> None:   # sets the clip range the next iteration uses
        if anneal_eps:
            result.config.eps = eps0 * (1 - (row["iteration"] + 1) / iterations)

    return {"seed": seed, **summarise(as_run(train(config, callback=anneal)), SOLVED_AT["CartPole-v1"])}


def seed_range(text: str) -> list[int]:
    """'30-45' -> [30, ..., 45]; '3' -> [3]."""
    first, _, last = text.partition("-")
    try:
        return list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must look like 30-45, got {text!r}") from None


def setting(text: str) -> dict:
    try:
        overrides = json.loads(text)
        PPOConfig(**overrides).validate()
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"not a setting of PPOConfig fields: {exc}") from None
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setting", type=setting, help='PPOConfig fields as JSON, e.g. \'{"lam": 0.8}\'')
    parser.add_argument("--seeds", type=seed_range, default=seed_range("30-45"), help="e.g. 30-45 (default)")
    parser.add_argument("--anneal-eps", action="store_true", help="also decay the clip range linearly to 0")
    args = parser.parse_args()
    with Pool(2) as pool:
        rows = pool.map(run_one, [(seed, args.setting, args.anneal_eps) for seed in args.seeds], chunksize=1)
    for row in rows:
        print(f"seed {row['seed']}: first solve {row['steps']}, stays solved from {row['stays']}, "
              f"final {row['final']:.0f}")
    never = float("inf")
    print(f"{json.dumps(args.setting)}{' + annealed eps' if args.anneal_eps else ''}: median stays solved from "
          f"{statistics.median(r['stays'] or never for r in rows):.0f}, median first solve "
          f"{statistics.median(r['steps'] or never for r in rows):.0f}, "
          f"{sum(r['final'] >= SOLVED_AT['CartPole-v1'] for r in rows)}/{len(rows)} end >= 475")


if __name__ == "__main__":
    main()
