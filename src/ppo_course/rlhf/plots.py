"""Lesson 05's pictures: the colour of each series, and one function per figure.

``plot_runs`` (reward-model score, reader's score and KL per iteration or per CPU second),
``plot_preference_accuracy`` (the reward model against the labels, by how far apart the pair is),
``plot_frontier`` (reader's score against KL, one point per beta, PPO and DPO) and ``plot_epochs``
(what K epochs per batch buy per second of generation).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..plotting import COLORS, new_figure
from .reader import NONSENSE_SCORE

#: What each series of this lesson is drawn in (one meaning per colour, course-wide).
SERIES_COLORS = {name: COLORS[name] for name in (
    "reward_model", "human", "kl", "ppo", "grpo", "dpo", "reference", "no_kl")}


def plot_runs(runs: dict, colors: dict, title: str = "", x: str = "iteration", offsets: dict | None = None):
    """Three panels: reward-model score, reader's score and KL to the reference, against ``x``.

    ``runs`` maps a label to a ``RunResult`` or to a list of them (seeds: drawn as mean and band).
    ``x`` is "iteration" or "seconds" (the run's CPU seconds of training, plus ``offsets[label]``:
    e.g. the time it took to train the reward model PPO needs).
    """
    fig, axes = new_figure(ncols=3, width=4.3, height=3.4)
    panels = [("reward", "reward model score"), ("human", "reader's score"), ("kl", "KL(π ‖ π_ref), nats")]
    for label, results in runs.items():
        results = results if isinstance(results, list) else [results]
        for ax, (key, ylabel) in zip(axes, panels, strict=True):
            curves = torch.tensor([getattr(r, key) for r in results])
            mean = curves.mean(0)
            steps = (torch.tensor([r.seconds for r in results]).mean(0) + (offsets or {}).get(label, 0.0)
                     if x == "seconds" else torch.arange(len(mean)))
            ax.plot(steps, mean, color=colors[label], label=label)
            if len(results) > 1:
                ax.fill_between(steps, curves.min(0).values, curves.max(0).values, color=colors[label], alpha=0.2, lw=0)
            ax.set(xlabel="CPU seconds of training" if x == "seconds" else "iteration", ylabel=ylabel, title=ylabel)
    axes[1].axhline(NONSENSE_SCORE, ls=":", color=COLORS["baseline"], label="nonsense")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_preference_accuracy(margins: torch.Tensor, model_right: torch.Tensor, reader_right: torch.Tensor,
                             edges: tuple = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 6.0)):
    """Share of held-out labels each judge agrees with, by how far apart the reader puts the pair.

    ``margins`` is ``|h(a) - h(b)|`` per pair; ``model_right`` and ``reader_right`` are 1 where that
    judge ranks the pair as the labeller did (0.5 for a tie). The dashed line is what Bradley-Terry
    noise allows even a judge who knows ``h``: ``sigmoid(margin)``.
    """
    fig, ax = new_figure(width=6.0, height=3.6)
    bins = [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if ((margins > lo) & (margins <= hi)).any()]
    centres = np.array([margins[(margins > lo) & (margins <= hi)].mean().item() for lo, hi in bins])
    for right, label, color, marker in ((model_right, "reward model", COLORS["reward_model"], "o"),
                                        (reader_right, "reader (whose scores made the labels)", COLORS["human"], "s")):
        ax.plot(centres, [right[(margins > lo) & (margins <= hi)].mean().item() for lo, hi in bins],
                marker=marker, color=color, label=label)
    grid = np.linspace(0, edges[-1], 100)
    ax.plot(grid, 1 / (1 + np.exp(-grid)), ls="--", color=COLORS["baseline"], label="σ(margin): the noise allows")
    ax.set(xlabel="|h(a) − h(b)|: how far apart the reader puts the two reviews", ylabel="agrees with the label",
           title="Held-out pairs: who agrees with the labellers", ylim=(0.4, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    return fig, ax


def plot_frontier(sweep: dict):
    """Reader's score against KL to the reference at the end of training, one point per beta, PPO and DPO."""
    fig, ax = new_figure(width=6.4, height=4.0)
    for key, label, color in (("runs", "PPO + reward model", COLORS["ppo"]), ("dpo", "DPO", COLORS["dpo"])):
        runs = [run for run in sweep[key] if run.final()["kl"] > 0]
        kls, readers = [run.final()["kl"] for run in runs], [run.final()["human"] for run in runs]
        ax.plot(kls, readers, "o-", color=color, label=label)
        for run, kl, reader in zip(runs, kls, readers, strict=True):   # PPO's labels above, DPO's below
            ax.annotate(f"β={run.beta:g}", (kl, reader), textcoords="offset points", fontsize=7, color=color,
                        xytext=(4, 5) if key == "runs" else (4, -11))
    ax.axhline(sweep["reference"]["human"], ls=":", color=COLORS["reference"], label="pretrained reference")
    ax.axhline(NONSENSE_SCORE, ls=":", color=COLORS["baseline"], label="nonsense")
    ax.set(xscale="log", xlabel="KL(π ‖ π_ref) per completion, nats (log scale)",
           ylabel="reader's score, end of training", title="Quality against drift: one point per β")
    ax.legend(fontsize=8, loc="lower left")
    return fig, ax


def plot_epochs(runs: list, iterations: int = 15, title: str = ""):
    """PPO with K epochs per batch: reward-model score against the CPU seconds spent generating (left)
    and against all the CPU seconds of training (right), over the first ``iterations`` iterations (where
    the runs differ). Mean over the seeds of each K; darker is more epochs."""
    fig, axes = new_figure(ncols=2, width=5.0, height=3.6)
    ks = sorted({run.epochs for run in runs})
    shades = plt.get_cmap("viridis_r")(np.linspace(0.2, 0.95, len(ks)))
    for k, color in zip(ks, shades, strict=True):
        same = [run for run in runs if run.epochs == k]
        reward = np.mean([run.reward[:iterations] for run in same], axis=0)
        generation = np.mean([np.cumsum([0.0] + run.rollout_seconds[:iterations - 1]) for run in same], axis=0)
        axes[0].plot(generation, reward, color=color, label=f"K = {k}")
        axes[1].plot(np.mean([run.seconds[:iterations] for run in same], axis=0), reward, color=color, label=f"K = {k}")
    axes[0].set(xlabel="CPU seconds spent generating (rollouts)", ylabel="reward-model score of the batch",
                title="Per second of generation")
    axes[1].set(xlabel="CPU seconds of training (rollouts + updates)", ylabel="reward-model score of the batch",
                title="Per second of everything")
    axes[0].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig, axes
