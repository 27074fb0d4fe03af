"""A matplotlib figure that a widget can redraw in place, whatever the notebook's backend.

With ipympl (``%matplotlib widget``, the course default) the figure's canvas is itself a widget and a
redraw is ``draw_idle()``: only the pixels are sent. With any other backend (inline, Voilà without
ipympl, nbclient in the tests) the figure is re-rendered into an Output widget, which still works,
only slower.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt


def ipympl_active() -> bool:
    """True when the notebook uses ipympl, so the figure canvas is a live widget."""
    return "ipympl" in matplotlib.get_backend().lower() or "widget" in matplotlib.get_backend().lower()


class LiveFigure:
    """Wraps a figure: ``.widget`` to display, ``.redraw()`` after changing artists."""

    def __init__(self, fig: plt.Figure):
        self.fig = fig
        self.interactive = ipympl_active() and isinstance(fig.canvas, widgets.DOMWidget)
        if self.interactive:
            # A clean canvas: no toolbar or header, and no resizing surprises in Voilà/Colab.
            fig.canvas.toolbar_visible = False
            fig.canvas.header_visible = False
            fig.canvas.footer_visible = False
            fig.canvas.resizable = False
            self.widget = fig.canvas
        else:
            plt.close(fig)  # the inline backend would otherwise show it a second time
            self.widget = widgets.Image(format="png")
            self.redraw()

    def redraw(self) -> None:
        if self.interactive:
            self.fig.canvas.draw_idle()
        else:
            buffer = io.BytesIO()
            self.fig.savefig(buffer, format="png", dpi=self.fig.dpi)
            self.widget.value = buffer.getvalue()
