"""Interactive figures for the lessons. Each one redraws in place: sliders move artists, never rebuild figures."""
from .live_figure import LiveFigure
from .clip_explorer import ClipExplorer

__all__ = ["LiveFigure", "ClipExplorer"]
