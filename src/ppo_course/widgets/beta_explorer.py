"""Lesson 05's slider: browse a precomputed sweep over the KL weight beta.

Training one run per slider move would take seconds; the sweep (``ppo_course.rlhf.beta_sweep``, stored
next to the lesson) already holds one seeded run per beta, so moving the slider only moves markers,
swaps two learning curves and replaces the sample completions.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..plotting import new_figure
from ..rlhf import SERIES_COLORS
from .live_figure import LiveFigure


class BetaExplorer:
    """A slider over the sweep's betas; left: end-of-training scores vs beta, middle: KL to the
    reference vs beta, right: the chosen run's learning curves. Below: the run's samples.

    ``sweep`` is what ``ppo_course.rlhf.load_sweep`` returns. Display it as a cell's last expression.
    """

    def __init__(self, sweep: dict, beta: float | None = None):
        self.runs = {run.beta: run for run in sweep["runs"]}
        self.betas = sorted(self.runs)
        self.reference = sweep["reference"]
        self.slider = widgets.SelectionSlider(
            options=[(f"{b:g}", b) for b in self.betas], value=beta if beta in self.runs else self.betas[0],
            description="KL weight β", continuous_update=True, style={"description_width": "initial"},
            layout=widgets.Layout(width="480px"))
        fig, (self.ax_scores, self.ax_kl, self.ax_curves) = new_figure(ncols=3, width=4.3, height=3.5)
        self._draw_sweep()
        self._draw_curves()
        self.samples = widgets.HTML()
        # One layer over a static background: what beta changes (the two markers, the chosen run's
        # curves and their title). A slider move redraws only those.
        self.figure = LiveFigure(fig, layers=[[*self.markers, self.reward_curve, self.human_curve,
                                                self.ax_curves.title]])
        self._show(self.slider.value)
        self.slider.observe(lambda change: self._show(change["new"]), names="value")
        self.widget = widgets.VBox([self.slider, self.figure.widget, self.samples])

    def _positions(self) -> np.ndarray:
        # Evenly spaced, labelled with the betas: the sweep's betas are not evenly spaced.
        return np.arange(len(self.betas))

    def _draw_sweep(self) -> None:
        x = self._positions()
        finals = [self.runs[b].final() for b in self.betas]
        for ax in (self.ax_scores, self.ax_kl):
            ax.set_xticks(x, [f"{b:g}" for b in self.betas])
            ax.set_xlabel("KL weight β")
        self.ax_scores.plot(x, [f["reward"] for f in finals], "o-", color=SERIES_COLORS["reward_model"],
                            label="reward model score")
        self.ax_scores.plot(x, [f["human"] for f in finals], "s-", color=SERIES_COLORS["human"], label="reader's score")
        self.ax_scores.axhline(self.reference["human"], ls=":", color=SERIES_COLORS["reference"],
                               label="reader, pretrained model")
        self.ax_scores.set(ylabel="mean score, end of training", title="What the policy earns")
        self.ax_scores.legend(fontsize=8, loc="lower right")
        self.ax_kl.plot(x, [f["kl"] for f in finals], "o-", color=SERIES_COLORS["kl"])
        self.ax_kl.set(ylabel="KL(π ‖ π_ref) per completion (nats)", title="How far it drifted", yscale="log")
        self.markers = [ax.axvline(0, color="black", lw=1, ls="--") for ax in (self.ax_scores, self.ax_kl)]

    def _draw_curves(self) -> None:
        ax = self.ax_curves
        (self.reward_curve,) = ax.plot([], [], color=SERIES_COLORS["reward_model"], label="reward model score")
        (self.human_curve,) = ax.plot([], [], color=SERIES_COLORS["human"], label="reader's score")
        longest = max(len(run.reward) for run in self.runs.values())
        lows = [min(min(r.reward), min(r.human)) for r in self.runs.values()]
        highs = [max(max(r.reward), max(r.human)) for r in self.runs.values()]
        ax.set(xlim=(0, longest - 1), ylim=(min(lows) - 0.3, max(highs) + 0.3),
               xlabel="PPO iteration", ylabel="mean score of the batch")
        ax.legend(fontsize=8, loc="lower left")

    def _show(self, beta: float) -> None:
        run = self.runs[beta]
        index = self.betas.index(beta)
        for marker in self.markers:
            marker.set_xdata([index, index])
        steps = np.arange(len(run.reward))
        self.reward_curve.set_data(steps, run.reward)
        self.human_curve.set_data(steps, run.human)
        final = run.final()
        self.ax_curves.set_title(f"β = {beta:g}: training")
        self.figure.redraw(layer=0)
        rows = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in run.samples)
        self.samples.value = (
            f"<b>β = {beta:g}</b>: reward model {final['reward']:.2f}, reader {final['human']:+.2f}, "
            f"KL to the reference {final['kl']:.2f} nats, {100 * final['reviews']:.0f}% real reviews. "
            f"Samples after training:<ul style='margin:2px'>{rows}</ul>")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
