"""Train PPO from the command line with the package's reference trainer (the one lesson 04 mirrors).

    python -m ppo_course.train --env CartPole-v1 --seed 0 --device auto
    python -m ppo_course.train --env Pendulum-v1 --seed 0     # lesson 06: a Gaussian policy, Box actions

An environment listed in PPOConfig's ENV_DEFAULTS starts from its own defaults, which the defaults
below do not show: CartPole-v1 (the default env) trains 50,048 env steps (196 iterations) with gamma 0.98
and lambda 0.8, its learning rate decaying to almost 0 by the last update; Pendulum-v1 has its own.
Options given on the command line override them. The first line of a run says what it will do.

Shows a progress bar (steps, recent episode return, greedy return, steps per second), evaluates the
greedy policy every --eval-every steps, and writes to --out: curve.csv (one row per iteration),
curve.png (the learning curve) and checkpoint.pt (reload it with --load). Bad input (an unknown
environment, an unavailable device, an out-of-range value) is reported in one line, with exit status 2.
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

from .commandline import OneLineErrorParser, add_config_options
from .device import DEVICE_CHOICES, describe_device, select_device
from .trainer import (
    NORM_ADV,
    SOLVED_AT,
    PPOConfig,
    TrainResult,
    checkpoint_obs_rms,
    evaluate_greedy,
    load_checkpoint,
    make_env,
    save_checkpoint,
    train,
)


def build_parser() -> argparse.ArgumentParser:
    """One option per PPOConfig field (its help is the field's own) plus the output options."""
    parser = OneLineErrorParser(prog="python -m ppo_course.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_options(parser, PPOConfig, special={
        "env_id": {"flags": ["--env"], "metavar": "ID"},
        "device": {"choices": DEVICE_CHOICES, "type": str, "metavar": None},
        "norm_adv": {"choices": NORM_ADV, "metavar": None},
    })
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for curve.csv, curve.png and checkpoint.pt (default: runs/<env>-seed<seed>)")
    parser.add_argument("--load", type=Path, default=None, metavar="CHECKPOINT",
                        help="start from the weights in this checkpoint.pt (its network size is used)")
    parser.add_argument("--eval-only", action="store_true",
                        help="with --load: only evaluate the loaded policy greedily and print the result")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. for logs)")
    return parser


def write_curve(result: TrainResult, out: Path) -> None:
    """curve.csv: one row per iteration (the logged diagnostics, greedy mean where evaluated); curve.png."""
    greedy = {e["step"]: e["mean"] for e in result.evals}
    columns = list(result.logs[0]) + ["greedy_mean"]
    with open(out / "curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in result.logs:
            writer.writerow({**row, "greedy_mean": greedy.get(row["step"], "")})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    steps, returns = zip(*result.episodes) if result.episodes else ((), ())
    ax.plot(steps, returns, ".", alpha=0.3, markersize=3, label="training episodes (stochastic policy)")
    if result.evals:
        ax.plot([e["step"] for e in result.evals], [e["mean"] for e in result.evals], "o-",
                label="greedy evaluation mean")
    ax.set(xlabel="environment steps", ylabel="episode return",
           title=f"PPO on {result.config.env_id}, seed {result.config.seed}")
    ax.legend(fontsize="small")
    fig.savefig(out / "curve.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    chosen, _ = parser.parse_known_args(argv)   # the env's own defaults first, then what was given
    parser.set_defaults(**asdict(PPOConfig.for_env(chosen.env_id)))
    args = parser.parse_args(argv)
    config = PPOConfig(**{f.name: getattr(args, f.name) for f in fields(PPOConfig)})
    agent = None
    try:
        if args.load is not None:
            if not args.load.is_file():
                raise ValueError(f"no checkpoint at {args.load}")
            agent, saved = load_checkpoint(args.load)
            config = replace(config, hidden=saved.hidden)
        config.validate()
        device = select_device(config.device)
        make_env(config.env_id, 1).close()
    except ValueError as exc:
        parser.error(str(exc))  # one line on stderr, exit status 2
    if args.eval_only:
        if agent is None:
            parser.error("--eval-only needs --load CHECKPOINT")
        returns = evaluate_greedy(agent.numpy_actor(), config.env_id, config.eval_episodes, seed=config.seed + 10_000,
                                  obs_rms=checkpoint_obs_rms(args.load))
        print(f"greedy evaluation over {len(returns)} episodes: mean {returns.mean():.1f}, std {returns.std():.1f}")
        return 0
    out = args.out or Path("runs") / f"{config.env_id.replace('/', '_')}-seed{config.seed}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"PPO on {config.env_id}, seed {config.seed}, update on {describe_device(device)}; writing to {out}\n"
          f"{config.describe()}")
    result = train(config, progress=not args.no_progress, agent=agent, callback=_print_evals)
    write_curve(result, out)
    save_checkpoint(out / "checkpoint.pt", result)
    last = result.evals[-1] if result.evals else None
    threshold = SOLVED_AT.get(config.env_id)
    solved = result.solved_at(threshold) if threshold is not None else None
    print(f"done: {result.logs[-1]['step']} steps in {result.logs[-1]['train_seconds']:.1f} s "
          f"({result.logs[-1]['sps']:.0f} steps/s)" + (f"; final greedy mean {last['mean']:.1f}" if last else "")
          + (f"; first reached {threshold:g} at {solved} steps" if solved is not None else ""))
    print(f"wrote {out / 'curve.csv'}, {out / 'curve.png'}, {out / 'checkpoint.pt'}")
    return 0


def _print_evals(row: dict, result: TrainResult) -> None:
    """After each greedy evaluation, one line above the progress bar."""
    if result.evals and result.evals[-1]["step"] == row["step"]:
        from tqdm.auto import tqdm

        e = result.evals[-1]
        tqdm.write(f"step {e['step']:>7}: greedy return {e['mean']:6.1f} ± {e['std']:5.1f}   "
                   f"approx_kl {row['approx_kl']:.4f}  clip_fraction {row['clip_fraction']:.3f}  "
                   f"expl_var {row['explained_variance']:.2f}  entropy {row['entropy']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
