"""The lessons' sliders, proven in a real browser: JupyterLab and Voilà in headless Chromium.

For every lesson with sliders, JupyterLab runs all cells of the finished lesson (the source notebook in
solutions/, so no exercise stops Run All), then every slider is moved by one key press. Each move must
change the slider's readout and the pixels of the plot next to it, and no cell may show an error.
Screenshots (each widget before, and after every move) go to test-artifacts/browser/ for a person to check.

Sliders are discovered in the page, not listed here, so a new lesson's sliders are covered as soon as
the lesson exists. Without Chromium the tests skip with the reason, except under CI=true, where they fail.
"""
from __future__ import annotations

import json
import re
import shutil
import urllib.request

import nbformat
import pytest

import browser_helpers as browser
from conftest import REPO, SOLUTIONS, notebooks

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(240)]   # slow: drives JupyterLab in Chromium

ARTIFACTS = REPO / "test-artifacts" / "browser"
# Lessons planned with sliders (DESIGN.md); any other lesson whose code builds sliders joins them.
PLANNED = ("01-importance-sampling", "02-trpo", "03-clipped-surrogate")
SLIDER_CODE = re.compile(r"Slider\(|Explorer\(|interact\(")
# Sliders a lesson must show, by the label the learner reads.
EXPECTED_SLIDERS = {"03-clipped-surrogate": {"ratio r", "clip ε", "advantage A"}}


def lessons_with_sliders() -> list[str]:
    found = {nb.parent.name for nb in notebooks(SOLUTIONS)
             if any(cell.cell_type == "code" and SLIDER_CODE.search(cell.source)
                    for cell in nbformat.read(nb, as_version=4).cells)}
    return sorted(found | set(PLANNED))


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """For the whole module: JupyterLab serving copies of the lessons, Voilà serving lesson 03, one page."""
    browser.require_browser("browser tests")
    root, work = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-work")
    for name in lessons_with_sliders():
        if (SOLUTIONS / name).is_dir():
            browser.copy_lesson(SOLUTIONS / name / f"{name}.ipynb", root)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    voila_root = tmp_path_factory.mktemp("voila")
    notebook = browser.copy_lesson(SOLUTIONS / "03-clipped-surrogate" / "03-clipped-surrogate.ipynb", voila_root)
    # Voilà starts first and runs its notebook while JupyterLab's tests use the browser.
    with browser.voila_server(notebook, voila_root) as voila, browser.lab_server(root, work) as server, \
            browser.chromium_page() as page:
        yield server, page, voila


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().encode("ascii", "ignore").decode()).strip("-") or "slider"


def shutdown_kernels(server) -> None:
    """Free the memory of the previous lesson's kernel before the next one starts."""
    headers = {"Authorization": f"token {server.token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{server.url}/api/kernels", headers=headers)) as answer:
        kernels = json.load(answer)
    for kernel in kernels:
        request = urllib.request.Request(f"{server.url}/api/kernels/{kernel['id']}", method="DELETE",
                                         headers=headers)
        urllib.request.urlopen(request).close()


def move_every_slider(page, areas, artifacts) -> list[str]:
    """Move each slider once; return the problems (a readout or a plot that did not change)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    problems = []
    for area_index, area in enumerate(areas):
        area.screenshot(path=str(artifacts / f"{area_index}-0-before.png"))
        for slider_index, slider in enumerate(browser.sliders_in(area), start=1):
            move = browser.move_slider(page, area, slider)
            name = f"{area_index}-{slider_index}-after-{slug(move.label)}"
            area.screenshot(path=str(artifacts / f"{name}.png"))
            if move.readout_after == move.readout_before:
                problems.append(f"slider '{move.label}': its readout stayed at {move.readout_before}")
            if not move.plot_changed:
                problems.append(f"slider '{move.label}' ({move.readout_before} -> {move.readout_after}): "
                                "the plot's pixels did not change")
    return problems


@pytest.mark.parametrize("lesson", lessons_with_sliders())
def test_every_slider_redraws_its_plot_in_jupyterlab(lesson, session):
    if not (SOLUTIONS / lesson).is_dir():
        pytest.skip(f"lesson {lesson} is not written yet")
    server, page, _voila = session
    shutdown_kernels(server)
    lab = browser.LabNotebook(page, server, f"{lesson}/{lesson}.ipynb", workspace=slug(lesson))
    lab.wait_kernel_idle()
    lab.run_all()
    page.screenshot(path=str(ARTIFACTS / f"{lesson}-after-run-all.png"))
    errors = lab.error_outputs()
    assert not errors, f"{lesson}: cells show errors or warnings after Run All:\n" + "\n---\n".join(errors)

    areas = lab.slider_areas()
    assert areas, f"{lesson}: no slider is displayed after Run All"
    labels = {browser.slider_label(s) for area in areas for s in browser.sliders_in(area)}
    missing = EXPECTED_SLIDERS.get(lesson, set()) - labels
    assert not missing, f"{lesson}: sliders {sorted(missing)} are missing; found {sorted(labels)}"
    problems = move_every_slider(page, areas, ARTIFACTS / lesson)
    assert not problems, f"{lesson}:\n" + "\n".join(problems)
    assert not page.errors, f"{lesson}: the page raised JavaScript errors: {page.errors[:3]}"


def test_voila_shows_lesson_03_as_an_app_with_working_sliders(session):
    _server, page, voila = session
    page.goto(f"{voila.url}/?token={voila.token}", wait_until="domcontentloaded", timeout=90_000)
    area = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-slider")).first
    area.wait_for(timeout=90_000)
    labels = [browser.slider_label(slider) for slider in browser.sliders_in(area)]
    assert labels == ["ratio r", "clip ε", "advantage A"], f"Voilà shows the sliders {labels}"
    # A smoke test: JupyterLab already moved every slider; here one move proves the kernel answers.
    move = browser.move_slider(page, area, browser.sliders_in(area)[0])
    area.screenshot(path=str(ARTIFACTS / "voila-03-after-moving-r.png"))
    assert move.plot_changed and move.readout_after != move.readout_before, f"Voilà: {move}"
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, f"Voilà shows errors: {errors.all_inner_texts()[:2]}"


# --- without a browser: the redraw strategy the latency depends on ------------------------------------

def test_moving_r_redraws_only_the_markers_and_changes_the_picture(monkeypatch):
    """Moving r must not re-render the figure or the curves (the benchmark's latency relies on it)."""
    from ppo_course.widgets import ClipExplorer

    explorer = ClipExplorer(r=1.0, eps=0.2, adv=1.0)
    fig = explorer.figure.fig
    drawn, full_draws = [], []
    monkeypatch.setattr(fig, "draw_artist", lambda artist, real=fig.draw_artist: (drawn.append(artist), real(artist)))
    fig.canvas.mpl_connect("draw_event", lambda _event: full_draws.append(1))
    before = explorer.figure.widget.value

    explorer.r.value = 1.5
    markers = {id(p.point) for p in explorer.panels}
    assert {id(a) for a in drawn} == markers and not full_draws, (
        f"moving r drew {[type(a).__name__ for a in drawn]} (and {len(full_draws)} full draws): "
        "only the dots should move")
    assert explorer.figure.widget.value != before, "moving r must change the picture"
    assert "r = 1.50" in explorer.readout.value, "the readout must show the new r"

    drawn.clear()
    explorer.eps.value = 0.3
    assert not full_draws and {id(p.clipped) for p in explorer.panels} <= {id(a) for a in drawn}, \
        "changing ε must redraw the curves, and only the layers (no full draw)"


def test_a_learner_function_that_crashes_is_reported_not_raised():
    """A bug in the learner's clipped_surrogate must not break the sliders: the readout names it."""
    from ppo_course.widgets import ClipExplorer

    def buggy(ratio, adv, eps):
        # A common slip: Python's min on tensors ("Boolean value of Tensor ... is ambiguous").
        return min(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)

    explorer = ClipExplorer(learner_fn=buggy)
    explorer.eps.value = 0.3
    assert "your clipped_surrogate: raised RuntimeError" in explorer.readout.value, explorer.readout.value
    assert not any(panel.learner.get_visible() for panel in explorer.panels), "a failed curve must be hidden"
