"""Interactive figures for the lessons. Each one redraws in place: sliders move artists, never rebuild figures."""
from .clip_explorer import ClipExplorer
from .gaussian_explorer import GaussianExplorer
from .live_figure import LiveFigure

__all__ = ["LiveFigure", "ClipExplorer", "GaussianExplorer"]
