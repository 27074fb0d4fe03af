"""Small display helpers for notebooks: tables the lessons print from running code."""
from __future__ import annotations

import html
from typing import Sequence

from IPython.display import HTML


def table(columns: Sequence[str], rows: Sequence[Sequence[object]], highlight: Sequence[bool] | None = None,
          caption: str = "", digits: int = 2) -> HTML:
    """An HTML table; rows where ``highlight`` is True are shaded (e.g. the clipped rows)."""
    def cell(value: object) -> str:
        text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
        return f"<td style='text-align:right;padding:2px 10px'>{html.escape(text)}</td>"

    head = "".join(f"<th style='text-align:right;padding:2px 10px'>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        shade = " style='background:#fff3e0'" if highlight is not None and highlight[i] else ""
        body.append(f"<tr{shade}>" + "".join(cell(v) for v in row) + "</tr>")
    cap = (f"<caption style='caption-side:top;text-align:left'><b>{html.escape(caption)}</b></caption>"
           if caption else "")
    return HTML(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
