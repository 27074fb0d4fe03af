"""Benchmark: our PPO trainer on Pendulum-v1 vs Stable-Baselines3 PPO (RL Zoo's tuned Pendulum-v1 config).

    .venv-dev/bin/python benchmarks/bench_pendulum.py --seeds 10 --out pendulum.json   # ~15 minutes on 2 cores

Both run on the CPU with one torch thread, on the same seeds, interleaved (ours then SB3 for even
seeds, SB3 then ours for odd ones) so that machine load hits both alike. Every 4,096 env steps
(one SB3 rollout, two of ours), after that rollout's update, each is evaluated by the same function,
``ppo_course.trainer.evaluate_greedy``: 20 episodes in a seeded vector env with the mean action
(greedy), clipped to the action bounds; evaluation time is excluded from wall-clock and CPU seconds.
"Reached" = greedy mean >= -200. Not a unit test: a script.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from ppo_course.trainer import PPOConfig, Stopwatch, evaluate_greedy, train

ENV_ID = "Pendulum-v1"
THRESHOLD = -200.0
EVAL_EVERY = 4096
EVAL_EPISODES = 20

#: rl-baselines3-zoo hyperparams/ppo.yml, Pendulum-v1 (tuned): 4 envs x 1024 steps, batch 64 (SB3's
#: default), 10 epochs, gamma 0.9, lambda 0.95, lr 1e-3, clip 0.2, no entropy bonus, gSDE resampled
#: every 4 steps, 1e5 steps.
ZOO_PENDULUM = dict(n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3,
                    clip_range=0.2, use_sde=True, sde_sample_freq=4)
ZOO_N_ENVS = 4


def run_ours(seed: int, budget: int, threads: int) -> dict:
    cfg = PPOConfig.for_env(ENV_ID, seed=seed, total_steps=budget, device="cpu", torch_threads=threads,
                            eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES)
    result = train(cfg)
    return {"evals": result.evals, "train_seconds": result.logs[-1]["train_seconds"], "steps": result.logs[-1]["step"]}


class _SB3Greedy:
    """Adapts an SB3 model to ``evaluate_greedy``'s interface (``greedy(obs) -> actions``: the mean action)."""

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
        """Evaluates when a rollout starts, i.e. after the previous rollout's update (as ours does)."""

        def _on_training_start(self) -> None:
            self.clock, self.evals = Stopwatch(), []

        def evaluate(self) -> None:
            self.clock.pause()
            returns = evaluate_greedy(_SB3Greedy(self.model), ENV_ID, EVAL_EPISODES, seed=seed + 10_000)
            self.evals.append({"step": self.num_timesteps, "mean": float(returns.mean()),
                               "train_seconds": self.clock.wall, "train_cpu_seconds": self.clock.cpu})
            self.clock.resume()

        def _on_rollout_start(self) -> None:
            if self.num_timesteps and self.num_timesteps % EVAL_EVERY == 0:
                self.evaluate()

        def _on_step(self) -> bool:
            return True

    env = make_vec_env(ENV_ID, n_envs=ZOO_N_ENVS, seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ZOO_PENDULUM)
    callback = Evaluate()
    model.learn(total_timesteps=budget, callback=callback)
    callback.evaluate()   # after the last update
    callback.clock.pause()
    return {"evals": callback.evals, "train_seconds": callback.clock.wall, "steps": model.num_timesteps}


def summarise(run: dict) -> dict:
    """First step/seconds at which the greedy mean reached -200, the final mean, training SPS."""
    evals = run["evals"]
    first = next((e for e in evals if e["mean"] >= THRESHOLD), None)
    return {"reached": first is not None, "steps": first and first["step"], "wall": first and first["train_seconds"],
            "cpu": first and first["train_cpu_seconds"], "final": evals[-1]["mean"],
            "sps": run["steps"] / run["train_seconds"]}


def _median_range(values: list, fmt: str) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "never"
    text = f"{format(statistics.median(got), fmt)} [{format(min(got), fmt)}, {format(max(got), fmt)}]"
    return text + (f" ({len(values) - len(got)} never)" if len(got) < len(values) else "")


def _median(values: list) -> float:
    """The median with a run that never reached the threshold counted as infinitely slow."""
    return statistics.median([float("inf") if v is None else v for v in values])


def print_table(rows: dict[str, list[dict]]) -> None:
    fields = [("seeds reaching -200", lambda s: f"{sum(r['reached'] for r in s)}/{len(s)}"),
              ("steps to -200", lambda s: _median_range([r["steps"] for r in s], ".0f")),
              ("wall s to -200", lambda s: _median_range([r["wall"] for r in s], ".1f")),
              ("CPU s to -200", lambda s: _median_range([r["cpu"] for r in s], ".1f")),
              ("final greedy mean", lambda s: _median_range([r["final"] for r in s], ".1f")),
              ("mean of finals", lambda s: f"{statistics.mean(r['final'] for r in s):.1f}"),
              ("final >= -200", lambda s: f"{sum(r['final'] >= THRESHOLD for r in s)}/{len(s)}"),
              ("training SPS", lambda s: _median_range([r["sps"] for r in s], ".0f"))]
    names = list(rows)
    print(f"{'median [min, max]':<22}" + "".join(f"{n:>34}" for n in names))
    for label, fn in fields:
        print(f"{label:<22}" + "".join(f"{fn(rows[n]):>34}" for n in names))
    ours, sb3 = rows[names[0]], rows[names[1]]
    for label, key in (("steps to -200", "steps"), ("wall s to -200", "wall"), ("CPU s to -200", "cpu"),
                       ("training SPS", "sps")):
        print(f"ratio ours/SB3, median {label}: {_median([r[key] for r in ours]) / _median([r[key] for r in sb3]):.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds are FIRST..FIRST+N-1 (default 0; our defaults were chosen on seeds 100-109)")
    parser.add_argument("--budget", type=int, default=100_000, help="env steps per run (default 100000, the zoo's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (default 1)")
    parser.add_argument("--out", default=None, help="also write every run's evaluations to this JSON file")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.budget < EVAL_EVERY:
        parser.error(f"--seeds must be >= 1 and --budget >= {EVAL_EVERY}")
    runners = {"ours": lambda s: run_ours(s, args.budget, args.threads),
               "SB3 zoo": lambda s: run_sb3(s, args.budget, args.threads)}
    rows: dict[str, list[dict]] = {name: [] for name in runners}
    raw: dict[str, list[dict]] = {name: [] for name in runners}
    started = time.time()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        order = list(runners) if seed % 2 == 0 else list(runners)[::-1]
        for name in order:
            run = runners[name](seed)
            summary = summarise(run)
            rows[name].append(summary)
            raw[name].append({"seed": seed, **run})
            print(f"seed {seed:3d} {name:8s} reached -200 @ {summary['steps']} steps"
                  f" in {summary['wall'] and round(summary['wall'], 1)} s; final {summary['final']:.1f};"
                  f" sps {summary['sps']:.0f}", flush=True)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump({"env_id": ENV_ID, "threshold": THRESHOLD, "eval_every": EVAL_EVERY,
                               "eval_episodes": EVAL_EPISODES, "budget": args.budget, "runs": raw}, f)
    print(f"\n{args.seeds} seeds ({args.first_seed}-{args.first_seed + args.seeds - 1}), budget {args.budget} env "
          f"steps, eval every {EVAL_EVERY} steps x {EVAL_EPISODES} greedy episodes (excluded from time); "
          f"torch {torch.__version__}, {time.time() - started:.0f} s in all\n")
    print_table(rows)


if __name__ == "__main__":
    main()
