"""Learning curves and the lesson's pitfall ablations (lesson 04), computed by the package trainer.

``ABLATIONS`` names the default and the three pitfalls of the lesson: a wide clip (eps = 0.5), too
many epochs per batch (K = 30) and no entropy bonus (c2 = 0). ``run_ablations`` trains each on a few
seeds; ``plot_curves`` draws the greedy-evaluation mean over seeds with a min-max band.
``python -m ppo_course.ablations OUT.json`` precomputes them for the lesson. ``plot_training`` draws
one run: its learning curve and the diagnostics practitioners watch.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np

from .trainer import PPOConfig, TrainResult, train

#: label -> the config changes from the default (each one a pitfall from the lesson).
ABLATIONS: dict[str, dict] = {
    "default (eps=0.2, K=4, c2=0.01)": {},
    "eps = 0.5 (clip too wide)": {"eps": 0.5},
    "K = 30 (too many epochs)": {"epochs": 30},
    "c2 = 0 (no entropy bonus)": {"c2": 0.0},
}


def eval_curve(result: TrainResult) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, greedy mean return) at each evaluation of one run."""
    return np.array([e["step"] for e in result.evals]), np.array([e["mean"] for e in result.evals])


def run_ablations(base: PPOConfig | None = None, seeds=(0, 1, 2), ablations: dict[str, dict] | None = None,
                  progress: bool = False) -> dict[str, dict]:
    """Train every ablation on every seed; returns {label: {"steps": [...], "means": [[...] per seed],
    "entropy": [[...] per seed], "approx_kl": [[...] per seed]}} (plain lists, JSON-ready)."""
    base = base or PPOConfig(device="cpu")
    results = {}
    for label, changes in (ablations or ABLATIONS).items():
        results[label] = [train(replace(base, seed=seed, **changes)) for seed in seeds]
        if progress:
            print(f"{label}: final greedy means {[round(r.evals[-1]['mean']) for r in results[label]]}", flush=True)
    return curves_from_results(results)


def smooth(values, window: int = 9) -> np.ndarray:
    """Moving average (shorter at the ends): per-iteration diagnostics are too noisy to read raw."""
    values = np.asarray(values, dtype=float)
    kernel = np.ones(min(window, len(values)))
    return np.convolve(values, kernel, "same") / np.convolve(np.ones_like(values), kernel, "same")


def plot_training(result: TrainResult, title: str = "PPO on CartPole-v1"):
    """Three panels for one run: episode returns with greedy evaluations; approx KL and clip fraction;
    entropy and explained variance (the last two smoothed over 9 iterations). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax_ret, ax_kl, ax_ent) = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
    ep_steps, ep_returns = zip(*result.episodes)
    ax_ret.plot(ep_steps, ep_returns, ".", alpha=0.3, markersize=3, label="training episodes")
    ax_ret.plot([e["step"] for e in result.evals], [e["mean"] for e in result.evals], "o-", ms=3,
                label="greedy evaluation")
    ax_ret.axhline(475, color="black", ls=":", lw=1, label="solved (475)")
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
    ax_ent.set(xlabel="environment steps", ylim=(-1, 1.05), title="policy randomness and critic quality")
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


def curves_from_results(results: dict[str, list[TrainResult]]) -> dict[str, dict]:
    """The ``run_ablations`` format built from finished runs (e.g. the learner's own training)."""
    return {label: {"steps": eval_curve(runs[0])[0].tolist(), "means": [eval_curve(r)[1].tolist() for r in runs],
                    "log_steps": [row["step"] for row in runs[0].logs],
                    "entropy": [[row["entropy"] for row in r.logs] for r in runs],
                    "approx_kl": [[row["approx_kl"] for row in r.logs] for r in runs]}
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


def summarise(curves: dict[str, dict], threshold: float = 475.0) -> str:
    """A small text table: per label, what the curves say in numbers (means over seeds).

    ``first solved`` is the env step of the first greedy mean >= threshold; ``solved after`` is the
    share of later evaluations still >= threshold (1.0 = it stayed solved); ``KL`` is the median
    approx KL per update; ``entropy`` the entropy at the end.
    """
    lines = [f"{'':36}{'first solved':>13}{'solved after':>14}{'final return':>14}{'median KL':>11}{'entropy':>9}"]
    for label, curve in curves.items():
        firsts, stays = solved_stats(curve, threshold)
        first = f"{np.nanmean(firsts):.0f}" if not np.all(np.isnan(firsts)) else "never"
        final = np.mean([m[-1] for m in curve["means"]])
        kl, entropy = np.median(curve["approx_kl"]), np.mean([e[-1] for e in curve["entropy"]])
        lines.append(f"{label:36}{first:>13}{np.mean(stays):>14.2f}{final:>14.1f}{kl:>11.4f}{entropy:>9.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Precompute the ablation curves into a JSON file (the path is the only argument)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m ppo_course.ablations OUT.json")
    curves = run_ablations(progress=True)
    with open(args[0], "w") as f:
        json.dump(curves, f)


if __name__ == "__main__":
    main()
