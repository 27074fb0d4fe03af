"""Learning curves and lesson 04's experiments over seeds, by the package trainer: its pitfalls, the entropy
bonus where exploring is hard, what reuse buys, and the implementation details.

``ABLATIONS`` names the default and the three pitfalls of the lesson: a wide clip (eps = 0.5), too
many epochs per batch (K = 30) and no entropy bonus (c2 = 0). ``ENTROPY_SETTINGS`` trains the sparse-reward
chain (``ppo_course.envs``) without the bonus, with the default one and with a larger one.
``reuse_settings`` names the reuse experiment: K = 1 step on the whole batch (vanilla policy gradient: the
ratio is exactly 1, the clip never binds), K = 4 (the default), K = 10, and K = 10 without the clip.
``DETAILS`` switches off (or changes) one implementation detail of the trainer at a time. ``run_ablations``
trains each setting on each seed; ``plot_curves`` draws the greedy-evaluation mean over seeds with a
min-max band; ``summarise_details`` and ``plot_details`` compare each detail with the default, paired by seed.

    python -m ppo_course.ablations ablations.json                          # section 7: the pitfalls
    python -m ppo_course.ablations --experiment entropy entropy.json       # section 7: where the bonus matters
    python -m ppo_course.ablations --experiment reuse reuse.json           # section 8: what reuse buys
    python -m ppo_course.ablations --experiment details details.json       # section 9: the implementation details

precompute them for the lesson (each prints its progress and the CPU time it took). ``plot_training``
draws one run: its learning curve and the diagnostics practitioners watch.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .commandline import OneLineErrorParser
from .envs import SPARSE_CHAIN
from .stats import bootstrap_ratio, median, paired_counts
from .trainer import PPOConfig, TrainResult, train

#: label -> the config changes from the default (each one a pitfall from the lesson).
ABLATIONS: dict[str, dict] = {
    "default (eps=0.2, K=4, c2=0.01)": {},
    "eps = 0.5 (clip too wide)": {"eps": 0.5},
    "K = 30 (too many epochs)": {"epochs": 30},
    "c2 = 0 (no entropy bonus)": {"c2": 0.0},
}

#: the seeds the pitfall and reuse experiments use
SEEDS = tuple(range(10))

#: label -> the config change: one implementation detail of the trainer switched off or changed (the first: none)
DETAILS: dict[str, dict] = {
    "all details (the default)": {},
    "advantages not normalised": {"norm_adv": "off"},
    "advantages normalised per batch": {"norm_adv": "batch"},
    "torch's default init": {"ortho_init": False},
    "Adam eps = 1e-8 (torch's default)": {"adam_eps": 1e-8},
    "constant learning rate": {"anneal_lr": False},
    "no gradient clipping": {"max_grad_norm": 0.0},
    "value loss clipped": {"clip_vloss": True},
    "early stop at KL 0.01": {"target_kl": 0.01},
}

#: label -> the config change on the sparse-reward chain (the default's c2 is 0.01)
ENTROPY_SETTINGS: dict[str, dict] = {
    "c2 = 0 (no bonus)": {"c2": 0.0},
    "c2 = 0.01 (the default)": {},
    "c2 = 0.05": {"c2": 0.05},
}

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


#: the config fields a precomputed curve records (what the tables need, e.g. to count Adam steps, and what
#: the tests compare with the settings the package names)
RECORDED = ("env_id", "total_steps", "num_envs", "num_steps", "epochs", "minibatch_size", "eps", "c2", "lr",
            "gamma", "lam", "anneal_lr", "adam_eps", "max_grad_norm", "clip_vloss", "target_kl", "norm_adv",
            "ortho_init")

#: the per-iteration logs a precomputed curve keeps (epochs: how many ppo_update ran, fewer after a KL stop;
#: advantage_std: the scale of the raw GAE advantages)
LOGGED = ("entropy", "approx_kl", "clip_fraction", "epochs", "advantage_std")


def curves_from_results(results: dict[str, list[TrainResult]]) -> dict[str, dict]:
    """The ``run_ablations`` format built from finished runs (e.g. the learner's own training)."""
    return {label: {"config": {name: getattr(runs[0].config, name) for name in RECORDED},
                    "seeds": [r.config.seed for r in runs],
                    "steps": eval_curve(runs[0])[0].tolist(), "means": [eval_curve(r)[1].tolist() for r in runs],
                    "log_steps": [row["step"] for row in runs[0].logs],
                    **{key: [[row[key] for row in r.logs] for r in runs] for key in LOGGED}}
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


def stays_solved_from(curve: dict, threshold: float = 475.0) -> np.ndarray:
    """Per seed: the env step from which every later greedy evaluation is >= threshold (inf: it never settles)."""
    steps, out = np.array(curve["steps"]), []
    for means in np.array(curve["means"], dtype=float):
        below = np.flatnonzero(means < threshold)
        first_settled = 0 if not below.size else below[-1] + 1
        out.append(steps[first_settled] if first_settled < len(steps) else np.inf)
    return np.array(out, dtype=float)


#: what ``compare_details`` measures per seed: (name, how to compute it, True where a larger value is better)
DETAIL_METRICS = (
    ("first solve", steps_to_solve, False),
    ("stays solved from", stays_solved_from, False),
    ("mean return", lambda curve, threshold: np.mean(np.array(curve["means"], dtype=float), axis=1), True),
)


def compare_details(curves: dict[str, dict], threshold: float = 475.0) -> dict[str, dict]:
    """Each setting against the first (the default), paired by seed: per metric of ``DETAIL_METRICS``, the
    ratio of the medians over seeds (setting / default), its 95% paired bootstrap interval
    (``ppo_course.stats.bootstrap_ratio``) and on how many seeds the setting is better and worse (None where
    neither median got there); then a verdict: "hurts" where an interval lies wholly on the worse side of 1,
    "helps" where one lies wholly on the better side (and none on the worse), else "no clear effect"."""
    reference = next(iter(curves.values()))
    assert all(c["seeds"] == reference["seeds"] for c in curves.values()), "the settings must share their seeds"
    out = {}
    for label, curve in list(curves.items())[1:]:
        row, worse, better = {}, False, False
        for name, measure, larger_is_better in DETAIL_METRICS:
            ours, ref = measure(curve, threshold).tolist(), measure(reference, threshold).tolist()
            if math.isinf(median(ours)) and math.isinf(median(ref)):
                row[name] = None
                continue
            low, high = bootstrap_ratio(ours, ref)
            below, above = paired_counts(ours, ref)
            ratio = median(ours) / median(ref)
            if larger_is_better:
                worse, better = worse or high < 1, better or low > 1
                row[name] = {"ratio": ratio, "low": low, "high": high, "better": above, "worse": below}
            else:
                worse, better = worse or low > 1, better or high < 1
                row[name] = {"ratio": ratio, "low": low, "high": high, "better": below, "worse": above}
        ended = (np.array(curve["means"], dtype=float)[:, -1] >= threshold).sum()
        row.update(ended=int(ended), verdict="hurts" if worse else "helps" if better else "no clear effect")
        out[label] = row
    return out


def summarise_details(curves: dict[str, dict], threshold: float = 475.0) -> str:
    """The details table: per setting, each metric's ratio to the default with its 95% interval and the seeds
    on which it is better / worse, the seeds whose last evaluation is solved, and the verdict."""
    reference = next(iter(curves.values()))
    seeds = len(reference["seeds"])
    ref_ended = int((np.array(reference["means"], dtype=float)[:, -1] >= threshold).sum())
    head = "".join(f"{name + ' (x default)':>32}" for name, _, _ in DETAIL_METRICS)
    lines = [f"{'':34}{head}{'end solved':>12}  verdict",
             f"{next(iter(curves)):34}" + "".join(f"{'1':>32}" for _ in DETAIL_METRICS) + f"{ref_ended:>9}/{seeds}"]
    for label, row in compare_details(curves, threshold).items():
        cells = "".join(f"{_ratio_text(row[name]):>32}" for name, _, _ in DETAIL_METRICS)
        lines.append(f"{label:36}{cells}{row['ended']:>9}/{seeds}  {row['verdict']}")
    return "\n".join(lines)


def _ratio_text(cell: dict) -> str:
    """'1.25 [0.90, 2.00] 3+/9-': the ratio, its interval, the seeds on which the setting is better and worse."""
    if cell is None:
        return "- (neither got there)"
    show = [("never" if math.isinf(v) else f"{v:.2f}") for v in (cell["ratio"], cell["low"], cell["high"])]
    return f"{show[0]} [{show[1]}, {show[2]}] {cell['better']}+/{cell['worse']}-"


def plot_details(curves: dict[str, dict], threshold: float = 475.0):
    """One panel per metric: each setting's ratio to the default (dot) with its 95% paired bootstrap interval
    (bar), on a log axis, the worse side shaded; the colour is the verdict of ``compare_details``. Returns the
    figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FormatStrFormatter

    rows = compare_details(curves, threshold)
    labels, colours = list(rows), {"hurts": "C3", "helps": "C2", "no clear effect": "C0"}
    fig, axes = plt.subplots(1, len(DETAIL_METRICS), figsize=(16, 0.45 * len(labels) + 2.2), sharey=True,
                             layout="constrained")
    for ax, (name, _, larger_is_better) in zip(axes, DETAIL_METRICS):
        cells = [rows[label][name] for label in labels]
        finite = [v for c in cells if c for v in (c["low"], c["ratio"], c["high"]) if 0 < v < math.inf]
        lo, hi = min(finite + [0.8]) / 1.2, max(finite + [1.25]) * 1.2
        for y, cell in enumerate(cells):
            if cell is not None:
                colour = colours[rows[labels[y]]["verdict"]]
                ax.plot([max(cell["low"], lo), min(cell["high"], hi)], [y, y], color=colour, lw=2.5, alpha=0.6)
                ax.plot(min(max(cell["ratio"], lo), hi), y, "o", color=colour)
        ax.axvline(1, color="black", lw=1, ls=":")
        ax.axvspan(*((lo, 1) if larger_is_better else (1, hi)), color="C3", alpha=0.06)
        ax.set(xscale="log", xlim=(lo, hi), xlabel=f"{name}: setting / default",
               title=f"{name} ({'higher' if larger_is_better else 'lower'} is better)")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        ax.xaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    handles = [Line2D([], [], color="grey", marker="o", lw=2.5, label="ratio of the medians over seeds, "
                      "with its 95% interval (paired bootstrap)"),
               Line2D([], [], color="black", ls=":", label="no change"),
               Patch(color="C3", alpha=0.1, label="worse than the default"),
               *(Line2D([], [], color=c, lw=2.5, label=f"verdict: {v}") for v, c in colours.items())]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    fig.suptitle(f"Each implementation detail changed on its own, against the default "
                 f"({len(next(iter(curves.values()))['seeds'])} seeds, paired)")
    return fig


def summarise_entropy_task(curves: dict[str, dict], threshold: float = 1.0) -> str:
    """The sparse chain, per setting: seeds whose greedy policy reaches the reward at the end of the run (and
    ever), the median env step of the first time (never = later than any), and CPU seconds per run."""
    lines = [f"{'':26}{'solved at end':>14}{'ever':>7}{'first solve, median':>21}{'CPU s/run':>11}"]
    for label, curve in curves.items():
        means = np.array(curve["means"], dtype=float)
        first = median(steps_to_solve(curve, threshold).tolist())
        seconds = np.mean(curve["cpu_seconds"]) if "cpu_seconds" in curve else float("nan")
        lines.append(f"{label:26}{f'{(means[:, -1] >= threshold).sum()}/{len(means)}':>14}"
                     f"{f'{(means >= threshold).any(axis=1).sum()}/{len(means)}':>7}"
                     f"{'never' if math.isinf(first) else f'{first:.0f}':>21}{seconds:>11.1f}")
    return "\n".join(lines)



def plot_entropy_task(curves: dict[str, dict], threshold: float = 1.0):
    """Two panels for the sparse chain: the share of seeds whose greedy policy reaches the reward at each
    evaluation, and the policy's entropy on the seeds that never get there (mean over those seeds, band:
    lowest to highest). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax_share, ax_entropy) = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
    for i, (label, curve) in enumerate(curves.items()):
        means = np.array(curve["means"], dtype=float)
        ax_share.step(curve["steps"], (means >= threshold).mean(axis=0), where="post", color=f"C{i}", label=label)
        stuck = np.array(curve["entropy"], dtype=float)[~(means >= threshold).any(axis=1)]
        if len(stuck):
            ax_entropy.plot(curve["log_steps"], stuck.mean(axis=0), color=f"C{i}",
                            label=f"{label} ({len(stuck)} of {len(means)} seeds)")
            ax_entropy.fill_between(curve["log_steps"], stuck.min(axis=0), stuck.max(axis=0), color=f"C{i}", alpha=0.12)
    ax_share.set(xlabel="environment steps", ylabel="share of seeds whose greedy policy gets the reward",
                 ylim=(-0.03, 1.03), title=f"the sparse chain: solved seeds ({len(means)} seeds)")
    ax_share.legend(fontsize="small", loc="lower right")
    ax_entropy.axhline(np.log(2), color="grey", ls=":", lw=1, label="ln 2: a fair coin")
    ax_entropy.set(xlabel="environment steps", ylabel="policy entropy (nats)", ylim=(-0.02, 0.72),
                   title="entropy of the seeds that never reach the reward")
    ax_entropy.legend(fontsize="small")
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


@dataclass(frozen=True)
class Experiment:
    """One precomputed experiment of lesson 04: the config every setting changes, the settings, how many seeds,
    and the CPU-minutes its precomputed file took (what the lesson says a rerun costs; a test compares the two)."""

    base: PPOConfig
    settings: Callable[[PPOConfig], dict[str, dict]]
    seeds: int
    about: str
    cpu_minutes: float = 0.0


EXPERIMENTS: dict[str, Experiment] = {
    "pitfalls": Experiment(PPOConfig(device="cpu"), lambda base: ABLATIONS, len(SEEDS),
                           "the default and the three pitfalls on CartPole (section 7)", cpu_minutes=16.3),
    "entropy": Experiment(PPOConfig(env_id=SPARSE_CHAIN, total_steps=30_000, eval_episodes=1, device="cpu"),
                          lambda base: ENTROPY_SETTINGS, 16, "c2 = 0, 0.01 and 0.05 on the sparse chain (section 7)",
                          cpu_minutes=2.3),
    "reuse": Experiment(PPOConfig(device="cpu"), reuse_settings, len(SEEDS),
                        "K = 1 (vanilla PG), 4, 10 and 10 without the clip on CartPole (section 8)", cpu_minutes=11.0),
    "details": Experiment(PPOConfig(device="cpu", total_steps=50_000), lambda base: DETAILS, 16,
                          "one implementation detail at a time on CartPole, a 50,000-step budget (section 9)",
                          cpu_minutes=13.8),
}


def load_or_run(name: str, path: str, rerun: bool = False, fast: bool = False) -> dict[str, dict]:
    """Experiment ``name``'s curves: loaded from ``path`` (its precomputed file), or trained here when the file
    is not there (e.g. a notebook opened on its own) or ``rerun`` is set: in ``fast`` mode one seed of a
    4,096-step run per setting. Prints which, and the CPU time it takes or took."""
    experiment = EXPERIMENTS[name]
    command = f"python -m ppo_course.ablations --experiment {name} {path}"
    if not rerun and os.path.exists(path):
        with open(path) as f:
            curves = json.load(f)
        seeds, minutes = len(next(iter(curves.values()))["seeds"]), total_cpu_minutes(curves)
        print(f"loaded {path}: {len(curves)} settings x {seeds} seeds, precomputed by `{command}` "
              f"in {minutes:.1f} CPU-minutes")
        return curves
    base = replace(experiment.base, total_steps=4_096 if fast else experiment.base.total_steps)
    settings, seeds = experiment.settings(base), 1 if fast else experiment.seeds
    print(f"training here: {len(settings)} settings x {seeds} seeds" + (
        ", fast mode: 4,096 env steps each" if fast else
        f", about {experiment.cpu_minutes:.0f} CPU-minutes (what `{command}` took)"), flush=True)
    return run_ablations(base, seeds=tuple(range(seeds)), ablations=settings)


def total_cpu_minutes(curves: dict[str, dict]) -> float:
    """The CPU time every run of a precomputed experiment took, in minutes."""
    return sum(sum(curve["cpu_seconds"]) for curve in curves.values()) / 60


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m ppo_course.ablations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="OUT.json", help="where to write the curves (JSON)")
    parser.add_argument("--experiment", choices=list(EXPERIMENTS), default="pitfalls",
                        help="; ".join(f"{name}: {e.about}" for name, e in EXPERIMENTS.items())
                        + " (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="train seeds 0 .. N-1 of every setting (default: the experiment's, 10 or 16)")
    parser.add_argument("--total-steps", type=int, default=None, metavar="INT",
                        help="env steps per run (default: the experiment's, 30,000 to 100,000)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Precompute one experiment's curves into a JSON file; prints progress and the CPU time it took."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    experiment = EXPERIMENTS[args.experiment]
    base = replace(experiment.base, total_steps=args.total_steps or experiment.base.total_steps)
    seeds = experiment.seeds if args.seeds is None else args.seeds
    try:
        base.validate()
        if seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {seeds}")
    except ValueError as exc:
        parser.error(str(exc))
    settings = experiment.settings(base)
    start = time.process_time()
    curves = run_ablations(base, seeds=tuple(range(seeds)), ablations=settings, progress=True)
    with open(args.out, "w") as f:
        json.dump(rounded(curves), f)
    print(f"{args.out}: {len(settings)} settings x {seeds} seeds in {time.process_time() - start:.0f} s of CPU")


if __name__ == "__main__":
    main()
