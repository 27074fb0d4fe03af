"""Benchmark: our PPO trainer vs Stable-Baselines3 PPO (RL Zoo's tuned CartPole-v1 config), side by side.

    .venv-dev/bin/python benchmarks/bench_trainer.py --seeds 10        # ~10 minutes on 2 cores

Both run on the CPU on the same seeds, interleaved (ours then SB3 for even seeds, SB3 then ours for
odd ones) so that machine load hits both alike. Every 2,048 env steps each is evaluated with the
same function: 20 greedy episodes in a seeded vector env; evaluation time is excluded from both
wall-clock and process-CPU seconds. "Solved" = greedy mean >= 475. Not a unit test: a script.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ppo_course.trainer import PPOConfig, Stopwatch, evaluate_greedy, train

THRESHOLD = 475.0
EVAL_EVERY = 2048
EVAL_EPISODES = 20

#: rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1 (lin_x = linear schedule from x to 0).
ZOO_CARTPOLE = dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0)
ZOO_N_ENVS, ZOO_LR, ZOO_CLIP = 8, 1e-3, 0.2


def run_ours(seed: int, budget: int, threads: int) -> dict:
    cfg = PPOConfig(seed=seed, total_steps=budget, device="cpu", torch_threads=threads,
                    eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES)
    result = train(cfg)
    return {"evals": result.evals, "train_seconds": result.logs[-1]["train_seconds"], "steps": result.logs[-1]["step"]}


class _SB3Greedy:
    """Adapts an SB3 model to ``evaluate_greedy``'s interface (``greedy(obs) -> actions``)."""

    def __init__(self, model):
        self.model = model

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        return self.model.predict(obs, deterministic=True)[0]


def run_sb3(seed: int, budget: int, threads: int) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(threads)

    class Evaluate(BaseCallback):
        def _on_training_start(self) -> None:
            self.clock, self.evals = Stopwatch(), []

        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY == 0:
                self.clock.pause()
                returns = evaluate_greedy(_SB3Greedy(self.model), "CartPole-v1", EVAL_EPISODES, seed=seed + 10_000)
                self.evals.append({"step": self.num_timesteps, "mean": float(returns.mean()),
                                   "train_seconds": self.clock.wall, "train_cpu_seconds": self.clock.cpu})
                self.clock.resume()
            return True

    env = make_vec_env("CartPole-v1", n_envs=ZOO_N_ENVS, seed=seed)
    model = PPO("MlpPolicy", env, learning_rate=lambda f: f * ZOO_LR, clip_range=lambda f: f * ZOO_CLIP,
                seed=seed, device="cpu", verbose=0, **ZOO_CARTPOLE)
    callback = Evaluate()
    model.learn(total_timesteps=budget, callback=callback)
    callback.clock.pause()
    return {"evals": callback.evals, "train_seconds": callback.clock.wall, "steps": model.num_timesteps}


def summarise(run: dict) -> dict:
    """First-solve step/seconds, the step from which it stays solved, final mean, training SPS."""
    evals = run["evals"]
    first = next((e for e in evals if e["mean"] >= THRESHOLD), None)
    stays = next((evals[i]["step"] for i in range(len(evals)) if all(e["mean"] >= THRESHOLD for e in evals[i:])), None)
    return {"solved": first is not None, "steps": first and first["step"], "wall": first and first["train_seconds"],
            "cpu": first and first["train_cpu_seconds"], "stays": stays, "final": evals[-1]["mean"],
            "sps": run["steps"] / run["train_seconds"]}


def _median_range(values: list, fmt: str) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "never"
    text = f"{format(statistics.median(got), fmt)} [{format(min(got), fmt)}-{format(max(got), fmt)}]"
    return text + (f" ({len(values) - len(got)} never)" if len(got) < len(values) else "")


def _median(values: list) -> float:
    return statistics.median([float("inf") if v is None else v for v in values])


def print_table(rows: dict[str, list[dict]]) -> None:
    fields = [("seeds solved", lambda s: f"{sum(r['solved'] for r in s)}/{len(s)}"),
              ("wall s to solve", lambda s: _median_range([r["wall"] for r in s], ".2f")),
              ("CPU s to solve", lambda s: _median_range([r["cpu"] for r in s], ".2f")),
              ("steps to solve", lambda s: _median_range([r["steps"] for r in s], ".0f")),
              ("stays solved from", lambda s: _median_range([r["stays"] for r in s], ".0f")),
              ("final greedy mean", lambda s: _median_range([r["final"] for r in s], ".1f")),
              ("final >= 475", lambda s: f"{sum(r['final'] >= THRESHOLD for r in s)}/{len(s)}"),
              ("training SPS", lambda s: _median_range([r["sps"] for r in s], ".0f"))]
    names = list(rows)
    print(f"{'median [range]':<20}" + "".join(f"{n:>38}" for n in names))
    for label, fn in fields:
        print(f"{label:<20}" + "".join(f"{fn(rows[n]):>38}" for n in names))
    ours, sb3 = rows[names[0]], rows[names[1]]
    for label, key in (("wall s to solve", "wall"), ("CPU s to solve", "cpu"), ("steps to solve", "steps"),
                       ("stays solved from", "stays"), ("training SPS", "sps")):
        print(f"ratio ours/SB3, median {label}: {_median([r[key] for r in ours]) / _median([r[key] for r in sb3]):.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds are FIRST..FIRST+N-1 (default 0; the defaults were tuned on 0-9, so check others)")
    parser.add_argument("--budget", type=int, default=100_000, help="env steps per run (default 100000)")
    parser.add_argument("--threads-ours", type=int, default=1, help="torch threads for our trainer (default 1)")
    parser.add_argument("--threads-sb3", type=int, default=1,
                        help="torch threads for SB3 (default 1, its fastest here)")
    args = parser.parse_args(argv)
    runners = {"ours": lambda s: run_ours(s, args.budget, args.threads_ours),
               "SB3 zoo": lambda s: run_sb3(s, args.budget, args.threads_sb3)}
    rows: dict[str, list[dict]] = {name: [] for name in runners}
    started = time.time()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        order = list(runners) if seed % 2 == 0 else list(runners)[::-1]
        for name in order:
            summary = summarise(runners[name](seed))
            rows[name].append(summary)
            print(f"seed {seed:2d} {name:8s} solved@{summary['steps']}"
                  f" in {summary['wall'] and round(summary['wall'], 2)}s"
                  f" stays@{summary['stays']} final={summary['final']:.1f} sps={summary['sps']:.0f}", flush=True)
    print(f"\n{args.seeds} seeds ({args.first_seed}-{args.first_seed + args.seeds - 1}), "
          f"budget {args.budget} env steps, eval every {EVAL_EVERY} steps x {EVAL_EPISODES} "
          f"greedy episodes (excluded from time); torch {torch.__version__}, {time.time() - started:.0f} s in all\n")
    print_table(rows)


if __name__ == "__main__":
    main()
