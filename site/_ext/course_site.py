"""Sphinx extension of the course's website: what a lesson page adds to MyST-NB's rendering.

- Under each lesson's title: "Open in Colab", "Launch on Binder" and "Download the student notebook",
  pointing at the lesson's notebook in ``lessons/`` (addresses from ``ppo_course.links``).
- Each widget becomes a still of its first frame (its image, readout and slider positions, taken from the
  widget state the execution saved) with a line saying where to run it live. MyST-NB would otherwise
  embed the live widget, which needs a kernel and scripts from a CDN: on a static page it shows nothing.
- The student notebooks are copied next to their pages, for the download button.
- The lessons execute in parallel (-j): MyST-NB's execution cache is trimmed in a way that is safe for that.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import sys
from pathlib import Path

from docutils import nodes

SITE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SITE))
import pages  # noqa: E402  (site/pages.py: which lessons there are, and where their notebooks live)

from ppo_course import links  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_VIEW_SCRIPT = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">(.*?)</script>', re.DOTALL)


def _lesson_of(docname: str) -> pages.Lesson | None:
    for lesson in pages.lessons():
        if docname == f"lessons/{lesson.name}/{lesson.student.stem}":
            return lesson
    return None


def launch_buttons(lesson: pages.Lesson) -> str:
    """The button bar under a lesson's title."""
    path = lesson.repo_path
    return (
        '<div class="lesson-launch" role="group" aria-label="Run this lesson">'
        f'<a class="launch-button" href="{html.escape(links.colab_url(path))}">Open in Colab</a>'
        f'<a class="launch-button" href="{html.escape(links.binder_url(path))}">Launch on Binder</a>'
        f'<a class="launch-button" href="{html.escape(lesson.student.name)}" download>'
        'Download the notebook (student version)</a>'
        "</div>")


def live_note(lesson: pages.Lesson | None, has_twin: bool, controls: str = "sliders") -> str:
    """The line under a widget's still: where its controls move."""
    if lesson is None:
        where = "in the lesson's notebook"
    else:
        where = (f'in <a href="{html.escape(links.colab_url(lesson.repo_path))}">Colab</a>, on '
                 f'<a href="{html.escape(links.binder_url(lesson.repo_path))}">Binder</a>, or on your machine '
                 "with <code>./course.sh lab</code>")
    twin = " The clip explorer below runs right here, without a kernel." if has_twin else ""
    return (f'<p class="widget-still-note">A still of the widget\'s first frame: its {controls} work when the '
            f"notebook runs, {where}.{twin}</p>")


# --- widget stills --------------------------------------------------------------------------------------------

class WidgetStill:
    """Renders a widget, from the widget state saved with the executed notebook, as static HTML."""

    def __init__(self, state: dict):
        self.models = state.get("state", {})
        self.controls = ""  # what a reader would move in the last widget rendered: "sliders", "controls" or ""

    def _model(self, ref) -> dict | None:
        model_id = ref[len("IPY_MODEL_"):] if isinstance(ref, str) and ref.startswith("IPY_MODEL_") else ref
        return self.models.get(model_id)

    def render(self, model_id: str) -> str:
        model = self._model(model_id)
        self.controls = ""
        return self._render(model) if model else ""

    def _render(self, model: dict) -> str:
        name, state = model.get("model_name", ""), model.get("state", {})
        description = html.escape(state.get("description") or "")
        if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"):
            direction = "row" if name == "HBoxModel" else "column"
            children = "".join(self._render(child) for ref in state.get("children", [])
                               if (child := self._model(ref)))
            return f'<div class="widget-still-box widget-still-{direction}">{children}</div>'
        if name == "ImageModel":
            data = next((buffer["data"] for buffer in model.get("buffers", []) if buffer.get("path") == ["value"]),
                        None)
            if not data:
                return ""
            kind = html.escape(state.get("format") or "png")
            return f'<img class="widget-still-image" alt="{description or "the widget figure"}" ' \
                   f'src="data:image/{kind};base64,{data}">'
        if name == "MPLCanvasModel":
            url = state.get("_data_url")
            return f'<img class="widget-still-image" alt="the widget figure" src="{html.escape(url)}">' if url else ""
        if name in ("HTMLModel", "HTMLMathModel"):
            return f'<div class="widget-still-html">{description} {state.get("value", "")}</div>'
        if name == "LabelModel":
            return f'<div class="widget-still-html">{html.escape(str(state.get("value", "")))}</div>'
        if name.endswith("SliderModel"):
            self.controls = "sliders"
            value = state.get("value")
            shown = format(value, state.get("readout_format", "").lstrip("%")) if isinstance(value, float) else value
            return (f'<div class="widget-still-slider"><span class="widget-still-label">{description}</span>'
                    f'<input type="range" disabled aria-label="{description}" min="{state.get("min", 0)}" '
                    f'max="{state.get("max", 1)}" step="{state.get("step", "any")}" value="{value}">'
                    f'<span class="widget-still-value">{html.escape(str(shown))}</span></div>')
        if name in ("FloatProgressModel", "IntProgressModel"):
            return (f'<div class="widget-still-slider"><span class="widget-still-label">{description}</span>'
                    f'<progress max="{state.get("max", 100)}" value="{state.get("value", 0)}"></progress></div>')
        if name in ("DropdownModel", "ToggleButtonsModel", "RadioButtonsModel", "SelectModel"):
            self.controls = self.controls or "controls"
            labels, index = state.get("_options_labels", []), state.get("index")
            chosen = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else ""
            return (f'<div class="widget-still-slider"><span class="widget-still-label">{description}</span>'
                    f'<span class="widget-still-value">{html.escape(str(chosen))}</span></div>')
        if name == "OutputModel":
            return "".join(self._output(output) for output in state.get("outputs", []))
        return ""

    @staticmethod
    def _output(output: dict) -> str:
        data = output.get("data", {})
        if "image/png" in data:
            return f'<img class="widget-still-image" alt="output" src="data:image/png;base64,{data["image/png"]}">'
        if "text/html" in data:
            return "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
        text = output.get("text") or data.get("text/plain") or ""
        text = "".join(text) if isinstance(text, list) else text
        return f"<pre>{html.escape(text)}</pre>" if text else ""


def _widget_state(env, docname: str) -> dict:
    """The saved widget state of ``docname``, taken out of what MyST-NB would embed in the page."""
    js_files = getattr(env, "nb_metadata", {}).get(docname, {}).get("js_files", {})
    for key in [key for key in js_files if key.startswith("ipywidgets")]:
        uri, kwargs = js_files.pop(key)
        if key == "ipywidgets_state" and kwargs.get("body"):
            return json.loads(kwargs["body"])
    return {}


def on_doctree_read(app, doctree) -> None:
    docname = app.env.docname
    lesson = _lesson_of(docname)
    if lesson is not None:
        title = next(iter(doctree.findall(nodes.title)), None)
        if title is not None:
            title.parent.insert(title.parent.index(title) + 1, nodes.raw("", launch_buttons(lesson), format="html"))
    still = WidgetStill(_widget_state(app.env, docname))
    # A lesson whose widget has a kernel-free twin (site/pages.py puts it right after the widget's cell).
    twin = lesson is not None and any(code in lesson.solution.read_text() for code in pages.KERNEL_FREE_TWINS)
    bundles = [node for node in doctree.findall(nodes.container) if node.get("nb_element") == "mime_bundle"]
    for bundle in bundles:
        views = [child for child in bundle.children if child.get("mime_type") == WIDGET_VIEW]
        if not views:
            continue
        has_image = any(child.get("mime_type", "").startswith("image/") for child in bundle.children)
        for view in views:
            bundle.remove(view)
            if has_image:
                continue  # an ipympl figure: its PNG is shown
            match = WIDGET_VIEW_SCRIPT.search(view.astext())
            model_id = json.loads(match.group(1).replace("<\\/", "</"))["model_id"] if match else ""
            body = still.render(model_id)
            if not body:
                continue  # nothing to show but the text/plain repr
            container = nodes.container(mime_type="text/html")
            # A progress bar is shown as it ended; only a widget with controls needs a word on where it runs.
            note = live_note(lesson, twin, still.controls) if still.controls else ""
            container += nodes.raw("", f'<div class="widget-still">{body}{note}</div>', format="html")
            bundle.insert(0, container)


def on_build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for site_path, repo_path in pages.student_notebooks().items():
        target = outdir / site_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pages.REPO / repo_path, target)


def truncate_caches_in_one_query(cache) -> None:
    """Delete the cached executions beyond the cache's limit, oldest first, found in one query.

    jupyter-cache 1.0's own ``truncate_caches`` reads the records to keep, then the records to delete, in two
    queries. With the lessons executing in parallel (-j), a record that another process adds between the two
    is deleted before its notebook is written ("KeyError: Notebook file does not exist for cache record PK: 4"
    ended a clean build in a test run), or just after, losing that lesson's execution.
    """
    from jupyter_cache.cache.db import NbCacheRecord, session_context
    from sqlalchemy import desc

    with session_context(cache.db) as session:
        beyond_limit = [pk for pk, in session.query(NbCacheRecord.pk).order_by(desc("accessed"))
                        .offset(cache.get_cache_limit()).all()]
    for pk in beyond_limit:
        cache.remove_cache(pk)


def setup(app):
    from jupyter_cache.cache.main import JupyterCacheBase

    # Set before Sphinx forks its parallel readers, so each of them truncates the cache this way.
    JupyterCacheBase.truncate_caches = truncate_caches_in_one_query
    # sphinx-mathjax-offline only sets MathJax's path and copies its files when the build ends, but does not
    # declare itself safe for Sphinx's parallel reading (-j), which it is: the lessons then execute in parallel.
    offline = app.extensions.get("sphinx-mathjax-offline")
    if offline is not None:
        offline.parallel_read_safe = offline.parallel_write_safe = True
    app.connect("doctree-read", on_doctree_read)
    app.connect("build-finished", on_build_finished)
    # A change to this extension or to site/pages.py changes what every page is made of: Sphinx then reads
    # every page again (the lessons' executions still come from the cache).
    own_code = b"".join(path.read_bytes() for path in (Path(__file__), SITE / "pages.py"))
    return {"version": "1", "env_version": int(hashlib.sha256(own_code).hexdigest()[:8], 16),
            "parallel_read_safe": True, "parallel_write_safe": True}
