"""Regenerate the figures in assets/ from the package's own code (never edit them by hand).

    .venv-dev/bin/python scripts/make_assets.py              # all figures into assets/ (a few minutes)
    .venv-dev/bin/python scripts/make_assets.py --fast --out /tmp/assets   # tiny runs, same pictures

Each figure is drawn by the code the lessons use, so the README shows what a learner will see:
- clipped-surrogate.png   lesson 03's ClipExplorer: L^CLIP against r for A > 0 and A < 0;
- trpo-trust-region.png   lesson 02's TrustRegionExplorer on a CartPole batch, delta = 0.01;
- cartpole-learning-curve.png  the reference trainer (lesson 04) on CartPole-v1, several seeds.
Everything is seeded: the same command draws the same pictures.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

REPO = Path(__file__).resolve().parents[1]
DPI = 120


@dataclass(frozen=True)
class Scale:
    """How much work each figure does: the full version for assets/, a tiny one for the test."""
    trpo_steps: int          # CartPole steps in the TRPO batch
    trpo_points: int         # step lengths at which the KL and gain curves are measured
    train_steps: int         # env steps per training run
    seeds: tuple[int, ...]   # training seeds (mean line, min-max band)
    eval_every: int
    eval_episodes: int


FULL = Scale(trpo_steps=2000, trpo_points=60, train_steps=40_000, seeds=(0, 1, 2), eval_every=2048,
             eval_episodes=10)
FAST = Scale(trpo_steps=200, trpo_points=8, train_steps=512, seeds=(0,), eval_every=256, eval_episodes=1)


def clipped_surrogate_figure(path: Path, _scale: Scale) -> None:
    from ppo_course.widgets import ClipExplorer

    explorer = ClipExplorer(r=1.3, eps=0.2, adv=1.0)
    explorer.figure.fig.savefig(path, dpi=DPI)


def trust_region_figure(path: Path, scale: Scale) -> None:
    from ppo_course import trust_region
    from ppo_course.widgets.trust_region_explorer import TrustRegionExplorer

    policy = trust_region.make_policy(hidden=32, seed=0)
    batch = trust_region.collect_cartpole_batch(policy, n_steps=scale.trpo_steps, gamma=0.99, seed=0)
    problem = trust_region.TRPOProblem(policy, batch, damping=0.01)
    explorer = TrustRegionExplorer(problem, delta=trust_region.DELTA, n_points=scale.trpo_points)
    explorer.figure.fig.savefig(path, dpi=DPI)


def learning_curve_figure(path: Path, scale: Scale) -> None:
    from ppo_course.ablations import plot_curves, run_ablations
    from ppo_course.plotting import new_figure
    from ppo_course.trainer import PPOConfig

    base = PPOConfig(device="cpu", total_steps=scale.train_steps, eval_every=scale.eval_every,
                     eval_episodes=scale.eval_episodes)
    label = f"PPO, {len(scale.seeds)} seeds (mean, min-max band)"
    curves = run_ablations(base, seeds=scale.seeds, ablations={label: {}})
    fig, ax = new_figure(width=6.5, height=3.8)
    plot_curves(curves, ax=ax)
    ax.set_title("PPO on CartPole-v1 (greedy evaluation)")
    fig.savefig(path, dpi=DPI)


FIGURES = {
    "clipped-surrogate.png": clipped_surrogate_figure,
    "trpo-trust-region.png": trust_region_figure,
    "cartpole-learning-curve.png": learning_curve_figure,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Regenerate the course's figures from the package's code.")
    parser.add_argument("--out", type=Path, default=REPO / "assets", help="folder to write into (default: assets/)")
    parser.add_argument("--fast", action="store_true", help="tiny runs (for tests): same figures, less data")
    parser.add_argument("--only", choices=sorted(FIGURES), action="append", help="make only this figure (repeatable)")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    scale = FAST if args.fast else FULL
    for name in args.only or FIGURES:
        start = time.perf_counter()
        FIGURES[name](args.out / name, scale)
        print(f"{args.out / name}  ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
