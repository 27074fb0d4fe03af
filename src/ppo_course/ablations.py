"""Learning curves, the lesson's pitfall ablations and its reuse experiment (lesson 04), by the package trainer.

``ABLATIONS`` names the default and the three pitfalls of the lesson: a wide clip (eps = 0.5), too
many epochs per batch (K = 30) and no entropy bonus (c2 = 0). ``reuse_settings`` names the reuse
experiment: K = 1 step on the whole batch (vanilla policy gradient: the ratio is exactly 1, the clip
never binds), K = 4 (the default), K = 10, and K = 10 without the clip. ``run_ablations`` trains each
setting on each seed; ``plot_curves`` draws the greedy-evaluation mean over seeds with a min-max band.

    python -m ppo_course.ablations ablations.json                      # section 6: the pitfalls
    python -m ppo_course.ablations --experiment reuse reuse.json       # section 7: what reuse buys

precompute them for the lesson. ``plot_training`` draws one run: its learning curve and the
diagnostics practitioners watch.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace

import numpy as np

from .commandline import OneLineErrorParser
from .trainer import PPOConfig, TrainResult, train

#: label -> the config changes from the default (each one a pitfall from the lesson).
ABLATIONS: dict[str, dict] = {
    "default (eps=0.2, K=4, c2=0.01)": {},
    "eps = 0.5 (clip too wide)": {"eps": 0.5},
    "K = 30 (too many epochs)": {"epochs": 30},
    "c2 = 0 (no entropy bonus)": {"c2": 0.0},
}

#: the seeds both precomputed experiments use
SEEDS = tuple(range(10))

#: the window (env steps) over which the pitfall table averages the entropy: after the first solves,
#: before the learning-rate decay has frozen the policy
ENTROPY_WINDOW = (20_000, 60_000)


def reuse_settings(base: PPOConfig | None = None) -> dict[str, dict]:
    """label -> config changes of the reuse experiment. K = 1 takes one step on the whole rollout
    (``minibatch_size`` = N*T), so the ratio is exactly 1 at that step: vanilla policy gradient."""
    base = base or PPOConfig()
    return {
        "K = 1, whole batch (vanilla PG)": {"epochs": 1, "minibatch_size": base.num_envs * base.num_steps},
        "K = 4 (default)": {},
        "K = 10": {"epochs": 10},
        "K = 10, no clip (eps = 1e9)": {"epochs": 10, "eps": 1e9},
    }


def eval_curve(result: TrainResult) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, greedy mean return) at each evaluation of one run."""
    return np.array([e["step"] for e in result.evals]), np.array([e["mean"] for e in result.evals])


def run_ablations(base: PPOConfig | None = None, seeds=(0, 1, 2), ablations: dict[str, dict] | None = None,
                  progress: bool = False) -> dict[str, dict]:
    """Train every ablation on every seed; returns {label: curve} in ``curves_from_results``'s format,
    plus each run's process-CPU seconds (training and evaluation) under "cpu_seconds"."""
    base = base or PPOConfig(device="cpu")
    results, seconds = {}, {}
    for label, changes in (ablations or ABLATIONS).items():
        results[label], seconds[label] = [], []
        for seed in seeds:
            start = time.process_time()
            results[label].append(train(replace(base, seed=seed, **changes)))
            seconds[label].append(time.process_time() - start)
        if progress:
            print(f"{label}: final greedy means {[round(r.evals[-1]['mean']) for r in results[label]]}, "
                  f"{sum(seconds[label]):.0f} s of CPU", flush=True)
    curves = curves_from_results(results)
    for label, curve in curves.items():
        curve["cpu_seconds"] = seconds[label]
    return curves


def smooth(values, window: int = 9) -> np.ndarray:
    """Moving average (shorter at the ends): per-iteration diagnostics are too noisy to read raw."""
    values = np.asarray(values, dtype=float)
    kernel = np.ones(min(window, len(values)))
    return np.convolve(values, kernel, "same") / np.convolve(np.ones_like(values), kernel, "same")


def plot_training(result: TrainResult, title: str = "PPO on CartPole-v1", threshold: float = 475.0,
                  entropy_ylim: tuple[float, float] = (-1, 1.05)):
    """Three panels for one run: episode returns with greedy evaluations (and the ``threshold`` line);
    approx KL and clip fraction; entropy and explained variance (the last two smoothed over 9
    iterations). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax_ret, ax_kl, ax_ent) = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
    ep_steps, ep_returns = zip(*result.episodes)
    ax_ret.plot(ep_steps, ep_returns, ".", alpha=0.3, markersize=3, label="training episodes")
    ax_ret.plot([e["step"] for e in result.evals], [e["mean"] for e in result.evals], "o-", ms=3,
                label="greedy evaluation")
    ax_ret.axhline(threshold, color="black", ls=":", lw=1, label=f"solved ({threshold:g})")
    ax_ret.set(xlabel="environment steps", ylabel="episode return", title=title)
    ax_ret.legend(fontsize="small")
    steps = [row["step"] for row in result.logs]
    column = {key: [row[key] for row in result.logs] for key in ("approx_kl", "clip_fraction", "entropy",
                                                                 "explained_variance")}
    ax_kl.plot(steps, smooth(column["approx_kl"]), color="C0")
    ax_kl.set(xlabel="environment steps", ylabel="approx KL(old ‖ new)", yscale="log",
              title="how far each update moved the policy")
    ax_clip = ax_kl.twinx()
    ax_clip.plot(steps, smooth(column["clip_fraction"]), color="C1")
    ax_clip.set_ylabel("clip fraction", color="C1")
    ax_ent.plot(steps, smooth(column["entropy"]), color="C2", label="entropy (nats)")
    ax_ent.plot(steps, smooth(column["explained_variance"]), color="C4", label="explained variance")
    ax_ent.set(xlabel="environment steps", ylim=entropy_ylim, title="policy randomness and critic quality")
    ax_ent.legend(fontsize="small")
    return fig


def plot_curves(curves: dict[str, dict], ax=None, key: str = "means", threshold: float | None = 475.0,
                ylabel: str = "greedy evaluation return"):
    """Mean over seeds (line) and min-max over seeds (band) for each label, against env steps."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for label, curve in curves.items():
        values = np.array(curve[key], dtype=float)
        steps = np.array(curve["steps"] if key == "means" else curve["log_steps"])
        (line,) = ax.plot(steps, values.mean(axis=0), label=label)
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle=":", linewidth=1, label=f"solved ({threshold:g})")
    ax.set(xlabel="environment steps", ylabel=ylabel)
    ax.legend(fontsize="small")
    return ax


#: the config fields a precomputed curve records (what the reuse table needs to count Adam steps)
RECORDED = ("total_steps", "num_envs", "num_steps", "epochs", "minibatch_size", "eps", "c2", "lr")


def curves_from_results(results: dict[str, list[TrainResult]]) -> dict[str, dict]:
    """The ``run_ablations`` format built from finished runs (e.g. the learner's own training)."""
    return {label: {"config": {name: getattr(runs[0].config, name) for name in RECORDED},
                    "seeds": [r.config.seed for r in runs],
                    "steps": eval_curve(runs[0])[0].tolist(), "means": [eval_curve(r)[1].tolist() for r in runs],
                    "log_steps": [row["step"] for row in runs[0].logs],
                    **{key: [[row[key] for row in r.logs] for r in runs]
                       for key in ("entropy", "approx_kl", "clip_fraction")}}
            for label, runs in results.items()}


def solved_stats(curve: dict, threshold: float = 475.0) -> tuple[list[float], list[float]]:
    """Per seed: the env step of the first greedy mean >= threshold (nan if never) and the share of
    evaluations from then on still >= threshold (1.0 = it stayed solved; 0.0 if never solved)."""
    steps, firsts, stays = np.array(curve["steps"]), [], []
    for means in np.array(curve["means"], dtype=float):
        hit = np.flatnonzero(means >= threshold)
        firsts.append(steps[hit[0]] if hit.size else np.nan)
        stays.append((means[hit[0]:] >= threshold).mean() if hit.size else 0.0)
    return firsts, stays


def mean_between(curve: dict, key: str = "entropy", window: tuple[int, int] = ENTROPY_WINDOW) -> np.ndarray:
    """Per seed: the mean of a logged diagnostic over the iterations with window[0] <= step < window[1]."""
    steps = np.array(curve["log_steps"])
    inside = (steps >= window[0]) & (steps < window[1])
    values = np.array(curve[key], dtype=float)[:, inside]
    return values.mean(axis=1) if inside.any() else np.array([])   # empty for runs shorter than the window


def summarise(curves: dict[str, dict], threshold: float = 475.0) -> str:
    """A small text table: per label, what the curves say in numbers (means over seeds).

    ``first solved`` is the env step of the first greedy mean >= threshold; ``solved after`` is the
    share of later evaluations still >= threshold (1.0 = it stayed solved); ``mean return`` the greedy
    return averaged over all evaluations (the area under the learning curve); ``final return`` the last
    evaluation; ``median KL`` the median approx KL per update.
    """
    lines = [f"{'':33}{'first solved':>13}{'solved after':>13}{'mean return':>12}{'final return':>13}{'median KL':>10}"]
    for label, curve in curves.items():
        firsts, stays = solved_stats(curve, threshold)
        first = f"{np.nanmean(firsts):.0f}" if not np.all(np.isnan(firsts)) else "never"
        means = np.array(curve["means"], dtype=float)
        lines.append(f"{label:33}{first:>13}{np.mean(stays):>13.2f}{means.mean():>12.1f}{means[:, -1].mean():>13.1f}"
                     f"{np.median(curve['approx_kl']):>10.4f}")
    return "\n".join(lines)


def summarise_entropy(curves: dict[str, dict], reference: str | None = None,
                      window: tuple[int, int] = ENTROPY_WINDOW) -> str:
    """The policy entropy per label: its mean over ``window`` (mean over seeds, lowest and highest seed),
    on how many seeds it is below ``reference``'s (default: the first label) on the same seed, and at the end."""
    reference = reference or next(iter(curves))
    ref, ref_seeds = mean_between(curves[reference], window=window), curves[reference].get("seeds")
    name = "{}k-{}k".format(*(w // 1000 for w in window))
    lines = [f"{'entropy (nats)':33}{name + ' mean':>13}{'lowest seed':>13}{'highest seed':>14}"
             f"{'below ' + reference.split(' ')[0]:>22}{'at the end':>12}"]
    for label, curve in curves.items():
        middle = mean_between(curve, window=window)
        paired = label != reference and middle.size and middle.size == ref.size and curve.get("seeds") == ref_seeds
        below = f"on {(middle < ref).sum()} of {middle.size} seeds" if paired else "-"
        spread = [f"{x:.2f}" for x in (middle.mean(), middle.min(), middle.max())] if middle.size else ["-"] * 3
        lines.append(f"{label:33}{spread[0]:>13}{spread[1]:>13}{spread[2]:>14}{below:>22}"
                     f"{np.mean([e[-1] for e in curve['entropy']]):>12.3f}")
    return "\n".join(lines)


def steps_to_solve(curve: dict, threshold: float = 475.0) -> np.ndarray:
    """Per seed: env steps at the first greedy mean >= threshold, inf where the run never got there."""
    firsts, _ = solved_stats(curve, threshold)
    return np.where(np.isnan(firsts), np.inf, firsts)


def adam_steps_per_batch(curve: dict) -> int:
    """K times the minibatches per rollout of N*T transitions (autoreset rows make a batch slightly smaller)."""
    cfg = curve["config"]
    return cfg["epochs"] * math.ceil(cfg["num_envs"] * cfg["num_steps"] / cfg["minibatch_size"])


def summarise_reuse(curves: dict[str, dict], threshold: float = 475.0) -> str:
    """The reuse table, per setting over its seeds: Adam steps per batch; env steps to the first greedy
    mean >= threshold (the median seed, the lower middle one for an even number of seeds, and the seeds at
    25% and 75%; "never" counts as later than any step); seeds
    still solved at the last evaluation; greedy return averaged over all evaluations (the area under the
    learning curve); median approx KL per update; entropy at the end; CPU seconds per run."""
    lines = [f"{'':33}{'Adam steps':>11}{'steps to solve':>16}{'(25%-75%':>15}{'solved':>8}{'mean':>8}"
             f"{'median KL':>11}{'final':>9}{'CPU s':>7}",
             f"{'':33}{'per batch':>11}{'median':>16}{'of seeds)':>15}{'at end':>8}{'return':>8}"
             f"{'per update':>11}{'entropy':>9}{'/run':>7}"]
    for label, curve in curves.items():
        solve = steps_to_solve(curve, threshold)
        quartiles = ["never" if np.isinf(q) else f"{q:.0f}"
                     for q in np.percentile(solve, [25, 50, 75], method="nearest")]
        means = np.array(curve["means"], dtype=float)
        at_end = f"{(means[:, -1] >= threshold).sum()}/{len(means)}"
        entropy = np.mean([e[-1] for e in curve["entropy"]])
        seconds = np.mean(curve["cpu_seconds"]) if "cpu_seconds" in curve else float("nan")
        lines.append(f"{label:33}{adam_steps_per_batch(curve):>11}{quartiles[1]:>16}"
                     f"{f'({quartiles[0]}-{quartiles[2]})':>15}{at_end:>8}{means.mean():>8.1f}"
                     f"{np.median(curve['approx_kl']):>11.4f}{entropy:>9.3f}{seconds:>7.1f}")
    return "\n".join(lines)


def plot_reuse(curves: dict[str, dict], threshold: float = 475.0):
    """Three panels: the share of seeds whose greedy mean is >= threshold at each evaluation; each seed's
    steps to solve (dots, a bar at the median; unsolved seeds drawn on the top line); approx KL per
    update (median over seeds of the 9-iteration moving average, band: 25%-75% of seeds). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax_share, ax_solve, ax_kl) = plt.subplots(1, 3, figsize=(16, 4.2), layout="constrained")
    total = max(c["config"]["total_steps"] for c in curves.values())
    jitter = np.random.default_rng(0)
    for i, (label, curve) in enumerate(curves.items()):
        means = np.array(curve["means"], dtype=float)
        ax_share.step(curve["steps"], (means >= threshold).mean(axis=0), where="post", color=f"C{i}", label=label)
        solve = steps_to_solve(curve, threshold)
        ax_solve.plot(i + jitter.uniform(-0.15, 0.15, solve.size), np.where(np.isinf(solve), total, solve), "o",
                      color=f"C{i}", alpha=0.7)
        median = np.percentile(solve, 50, method="nearest")
        if np.isfinite(median):
            ax_solve.hlines(median, i - 0.3, i + 0.3, color=f"C{i}", lw=3)
        kl = np.array([smooth(seed) for seed in curve["approx_kl"]])
        ax_kl.plot(curve["log_steps"], np.median(kl, axis=0), color=f"C{i}")
        ax_kl.fill_between(curve["log_steps"], *np.percentile(kl, [25, 75], axis=0), color=f"C{i}", alpha=0.15)
    ax_share.set(xlabel="environment steps", ylabel=f"share of seeds with greedy mean >= {threshold:g}",
                 ylim=(-0.03, 1.03), title="how many seeds are solved at each evaluation")
    ax_share.legend(fontsize="small", loc="lower right")
    ax_solve.axhline(total, color="grey", ls=":", lw=1)
    ax_solve.set_xticks(range(len(curves)), [label.replace(", ", ",\n") for label in curves], fontsize="small")
    ax_solve.set(ylabel=f"env steps to the first greedy mean >= {threshold:g}",
                 title=f"steps to solve per seed (bar: median; top line: not in {total:,})")
    ax_kl.set(xlabel="environment steps", ylabel="approx KL(old || new) per update", yscale="log", ylim=(1e-5, None),
              title="how far each update moves the policy")
    return fig


def rounded(value, digits: int = 5):
    """``value`` with every float rounded to ``digits`` significant digits (keeps the JSON files small)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m ppo_course.ablations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="OUT.json", help="where to write the curves (JSON)")
    parser.add_argument("--experiment", choices=("pitfalls", "reuse"), default="pitfalls",
                        help="pitfalls: the default and the three pitfalls (section 6); reuse: K = 1 (vanilla PG), "
                             "4, 10 and 10 without the clip (section 7) (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), metavar="N",
                        help="train seeds 0 .. N-1 of every setting (default: %(default)s)")
    parser.add_argument("--total-steps", type=int, default=PPOConfig.total_steps, metavar="INT",
                        help="env steps per run (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Precompute one experiment's curves into a JSON file; prints progress and the CPU time it took."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    base = PPOConfig(device="cpu", total_steps=args.total_steps)
    settings = ABLATIONS if args.experiment == "pitfalls" else reuse_settings(base)
    start = time.process_time()
    curves = run_ablations(base, seeds=tuple(range(args.seeds)), ablations=settings, progress=True)
    with open(args.out, "w") as f:
        json.dump(rounded(curves), f)
    print(f"{args.out}: {len(settings)} settings x {args.seeds} seeds in {time.process_time() - start:.0f} s of CPU")


if __name__ == "__main__":
    main()
