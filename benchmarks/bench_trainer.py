"""Benchmark: our PPO trainer vs Stable-Baselines3 PPO (RL Zoo's tuned CartPole-v1 config), side by side.

    .venv-dev/bin/python benchmarks/bench_trainer.py --seeds 10        # ~10 minutes on 2 cores
    .venv-dev/bin/python benchmarks/bench_trainer.py --seeds 18 --first-seed 70 --out a.json   # and 88 --out b.json
    .venv-dev/bin/python benchmarks/bench_trainer.py --from-json a.json b.json     # their 36 seeds' table
    .venv-dev/bin/python benchmarks/bench_trainer.py --seeds 18 --first-seed 70 --sb3-from a.json --out c.json

Both run on the CPU on the same seeds, interleaved (ours then SB3 for even seeds, SB3 then ours for
odd ones) so that machine load hits both alike; each trains its own budget (ours the preset's 50,048 env
steps, over which its learning rate decays; SB3 the RL Zoo's 100,000), unless --budget sets both. With
--sb3-from only ours trains, and SB3's runs of the same seeds come from saved files. Every 2,048 env
steps, after that rollout's update, each is evaluated with the same function: 20 greedy episodes in a
seeded vector env; evaluation time is excluded from both wall-clock and process-CPU seconds. "Solved" =
greedy mean >= 475. Not a unit test: a script (shared machinery: versus_sb3.py).
"""
from __future__ import annotations

from versus_sb3 import (
    Task,
    benchmark_parser,
    comparison_fields,
    comparison_ratios,
    median_field,
    parse_benchmark_args,
    run_benchmark,
)

CARTPOLE = Task("CartPole-v1", threshold=475.0, eval_every=2048)

#: rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1: 8 envs x 32 steps, batch 256, 20 epochs, gamma 0.98,
#: lambda 0.8, no entropy bonus, learning rate and clip range linearly annealed from 1e-3 and 0.2.
ZOO_CARTPOLE = dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                    learning_rate=lambda f: f * 1e-3, clip_range=lambda f: f * 0.2)
ZOO_N_ENVS = 8
ZOO_BUDGET = 100_000   # its n_timesteps

FIELDS = comparison_fields(CARTPOLE, ".2f", extra=[median_field("stays solved from", "stays", ".0f")])
RATIOS = comparison_ratios(CARTPOLE, extra=[("stays solved from", "stays")])


def main(argv: list[str] | None = None) -> None:
    parser = benchmark_parser(__doc__, tuned_on="0-9, the CartPole preset on 30-61")
    parser.add_argument("--threads-ours", type=int, default=1, help="torch threads for our trainer (default 1)")
    parser.add_argument("--threads-sb3", type=int, default=1,
                        help="torch threads for SB3 (default 1, its fastest here)")
    args = parse_benchmark_args(parser, CARTPOLE, argv)
    run_benchmark(CARTPOLE, args, ours_threads=args.threads_ours, sb3_threads=args.threads_sb3,
                  zoo=ZOO_CARTPOLE, zoo_n_envs=ZOO_N_ENVS, zoo_budget=ZOO_BUDGET, fields=FIELDS, ratios=RATIOS)


if __name__ == "__main__":
    main()
