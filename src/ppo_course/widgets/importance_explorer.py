"""Lesson 01's slider figure: importance sampling gets noisier as the sampling distribution q drifts from p.

p = N(0, 1) plays the new policy pi_theta, q = N(shift, 1) the old policy that collected the data, and
the quantity estimated is E_p[x^2] = 1. The slider moves q; the densities, the histogram of repeated
IS estimates and the marker on the variance curve move with it (artists are updated, never rebuilt).
"""
from __future__ import annotations

from typing import Optional

import ipywidgets as widgets
import numpy as np
import torch

from .. import importance
from ..plotting import COLORS, new_figure
from .live_figure import LiveFigure

SHIFT_MAX = 2.0
X_GRID = np.linspace(-4.0, 6.0, 400)
BINS = np.linspace(0.0, 4.0, 41)          # estimates above 4 are counted in the last bin
SHIFT_GRID = np.round(np.arange(0.0, SHIFT_MAX + 1e-9, 0.1), 2)
NEW_POLICY, OLD_POLICY = COLORS["ours"], COLORS["baseline"]


def normal_pdf(x: np.ndarray, mean: float) -> np.ndarray:
    return np.exp(-0.5 * (x - mean) ** 2) / np.sqrt(2 * np.pi)


class ImportanceExplorer:
    """A slider for the shift of q that redraws q, the distribution of IS estimates, and their variance.

    ``estimator`` is the learner's ``is_estimate(f_x, p_x, q_x)``; until it is written (it raises
    NotImplementedError) the reference estimator is used and the title says so.
    """

    def __init__(self, estimator: Optional[importance.Estimator] = None, shift: float = 0.5,
                 n_samples: int = 100, n_trials: int = 2000, seed: int = 0):
        self.estimator, self.n_samples, self.n_trials, self.seed = estimator, n_samples, n_trials, seed
        self.shift = widgets.FloatSlider(value=shift, min=0.0, max=SHIFT_MAX, step=0.1, readout_format=".1f",
                                         description="shift of q (mean of π_old)", continuous_update=True,
                                         style={"description_width": "initial"}, layout=widgets.Layout(width="460px"))
        fig, (self.ax_density, self.ax_hist, self.ax_var) = new_figure(ncols=3, width=4.3, height=3.5)
        self._draw_static()
        # One layer: everything the slider moves. Axes, curves and labels stay cached as pixels.
        moving = [self.q_line, *self.bars, self.median_line, self.var_marker, self.readout]
        self.figure = LiveFigure(fig, layers=[moving])
        self.update()
        self.shift.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([self.shift, self.figure.widget])

    def _draw_static(self) -> None:
        ax = self.ax_density
        ax.plot(X_GRID, normal_pdf(X_GRID, 0.0), color=NEW_POLICY, lw=2, label="p = π_θ (target)")
        (self.q_line,) = ax.plot([], [], color=OLD_POLICY, lw=2, ls="--", label="q = π_old (sampled)")
        ax.set(xlabel="x (an action)", ylabel="density", title="Where the samples come from", ylim=(0, 0.5))
        ax.legend(loc="upper right", fontsize=8)

        ax = self.ax_hist
        counts = np.zeros(len(BINS) - 1)
        self.bars = ax.bar(BINS[:-1], counts, width=np.diff(BINS), align="edge", color=NEW_POLICY, alpha=0.6,
                           label="IS estimates")
        ax.axvline(importance.TRUE_VALUE, color="black", lw=1.5, label="true E_p[x²] = 1")
        self.median_line = ax.axvline(1.0, color=COLORS["flat"], ls=":", lw=2, label="median estimate")
        self.readout = ax.text(0.97, 0.97, "", transform=ax.transAxes, ha="right", va="top", multialignment="left",
                               family="monospace", fontsize=8, bbox=dict(boxstyle="round", fc="white", alpha=0.85))
        ax.set(xlabel=f"estimate of E_p[x²] (last bin: ≥ {BINS[-1]:.0f})", ylabel="fraction of batches",
               xlim=(BINS[0], BINS[-1]), title=f"{self.n_trials} batches of {self.n_samples} samples each")
        ax.legend(loc="center right", fontsize=8)

        ax = self.ax_var
        fine = np.linspace(0.0, SHIFT_MAX, 200)
        ax.semilogy(fine, [importance.gaussian_is_variance(s, self.n_samples) for s in fine], color="black",
                    label="exact variance")
        trials = [importance.gaussian_is_trials(s, self.n_samples, self.n_trials, self.seed) for s in SHIFT_GRID]
        measured = [float(t.var()) for t in trials]
        # A fixed y-range (the tallest histogram over the slider's range): a redraw never touches the axes.
        self.ax_hist.set_ylim(0, 1.1 * max(self.histogram(t.numpy()).max() for t in trials))
        ax.semilogy(SHIFT_GRID, measured, "o", ms=4, color=NEW_POLICY, label=f"measured ({self.n_trials} batches)")
        (self.var_marker,) = ax.plot([], [], "o", ms=11, mfc="none", mec=COLORS["flat"], mew=2, label="current shift")
        ax.set(xlabel="shift of q from p", ylabel=f"variance of the estimate (n = {self.n_samples})",
               title="Variance grows like exp(shift²)")
        ax.legend(loc="upper left", fontsize=8)

    def estimates(self, shift: float) -> tuple[torch.Tensor, str]:
        """The repeated estimates at ``shift``, and a note on whose estimator produced them."""
        if self.estimator is not None:
            try:
                trials = importance.gaussian_is_trials(shift, self.n_samples, self.n_trials, self.seed, self.estimator)
                return torch.as_tensor(trials).reshape(-1), "your is_estimate"
            except NotImplementedError:
                pass
            except Exception as error:  # a half-written answer must not break the figure: say so, show the reference
                note = f"your is_estimate raised {type(error).__name__}:\nshowing the reference"
                return importance.gaussian_is_trials(shift, self.n_samples, self.n_trials, self.seed), note
        trials = importance.gaussian_is_trials(shift, self.n_samples, self.n_trials, self.seed)
        return trials, "the reference is_estimate"

    def update(self) -> None:
        shift = float(self.shift.value)
        self.q_line.set_data(X_GRID, normal_pdf(X_GRID, shift))
        estimates, source = self.estimates(shift)
        values = estimates.detach().double().numpy()
        for bar, fraction in zip(self.bars, self.histogram(values)):
            bar.set_height(fraction)
        median = float(np.median(values))
        self.median_line.set_xdata([median, median])
        self.var_marker.set_data([shift], [importance.gaussian_is_variance(shift, self.n_samples)])
        self.readout.set_text(
            f"mean       {values.mean():6.3f}\nmedian     {median:6.3f}\nstd        {values.std():6.3f}\n"
            f"exact std  {np.sqrt(importance.gaussian_is_variance(shift, self.n_samples)):6.3f}\n"
            f"ESS ≈ {self.n_samples * np.exp(-shift ** 2):.0f} of {self.n_samples}\n"
            f"({source})")
        self.figure.redraw(layer=0)

    @staticmethod
    def histogram(values: np.ndarray) -> np.ndarray:
        """Fraction of the estimates in each bin; those beyond the last edge are counted in the last bin."""
        counts, _ = np.histogram(np.clip(values, BINS[0], BINS[-1] - 1e-9), bins=BINS)
        return counts / len(values)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
