"""Lesson 03's slider figure: L^CLIP against r for a positive and a negative advantage, side by side."""
from __future__ import annotations

import html
from typing import Callable, Optional

import ipywidgets as widgets
import numpy as np
import torch

from ..clipping import clipped_surrogate
from ..plotting import COLORS, new_figure
from .live_figure import LiveFigure

R_MAX = 2.5
A_MAX = 2.0
R_GRID = np.linspace(0.0, R_MAX, 501)
CURVES, MARKERS = 0, 1  # the figure's redraw layers (see LiveFigure)

SurrogateFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def surrogate_curve(fn: SurrogateFn, r: np.ndarray, adv: float, eps: float) -> np.ndarray:
    """Evaluate ``fn(ratio, adv, eps)`` on a grid of ratios, as numpy (for plotting)."""
    ratio = torch.as_tensor(r, dtype=torch.float64)
    with torch.no_grad():
        value = fn(ratio, torch.full_like(ratio, adv), eps)
    return np.asarray(value, dtype=float)


def flat_interval(adv: float, eps: float) -> tuple[float, float]:
    """Where d L^CLIP / d r = 0 because of the clip: r > 1+eps for A > 0, r < 1-eps for A < 0."""
    if adv > 0:
        return 1.0 + eps, R_MAX
    if adv < 0:
        return 0.0, 1.0 - eps
    return 0.0, 0.0


class _Panel:
    """One axes: the curves for one advantage sign, plus the marker at the current r."""

    def __init__(self, ax, sign: int):
        self.ax, self.sign = ax, sign
        color = COLORS["positive"] if sign > 0 else COLORS["negative"]
        self.clip_span = ax.axvspan(0.8, 1.2, color=COLORS["clip_region"], alpha=0.15, lw=0,
                                    label="clip interval [1-ε, 1+ε]")
        self.flat_span = ax.axvspan(0, 0, facecolor="none", edgecolor=COLORS["flat"], hatch="//",
                                    lw=0, alpha=0.6, label="∂L/∂r = 0 (clip active)")
        (self.unclipped,) = ax.plot([], [], ls="--", color=COLORS["unclipped"], label="r·A (unclipped)")
        (self.clipped,) = ax.plot([], [], lw=2.5, color=color, label="$L^{CLIP}$")
        (self.learner,) = ax.plot([], [], ls=":", lw=2, color=COLORS["learner"], label="your clipped_surrogate")
        self.learner.set_visible(False)
        (self.point,) = ax.plot([], [], "o", ms=9, color=color, zorder=5)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlim(0, R_MAX)
        ax.set_ylim(-A_MAX * R_MAX * 1.05, A_MAX * R_MAX * 1.05)
        ax.set_xlabel("probability ratio r = π_θ(a|s) / π_old(a|s)")
        ax.set_ylabel("objective")

    def shape_artists(self) -> list:
        """What ε and A change: the shaded intervals, the curves and the title."""
        return [self.clip_span, self.flat_span, self.unclipped, self.clipped, self.learner, self.ax.title]

    def marker_artists(self) -> list:
        """What r moves: the dot on the curve."""
        return [self.point]

    def update_curves(self, adv: float, eps: float, learner_fn: Optional[SurrogateFn]) -> Optional[str]:
        """Redraw the curves for ``adv`` and ``eps``; return what went wrong with ``learner_fn``, if anything."""
        self.adv, self.eps = adv, eps
        self.clip_span.set_x(1 - eps)
        self.clip_span.set_width(2 * eps)
        lo, hi = flat_interval(adv, eps)
        self.flat_span.set_x(lo)
        self.flat_span.set_width(hi - lo)
        self.unclipped.set_data(R_GRID, R_GRID * adv)
        self.clipped.set_data(R_GRID, surrogate_curve(clipped_surrogate, R_GRID, adv, eps))
        self.ax.set_title(f"A = {adv:+.2f}  (ε = {eps:.2f})")
        self.learner.set_visible(False)
        if learner_fn is None:
            return None
        try:
            self.learner.set_data(R_GRID, surrogate_curve(learner_fn, R_GRID, adv, eps))
        except NotImplementedError:
            return "not written yet"
        except Exception as error:  # noqa: BLE001 - a learner's bug is shown, not raised into the slider
            return f"raised {type(error).__name__}: {error}"
        self.learner.set_visible(True)
        return None

    def update_point(self, r: float) -> tuple[float, float]:
        """Move the dot to ``r``; return L^CLIP there and its slope ∂L/∂r (0 where the clip is active)."""
        value = float(surrogate_curve(clipped_surrogate, np.array([r]), self.adv, self.eps)[0])
        self.point.set_data([r], [value])
        lo, hi = flat_interval(self.adv, self.eps)
        flat = lo < r < hi if self.adv > 0 else lo <= r < hi
        return value, 0.0 if flat else self.adv


def readout_html(r: float, rows: list[tuple[float, float, float]], learner_problem: Optional[str] = None) -> str:
    """The numbers at the current r, one cell per panel: (A, L^CLIP, ∂L/∂r) -> a small HTML table.

    ``learner_problem`` (e.g. an exception from the learner's function) is shown on a second line."""
    cells = []
    for adv, value, slope in rows:
        color = COLORS["positive"] if adv >= 0 else COLORS["negative"]
        cells.append(f"<td style='padding:0 14px 0 0'><b style='color:{color}'>A = {adv:+.2f}</b>"
                     f"&nbsp; L = {value:+.3f} &nbsp; ∂L/∂r = {slope:+.2f}</td>")
    note = ""
    if learner_problem:
        note = (f"<tr><td colspan='3' style='color:{COLORS['learner']}'>your clipped_surrogate: "
                f"{html.escape(learner_problem)}</td></tr>")
    return (f"<table style='font-family:monospace'><tr><td style='padding:0 14px 0 0'>r = {r:.2f}</td>"
            f"{''.join(cells)}</tr>{note}</table>")


class ClipExplorer:
    """Sliders for r, ε and A that redraw L^CLIP vs r for +|A| (left) and -|A| (right).

    ``learner_fn`` (optional) is the learner's own ``clipped_surrogate``: it is drawn dotted over the
    reference so any disagreement is visible. Display the explorer as the last expression of a cell.
    """

    def __init__(self, learner_fn: Optional[SurrogateFn] = None, r: float = 1.0, eps: float = 0.2,
                 adv: float = 1.0):
        self.learner_fn = learner_fn
        slider = dict(continuous_update=True, readout_format=".2f", style={"description_width": "initial"},
                      layout=widgets.Layout(width="420px"))
        self.r = widgets.FloatSlider(value=r, min=0.0, max=R_MAX, step=0.05, description="ratio r", **slider)
        self.eps = widgets.FloatSlider(value=eps, min=0.05, max=0.5, step=0.05, description="clip ε", **slider)
        self.adv = widgets.FloatSlider(value=adv, min=-A_MAX, max=A_MAX, step=0.1, description="advantage A",
                                       **slider)
        # The numbers at r live in an HTML line, not in the figure: text is the costliest thing to
        # render in matplotlib, and the browser draws it for free.
        self.readout = widgets.HTML()
        fig, axes = new_figure(ncols=2, width=5.0, height=3.8)
        self.panels = [_Panel(axes[0], +1), _Panel(axes[1], -1)]
        self._update_curves()
        self._update_point()
        # The learner's curve is in the legend only when there is one to show.
        axes[0].legend(handles=[a for a in axes[0].get_lines() + axes[0].patches
                                if a.get_label()[:1] != "_" and (a is not self.panels[0].learner or learner_fn)],
                       loc="lower right", fontsize=8)
        # Two layers over a static background: the curves (ε and A change them), then the markers
        # (r moves them). A move of r redraws only the two dots.
        self.figure = LiveFigure(fig, layers=[[a for p in self.panels for a in p.shape_artists()],
                                              [a for p in self.panels for a in p.marker_artists()]])
        self.figure.redraw()
        # r only moves the markers; ε and A change the curves.
        self.r.observe(self._on_r, names="value")
        self.eps.observe(self._on_shape, names="value")
        self.adv.observe(self._on_shape, names="value")
        self.widget = widgets.VBox([widgets.VBox([self.r, self.eps, self.adv]), self.readout, self.figure.widget])

    def _update_curves(self) -> None:
        size = abs(self.adv.value)
        problems = [panel.update_curves(panel.sign * size, self.eps.value, self.learner_fn) for panel in self.panels]
        self.learner_problem = problems[0] or problems[1]
        active = 0 if self.adv.value >= 0 else 1
        for i, panel in enumerate(self.panels):
            panel.ax.title.set_fontweight("bold" if i == active else "normal")

    def _update_point(self) -> None:
        rows = [(panel.adv, *panel.update_point(self.r.value)) for panel in self.panels]
        self.readout.value = readout_html(self.r.value, rows, self.learner_problem)

    def _on_r(self, _change) -> None:
        self._update_point()
        self.figure.redraw(layer=MARKERS)

    def _on_shape(self, _change) -> None:
        self._update_curves()
        self._update_point()
        self.figure.redraw(layer=CURVES)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
