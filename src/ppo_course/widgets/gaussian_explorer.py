"""Lesson 06's slider figure: two 1-D Gaussian policies, an action, and the ratio r between them.

Left: pi_old = N(0, sigma^2) and pi_new = N(mu, sigma^2) over the action, with the chosen action a.
Right: r(a) = pi_new(a) / pi_old(a) over every action (log scale), with the clip band [1 - eps, 1 + eps]
shaded. The same mean move mu gives ratios far from 1 when sigma is small: a narrow policy's ratios
leave the clip band after a smaller move, which is why PPO's clip fraction rises as a continuous policy
becomes confident.
"""
from __future__ import annotations

import html
import math
from typing import Callable, Optional

import ipywidgets as widgets
import numpy as np
import torch

from ..gaussian import gaussian_log_prob, share_outside_clip
from ..plotting import COLORS, new_figure
from .live_figure import LiveFigure

A_MAX = 3.0
A_GRID = np.linspace(-A_MAX, A_MAX, 601)
R_LIMITS = (0.05, 20.0)
CURVES, MARKERS = 0, 1   # the figure's redraw layers (see LiveFigure)

LogProbFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def log_prob_curve(fn: LogProbFn, mean: float, log_std: float, actions: np.ndarray) -> np.ndarray:
    """``fn(mean, log_std, actions)`` for 1-D actions on a grid (each a ``[1]`` action), as NumPy."""
    a = torch.as_tensor(actions, dtype=torch.float64).reshape(-1, 1)
    with torch.no_grad():
        value = fn(torch.full_like(a, mean), torch.tensor([log_std], dtype=torch.float64), a)
    return np.asarray(value, dtype=float).reshape(-1)


class GaussianExplorer:
    """Sliders for the new policy's mean mu, the shared log-std and the action a; a button samples a ~ pi_old.

    ``learner_log_prob`` (optional) is the learner's ``gaussian_log_prob``: the ratio it implies is
    drawn dotted over the reference. Display the explorer as the last expression of a cell.
    """

    def __init__(self, learner_log_prob: Optional[LogProbFn] = None, mean: float = 0.3, log_std: float = 0.0,
                 action: float = 0.5, eps: float = 0.2, seed: int = 0):
        self.learner_log_prob, self.eps = learner_log_prob, eps
        self.rng = np.random.default_rng(seed)
        slider = dict(continuous_update=True, readout_format=".2f", style={"description_width": "initial"},
                      layout=widgets.Layout(width="420px"))
        self.mean = widgets.FloatSlider(value=mean, min=-1.5, max=1.5, step=0.05, description="new mean μ", **slider)
        self.log_std = widgets.FloatSlider(value=log_std, min=-2.0, max=0.5, step=0.1, description="log-std log σ",
                                           **slider)
        self.action = widgets.FloatSlider(value=action, min=-A_MAX, max=A_MAX, step=0.05, description="action a",
                                          **slider)
        self.sample = widgets.Button(description="sample a ~ π_old")
        self.readout = widgets.HTML()
        fig, (self.ax_density, self.ax_ratio) = new_figure(ncols=2, width=5.0, height=3.6)
        self._build(self.ax_density, self.ax_ratio)
        self._update_curves()
        self._update_point()
        self.figure = LiveFigure(fig, layers=[
            [self.old_density, self.new_density, self.ratio_curve, self.learner_curve, self.ax_density.title,
             self.ax_ratio.title],
            [self.action_line, self.old_point, self.new_point, self.ratio_point]])
        self.mean.observe(self._on_shape, names="value")
        self.log_std.observe(self._on_shape, names="value")
        self.action.observe(self._on_action, names="value")
        self.sample.on_click(self._on_sample)
        self.widget = widgets.VBox([widgets.VBox([self.mean, self.log_std, widgets.HBox([self.action, self.sample])]),
                                    self.readout, self.figure.widget])

    def _build(self, ax_d, ax_r) -> None:
        (self.old_density,) = ax_d.plot([], [], ls="--", color=COLORS["baseline"], label="π_old = N(0, σ²)")
        (self.new_density,) = ax_d.plot([], [], lw=2, color=COLORS["positive"], label="π_new = N(μ, σ²)")
        self.action_line = ax_d.axvline(0, color=COLORS["flat"], lw=1.2, label="action a")
        (self.old_point,) = ax_d.plot([], [], "o", color=COLORS["baseline"])
        (self.new_point,) = ax_d.plot([], [], "o", color=COLORS["positive"])
        ax_d.set(xlim=(-A_MAX, A_MAX), ylim=(0, 3.2), xlabel="action a", ylabel="density π(a|s)")
        ax_d.legend(loc="upper left", fontsize=8)
        ax_r.axhspan(1 - self.eps, 1 + self.eps, color=COLORS["clip_region"], alpha=0.2, lw=0,
                     label=f"clip band [1-ε, 1+ε], ε = {self.eps:g}")
        ax_r.axhline(1, color="black", lw=0.6)
        (self.ratio_curve,) = ax_r.plot([], [], lw=2, color=COLORS["positive"], label="r(a) = π_new(a) / π_old(a)")
        (self.learner_curve,) = ax_r.plot([], [], ls=":", lw=2, color=COLORS["learner"],
                                          label="r from your gaussian_log_prob")
        self.learner_curve.set_visible(False)
        (self.ratio_point,) = ax_r.plot([], [], "o", ms=8, color=COLORS["flat"], zorder=5)
        ax_r.set(xlim=(-A_MAX, A_MAX), ylim=R_LIMITS, yscale="log", xlabel="action a", ylabel="ratio r (log scale)")
        ax_r.legend(handles=[a for a in ax_r.get_lines() + ax_r.patches if a.get_label()[:1] != "_"
                             and (a is not self.learner_curve or self.learner_log_prob)], loc="lower right", fontsize=8)

    def _log_probs(self, actions: np.ndarray, fn: LogProbFn = gaussian_log_prob) -> tuple[np.ndarray, np.ndarray]:
        log_std = self.log_std.value
        return log_prob_curve(fn, 0.0, log_std, actions), log_prob_curve(fn, self.mean.value, log_std, actions)

    def _update_curves(self) -> None:
        old, new = self._log_probs(A_GRID)
        self.old_density.set_data(A_GRID, np.exp(old))
        self.new_density.set_data(A_GRID, np.exp(new))
        self.ratio_curve.set_data(A_GRID, np.clip(np.exp(new - old), *R_LIMITS))
        sigma = math.exp(self.log_std.value)
        self.ax_density.set_title(f"μ = {self.mean.value:+.2f}, σ = {sigma:.2f}")
        self.ax_ratio.set_title(f"share of π_old's actions outside the band: "
                                f"{share_outside_clip(self.mean.value, sigma, self.eps):.0%}")
        self.learner_problem = None
        self.learner_curve.set_visible(False)
        if self.learner_log_prob is None:
            return
        try:
            old, new = self._log_probs(A_GRID, self.learner_log_prob)
        except NotImplementedError:
            self.learner_problem = "not written yet"
            return
        except Exception as error:  # noqa: BLE001 - a learner's bug is shown, not raised into the slider
            self.learner_problem = f"raised {type(error).__name__}: {error}"
            return
        self.learner_curve.set_data(A_GRID, np.clip(np.exp(new - old), *R_LIMITS))
        self.learner_curve.set_visible(True)

    def _update_point(self) -> None:
        a = self.action.value
        old, new = (float(v[0]) for v in self._log_probs(np.array([a])))
        ratio = math.exp(new - old)
        self.action_line.set_xdata([a, a])
        self.old_point.set_data([a], [math.exp(old)])
        self.new_point.set_data([a], [math.exp(new)])
        self.ratio_point.set_data([a], [min(max(ratio, R_LIMITS[0]), R_LIMITS[1])])
        inside = abs(ratio - 1) <= self.eps
        note = "" if not self.learner_problem else (
            f"<br><span style='color:{COLORS['learner']}'>your gaussian_log_prob: "
            f"{html.escape(self.learner_problem)}</span>")
        self.readout.value = (
            f"<span style='font-family:monospace'>a = {a:+.2f} &nbsp; log π_old(a) = {old:+.3f} &nbsp; "
            f"log π_new(a) = {new:+.3f} &nbsp; r = exp(difference) = {ratio:.3f} "
            f"({'inside' if inside else 'outside'} the clip band)</span>{note}")

    def _on_shape(self, _change) -> None:
        self._update_curves()
        self._update_point()
        self.figure.redraw(layer=CURVES)

    def _on_action(self, _change) -> None:
        self._update_point()
        self.figure.redraw(layer=MARKERS)

    def _on_sample(self, _button) -> None:
        sigma = math.exp(self.log_std.value)
        self.action.value = float(np.clip(np.round(self.rng.normal(0.0, sigma), 2), -A_MAX, A_MAX))

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
