"""A matplotlib figure that a widget redraws in place, and redraws only what changed.

A slider usually changes a few artists (a marker, a curve, a title). Rendering the whole figure again
(axes, ticks, labels, legend, layout) for each event is what makes naive slider plots lag. So the figure
is drawn in *layers*, matplotlib's blitting recipe:

- the static background (every artist not in a layer) is rendered once and kept as pixels;
- each layer is a group of artists that change together, ordered from the slowest-changing to the
  fastest (e.g. the curves, which ε and A change, then the marker, which r moves);
- ``redraw(layer=k)`` restores the pixels below layer k and draws only layers k, k+1, ...

The figure is rendered off-screen (Agg) and shown as a PNG in an ``ipywidgets.Image``. That works the
same in JupyterLab, Voilà, Colab and headless execution, and it measured faster in the browser than an
ipympl canvas (see benchmarks/bench_widget_latency.py): ipympl compresses every frame harder in the
kernel and re-encodes it in the page.
"""
from __future__ import annotations

import io
from typing import Optional, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

# zlib level 1: a few times faster than the default and barely larger for plots (flat colours).
PNG_COMPRESS_LEVEL = 1


class LiveFigure:
    """Wraps a figure: ``.widget`` to display, ``.redraw()`` after changing artists.

    ``layers`` (optional) lists groups of artists that change, slowest-changing first. After changing
    only artists of layer k and above, call ``redraw(layer=k)``; after changing anything else (limits,
    labels, the legend), call ``redraw()``.
    """

    def __init__(self, fig: plt.Figure, layers: Sequence[Sequence[Artist]] = ()):
        self.fig = fig
        # Off pyplot's list, so no backend shows it a second time; render it off-screen instead.
        plt.close(fig)
        FigureCanvasAgg(fig)
        self.layers = [list(group) for group in layers]
        for group in self.layers:
            for artist in group:
                artist.set_animated(True)  # left out of the full draw: drawn on top, layer by layer
        # _backgrounds[k]: the pixels with everything below layer k drawn, kept from the last full draw.
        self._backgrounds: list = []
        fig.canvas.mpl_connect("draw_event", self._on_full_draw)
        self.widget = widgets.Image(format="png")
        self.redraw()

    def redraw(self, layer: Optional[int] = None) -> None:
        """Show the figure's current state; ``layer=k``: only layers k and above changed."""
        if layer is None or layer >= len(self._backgrounds):
            self.fig.canvas.draw()  # fires draw_event, which draws the layers and keeps the backgrounds
        else:
            self.fig.canvas.restore_region(self._backgrounds[layer])
            self._draw_layers(layer)
        self._show()

    def _on_full_draw(self, _event) -> None:
        if self.fig.canvas.is_saving():
            return  # savefig draws the layers itself, at its own resolution: nothing to keep
        self._backgrounds = []
        self._draw_layers(0)

    def _draw_layers(self, first: int) -> None:
        """Draw layers ``first``, ``first + 1``, ...; keep the pixels below each one on the way."""
        canvas = self.fig.canvas
        del self._backgrounds[first:]
        for group in self.layers[first:]:
            self._backgrounds.append(canvas.copy_from_bbox(self.fig.bbox))
            for artist in group:
                self.fig.draw_artist(artist)

    def _show(self) -> None:
        pixels = np.asarray(self.fig.canvas.buffer_rgba())[..., :3]  # opaque figure: drop alpha
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="png",
                                                           compress_level=PNG_COMPRESS_LEVEL)
        self.widget.value = buffer.getvalue()
