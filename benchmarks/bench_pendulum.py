"""Benchmark: our PPO trainer on Pendulum-v1 vs Stable-Baselines3 PPO (RL Zoo's tuned Pendulum-v1 config).

    .venv-dev/bin/python benchmarks/bench_pendulum.py --seeds 10 --out pendulum.json   # ~15 minutes on 2 cores

Both run on the CPU with one torch thread, on the same seeds, interleaved (ours then SB3 for even
seeds, SB3 then ours for odd ones) so that machine load hits both alike. Every 4,096 env steps
(one SB3 rollout, two of ours), after that rollout's update, each is evaluated by the same function,
``ppo_course.trainer.evaluate_greedy``: 20 episodes in a seeded vector env with the mean action
(greedy), clipped to the action bounds; evaluation time is excluded from wall-clock and CPU seconds.
"Reached" = greedy mean >= -200. Not a unit test: a script (shared machinery: versus_sb3.py).
"""
from __future__ import annotations

import statistics

from versus_sb3 import (
    Task,
    benchmark_parser,
    comparison_fields,
    comparison_ratios,
    parse_benchmark_args,
    run_benchmark,
)

PENDULUM = Task("Pendulum-v1", threshold=-200.0, eval_every=4096, goal="reaching -200")

#: rl-baselines3-zoo hyperparams/ppo.yml, Pendulum-v1 (tuned): 4 envs x 1024 steps, batch 64 (SB3's
#: default), 10 epochs, gamma 0.9, lambda 0.95, lr 1e-3, clip 0.2, no entropy bonus, gSDE resampled
#: every 4 steps, 1e5 steps.
ZOO_PENDULUM = dict(n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3,
                    clip_range=0.2, use_sde=True, sde_sample_freq=4)
ZOO_N_ENVS = 4
ZOO_BUDGET = 100_000   # its n_timesteps

FIELDS = comparison_fields(PENDULUM, ".1f")
FIELDS.insert(-2, ("mean of finals", lambda s: f"{statistics.mean(r['final'] for r in s):.1f}"))
RATIOS = comparison_ratios(PENDULUM)


def main(argv: list[str] | None = None) -> None:
    parser = benchmark_parser(__doc__, tuned_on="seeds 100-107")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (default 1)")
    args = parse_benchmark_args(parser, PENDULUM, argv)
    run_benchmark(PENDULUM, args, ours_threads=args.threads, sb3_threads=args.threads,
                  zoo=ZOO_PENDULUM, zoo_n_envs=ZOO_N_ENVS, zoo_budget=ZOO_BUDGET, fields=FIELDS, ratios=RATIOS,
                  width=34)


if __name__ == "__main__":
    main()
