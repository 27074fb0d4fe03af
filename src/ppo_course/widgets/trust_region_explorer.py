"""Lesson 02's slider figure: the trust-region radius delta against the step TRPO takes and the KL it gets.

Along the natural direction s (from conjugate gradient) and along the plain gradient g, the left panel
shows the measured mean KL as a function of the step's length, and the right panel the surrogate gain
as a function of that KL. Moving delta moves the KL bound, TRPO's full step, the step the line search
accepts and a plain gradient step of the same length; the curves are computed once.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from .. import trust_region as tr
from ..plotting import COLORS, new_figure
from .live_figure import LiveFigure

DELTA_RANGE = (1e-3, 0.1)
KL_AXIS_MAX = 1.6 * DELTA_RANGE[1]
NATURAL, PLAIN, BOUND = COLORS["ours"], COLORS["baseline"], COLORS["clip_region"]
STEPS = ("full", "accepted", "plain")


class TrustRegionExplorer:
    """A log slider for delta over one TRPO problem (``trust_region.TRPOProblem``)."""

    def __init__(self, problem: tr.TRPOProblem, delta: float = tr.DELTA, cg_iters: int = 10, n_points: int = 60):
        self.problem = problem
        g = problem.gradient()
        self.s = tr.conjugate_gradient(problem.fvp, g, iters=cg_iters)
        self.Fs = problem.fvp(self.s)
        self.plain_direction = g / g.norm()
        longest = self.full_step_length(DELTA_RANGE[1]) * 1.25
        self.lengths = np.linspace(0.0, longest, n_points)
        directions = {"natural": self.s / self.s.norm(), "plain": self.plain_direction}
        # (gain, kl) at each length, along each direction: the only expensive part, done once.
        self.curves = {name: np.array([problem.evaluate(float(length) * unit) for length in self.lengths])
                       for name, unit in directions.items()}
        self.delta = widgets.FloatLogSlider(value=delta, base=10, min=np.log10(DELTA_RANGE[0]),
                                            max=np.log10(DELTA_RANGE[1]), step=0.05, readout_format=".4f",
                                            description="trust region δ", continuous_update=True,
                                            style={"description_width": "initial"},
                                            layout=widgets.Layout(width="460px"))
        self.readout = widgets.HTML()
        fig, (self.ax_kl, self.ax_gain) = new_figure(ncols=2, width=5.2, height=3.8)
        self._draw_static(longest)
        # One layer: the δ lines and the markers. The curves, computed once, stay cached as pixels.
        self.figure = LiveFigure(fig, layers=[[*self.bounds, *self.marks.values()]])
        self.update()
        self.delta.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([self.delta, self.readout, self.figure.widget])

    def full_step_length(self, delta: float) -> float:
        """Length of beta * s, the step the quadratic model says reaches KL = delta."""
        return float(tr.trpo_step_size(self.s, self.Fs, delta) * self.s.norm())

    def _draw_static(self, longest: float) -> None:
        ax = self.ax_kl
        unit_curvature = float(self.s @ self.Fs) / float(self.s @ self.s)
        ax.plot(self.lengths, self.curves["natural"][:, 1], color=NATURAL, lw=2, label="natural direction s")
        ax.plot(self.lengths, self.curves["plain"][:, 1], color=PLAIN, lw=2, label="plain gradient g")
        ax.plot(self.lengths, 0.5 * self.lengths ** 2 * unit_curvature, color=NATURAL, ls="--", lw=1,
                label="quadratic model along s")
        ax.set(xlabel="step length ‖θ − θ_old‖", ylabel="mean KL(π_old ‖ π_θ)", xlim=(0, longest),
               ylim=(0, KL_AXIS_MAX), title="Distance from the old policy")
        ax = self.ax_gain
        for name, color in (("natural", NATURAL), ("plain", PLAIN)):
            ax.plot(self.curves[name][:, 1], self.curves[name][:, 0], color=color, lw=2)
        ax.set(xlabel="mean KL(π_old ‖ π_θ)", ylabel="surrogate gain L(θ) − L(θ_old)", xlim=(0, KL_AXIS_MAX),
               title="Gain for a given change of the policy")
        self.bounds = [self.ax_kl.axhline(tr.DELTA, color=BOUND, ls=":", lw=2, label="δ"),
                       self.ax_gain.axvline(tr.DELTA, color=BOUND, ls=":", lw=2, label="δ")]
        self.marks = {}
        for ax in (self.ax_kl, self.ax_gain):
            self.marks[ax, "full"] = ax.plot([], [], "o", ms=11, mfc="none", mec=NATURAL, mew=2,
                                             label="full step βs")[0]
            self.marks[ax, "accepted"] = ax.plot([], [], "o", ms=7, color=NATURAL,
                                                 label="accepted by the line search")[0]
            self.marks[ax, "plain"] = ax.plot([], [], "s", ms=8, color=PLAIN, label="plain step, same length")[0]
        self.ax_kl.legend(loc="upper left", fontsize=7)

    def step_for(self, delta: float) -> dict:
        """TRPO's full and accepted steps for ``delta``, and a plain gradient step as long as the full step."""
        beta = tr.trpo_step_size(self.s, self.Fs, delta)
        full = beta * self.s
        accepted = tr.backtracking_line_search(self.problem.evaluate, full, delta)
        return {"beta": float(beta), "full": full, "accepted": accepted, "plain": self.plain_direction * full.norm()}

    def update(self) -> None:
        delta = float(self.delta.value)
        steps = self.step_for(delta)
        self.bounds[0].set_ydata([delta, delta])
        self.bounds[1].set_xdata([delta, delta])
        # (length, gain, kl) of each marked step.
        results = {name: (float(steps[name].norm()), *self.problem.evaluate(steps[name])) for name in STEPS}
        for name, (length, gain, kl) in results.items():
            self.marks[self.ax_kl, name].set_data([length], [kl])
            self.marks[self.ax_gain, name].set_data([kl], [gain])
        self.readout.value = self.describe(delta, steps["beta"], results)
        self.figure.redraw(layer=0)

    @staticmethod
    def describe(delta: float, beta: float, results: dict) -> str:
        full_length, accepted_length = results["full"][0], results["accepted"][0]
        if accepted_length == 0:
            search = "no step accepted: the update is skipped"
        else:
            search = f"accepted {accepted_length / full_length:.3g} of the full step"
        rows = [f"δ = {delta:.4f}   β = √(2δ / sᵀFs) = {beta:.3f}   line search: {search}"]
        for label, name in (("TRPO step ", "accepted"), ("plain step", "plain")):
            length, gain, kl = results[name]
            beyond = "   (beyond the plotted KL range)" if kl > KL_AXIS_MAX else ""
            rows.append(f"{label}: length {length:.3f}   mean KL {kl:.4f} ({kl / delta:4.1f} × δ)"
                        f"   gain {gain:+.4f}{beyond}")
        return "<pre style='margin:0;font-size:12px'>" + html.escape("\n".join(rows)) + "</pre>"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
