"""The course's website (``./course.sh site``), built once per session in fast mode and read in Chromium.

What a self-learner arriving from a search engine relies on: every page loads with no console error and
asks nothing of any other site; every image decodes; every internal link resolves; each lesson has Colab,
Binder and student-notebook buttons of the right form (never fetched); the solutions fold and unfold; no
nbgrader marker or hidden test reaches any file of the site; and lesson 03's kernel-free clip explorer
computes what ``ppo_course.clipping.clipped_surrogate`` computes, and keeps up with its sliders (the
latency is printed and written to test-artifacts/site/, never asserted beyond a sanity bound).

Without Chromium, playwright or the [site] extra the browser tests skip with the reason, except under
CI=true, where they fail.
"""
from __future__ import annotations

import functools
import html
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import types
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import pytest
import torch

from ppo_course import links
from ppo_course.clipping import clip_is_active, clipped_surrogate
from ppo_course.plotting import COLORS

import browser_helpers as browser
from conftest import REPO

sys.path.insert(0, str(REPO / "site"))
import explorer_latency  # noqa: E402  (site/explorer_latency.py: the measurement, shared with benchmarks/)
import pages  # noqa: E402  (site/pages.py: what the site stages)

ARTIFACTS = REPO / "test-artifacts" / "site"
slow_browser = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(900)]
# Build-side trace of nbgrader that must never reach the site: its metadata as JSON.
NBGRADER_METADATA = re.compile(r"""["'](nbgrader|grade_id|schema_version)["']\s*:""")
PACKAGE_SOURCE = [path.read_text() for path in sorted((REPO / "src" / "ppo_course").rglob("*.py"))]
LATENCY_SANITY_MS = 1000  # a broken redraw, not a slow machine: the target (p95 <= 30 ms) is reported


# --- what must not leak -------------------------------------------------------------------------------------

def hidden_test_lines(notebooks: list[nbformat.NotebookNode]) -> set[str]:
    """Lines of these notebooks' hidden tests that appear nowhere visible: not in the visible part of any
    lesson, nor in the package's public code (which a page may print with inspect.getsource). So finding one
    on the site means a hidden test leaked, not that a reader's line happens to match."""
    shown = [pages.public_source(cell.source) for lesson in pages.lessons(released_only=False)
             for cell in nbformat.read(lesson.solution, as_version=4).cells] + PACKAGE_SOURCE
    visible = re.sub(r"\s+", " ", "\n".join(shown))
    lines = {line.strip() for notebook in notebooks for block in pages.hidden_test_blocks(notebook)
             for line in block.splitlines()}
    return {line for line in lines if len(line) >= 20 and "HIDDEN TESTS" not in line and not line.startswith("#")
            and re.sub(r"\s+", " ", line) not in visible}


def readable_text(path: Path) -> str:
    """A file of the site as a reader's text: HTML without tags, a notebook's cell sources; spaces collapsed."""
    raw = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        raw = "\n".join(cell.source for cell in nbformat.reads(raw, as_version=4).cells)
    elif path.suffix in (".html", ".js"):
        raw = html.unescape(re.sub(r"<[^>]+>", "", raw))
    return re.sub(r"\s+", " ", raw)


def leaks(text: str, hidden_lines: set[str]) -> list[str]:
    return sorted(line for line in hidden_lines if re.sub(r"\s+", " ", line) in text)


def test_the_leak_check_finds_a_hidden_test_line(tmp_path):
    """The site's leak check can fail: a page quoting a hidden test line is caught."""
    lesson = next(lesson for lesson in pages.lessons() if pages.hidden_test_blocks(nbformat.read(lesson.solution, 4)))
    lines = hidden_test_lines([nbformat.read(lesson.solution, 4)])
    assert lines, f"{lesson.name} has hidden tests, but none of their lines is distinctive enough to check"
    quoted = next(iter(lines))
    page = tmp_path / "page.html"
    page.write_text(f"<p>Before</p><pre><span>{html.escape(quoted)}</span></pre>")
    assert leaks(readable_text(page), lines) == [quoted], "a page that quotes a hidden test line was not flagged"


def test_the_execution_cache_is_trimmed_safely_while_lessons_execute_in_parallel(tmp_path, monkeypatch):
    """Another reader's record, added but its notebook not yet written, is never deleted; past the limit the
    oldest go (jupyter-cache's own truncation deleted such a record under -j: a KeyError ended the build)."""
    cache_main = pytest.importorskip("jupyter_cache.cache.main", reason="the [site] extra is not installed")
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.cache.db import NbCacheRecord

    sys.path.insert(0, str(REPO / "site" / "_ext"))
    import course_site

    original = cache_main.JupyterCacheBase.truncate_caches
    monkeypatch.setattr(cache_main.JupyterCacheBase, "truncate_caches", original)   # restored after the test
    course_site.setup(types.SimpleNamespace(extensions={}, connect=lambda *args: None))
    assert cache_main.JupyterCacheBase.truncate_caches is course_site.truncate_caches_in_one_query

    cache = cache_main.JupyterCacheBase(str(tmp_path / "cache"))
    for number in range(3):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = {number}")])
        cache.cache_notebook_bundle(CacheBundleIn(notebook, f"lesson{number}.ipynb"), check_validity=False)
    writing = NbCacheRecord.create_record(uri="another-reader.ipynb", hashkey="not-written-yet", db=cache.db)
    course_site.truncate_caches_in_one_query(cache)
    assert len(cache.list_cache_records()) == 4, "a record within the limit was deleted"
    cache.change_cache_limit(2)
    course_site.truncate_caches_in_one_query(cache)
    kept = {record.uri for record in cache.list_cache_records()}
    assert kept == {"lesson2.ipynb", writing.uri}, f"the newest two should stay, not {sorted(kept)}"


def test_lesson_pages_carry_no_solution_markers_or_hidden_tests():
    """What Sphinx is given for each lesson (before any build): solutions unmarked and folded, no hidden tests."""
    for lesson in pages.lessons():
        source = nbformat.read(lesson.solution, as_version=4)
        page = pages.lesson_page(lesson)
        text = nbformat.writes(page)
        for marker in pages.NBGRADER_MARKERS:
            assert marker not in text, f"{lesson.name}: the staged page still says {marker!r}"
        assert "nbgrader" not in text, f"{lesson.name}: nbgrader metadata left in the staged page"
        assert not leaks(re.sub(r"\s+", " ", text), hidden_test_lines([source])), f"{lesson.name}: hidden tests staged"
        answers = sum(bool(cell.metadata.get("nbgrader", {}).get("solution")) for cell in source.cells)
        folded = sum("hide-input" in cell.metadata.get("tags", []) for cell in page.cells)
        assert folded == answers, f"{lesson.name}: {answers} answer cells but {folded} folded behind 'Show solution'"


def test_markdown_links_point_at_pages_or_github():
    text = pages.rewrite_markdown(
        "[guide](autograder/README.md#grade) [l3](lessons/03-clipped-surrogate/03-clipped-surrogate.ipynb) "
        "[code](src/ppo_course/clipping.py) [![Binder](https://mybinder.org/badge_logo.svg)](https://x.org/y)",
        "README.md", "index.md")
    assert "[guide](guide/instructors.md#grade)" in text, text
    assert "[l3](lessons/03-clipped-surrogate/03-clipped-surrogate.ipynb)" in text, text
    github = f"https://github.com/{links.GITHUB_REPO}/blob/{links.BRANCH}"
    assert f"[code]({github}/src/ppo_course/clipping.py)" in text, text
    assert "[Binder](https://x.org/y)" in text and "badge_logo" not in text, f"a badge image is fetched: {text}"


def test_the_execution_cache_ignores_prose_but_not_the_package():
    """MyST-NB's cache key: unchanged by a prose edit, changed by the package or a lesson's data (code_inputs)."""
    cache_module = pytest.importorskip("jupyter_cache.cache.main", reason="the [site] extra is not installed")
    hash_of = functools.partial(cache_module.JupyterCacheBase.create_hashed_notebook, None)
    lesson = next(lesson for lesson in pages.lessons() if lesson.name.startswith("03"))
    page = pages.lesson_page(lesson)
    key = hash_of(page)[1]
    prose = next(cell for cell in page.cells if cell.cell_type == "markdown")
    prose.source += "\n\nA sentence more."
    assert hash_of(page)[1] == key, "a prose edit would run the lesson again"
    first_code = next(cell for cell in page.cells if cell.cell_type == "code")
    assert first_code.metadata.get("site_inputs") == pages.code_inputs(lesson), "the package fingerprint is missing"
    first_code.metadata["site_inputs"] = "changed"
    assert hash_of(page)[1] != key, "a change to the package would not run the lesson again: stale pages"


# --- the build ----------------------------------------------------------------------------------------------

def site_extra_missing() -> str | None:
    try:
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError as error:
        return f"the [site] extra is not installed ({error})"
    return None


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site, built once from clean and once more from the cache; its html folder."""
    browser.require_browser("site tests", site_extra_missing())
    out = tmp_path_factory.mktemp("site")
    timings = {}
    for label in ("clean", "cached"):
        started = time.perf_counter()
        run = subprocess.run([sys.executable, str(REPO / "site" / "build.py"), "--out", str(out)],
                             capture_output=True, text=True, timeout=1500, cwd=REPO)
        timings[label] = time.perf_counter() - started
        assert run.returncode == 0, (
            f"./course.sh site failed ({label} build):\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
        if label == "cached":
            assert "Executing notebook" not in run.stdout + run.stderr, (
                "the second build executed a notebook again: MyST-NB's cache should have served every lesson")
    print(f"\nsite build: {timings['clean']:.0f} s from clean, {timings['cached']:.0f} s from the cache")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "build-times.json").write_text(json.dumps(timings, indent=1))
    return out / "html"


def site_files(html_dir: Path) -> list[Path]:
    return sorted(path for path in html_dir.rglob("*") if path.is_file())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_nbgrader_marker_or_hidden_test_in_any_file(site):
    hidden = hidden_test_lines([nbformat.read(lesson.solution, 4) for lesson in pages.lessons(released_only=False)])
    assert hidden, "no hidden test lines found to look for: the check would prove nothing"
    student = set(pages.student_notebooks())
    checked = 0
    for path in site_files(site):
        if path.suffix not in (".html", ".js", ".ipynb", ".txt", ".json", ".css", ".inv") or "mathjax" in path.parts:
            continue
        relative = path.relative_to(site).as_posix()
        raw = path.read_text(errors="replace")
        for marker in pages.NBGRADER_MARKERS:
            assert marker not in raw, f"{relative} contains nbgrader's marker {marker!r}"
        # The student notebook is the released file (nbgrader needs its metadata); the search index is a
        # list of the pages' words, where the guide's "grade_id" is a word.
        if relative not in student and relative != "searchindex.js":
            assert not NBGRADER_METADATA.search(raw), f"{relative} contains nbgrader metadata: " \
                f"{NBGRADER_METADATA.search(raw).group(0)}"
        found = leaks(readable_text(path), hidden)
        assert not found, f"{relative} quotes hidden tests: {found[:3]}"
        checked += 1
    assert checked >= len(pages.lessons()) + 3, f"only {checked} files checked: did the site build?"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lesson_pages_show_no_grading_trace_and_no_error_output(site):
    for lesson in pages.lessons():
        text = (site / f"lessons/{lesson.name}/{lesson.student.stem}.html").read_text()
        assert "nbgrader" not in text.lower(), f"{lesson.name}'s page mentions nbgrader: grading plumbing leaked"
        for kind in ("stderr", "traceback"):
            assert f'class="output {kind}' not in text, (
                f"{lesson.name}'s page shows a {kind} output: a cell warned or failed while the site was built")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name) and not (tag == "link" and attrs.get("rel") == "preconnect"):
                self.targets.append((tag, attrs[name]))


@functools.cache
def _parsed(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_internal_link_resolves(site):
    broken, external = [], set()
    # Pages, not the theme's template fragments that it copies into _static/.
    for page in sorted(path for path in site.rglob("*.html") if "_static" not in path.relative_to(site).parts):
        for tag, target in _parsed(page).targets:
            parsed = urlparse(target)
            if parsed.scheme in ("http", "https", "mailto"):
                external.add(target)
                continue
            if parsed.scheme == "data" or target.startswith("javascript:"):
                continue
            path = (page.parent / unquote(parsed.path)).resolve() if parsed.path else page
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                broken.append(f"{page.relative_to(site)}: <{tag}> {target}")
            elif parsed.fragment and path.suffix == ".html" and parsed.fragment not in _parsed(path).ids:
                broken.append(f"{page.relative_to(site)}: <{tag}> {target} (no id {parsed.fragment!r})")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:20])
    # Links out are checked for form, never fetched: Colab and Binder open a notebook that lessons/ has.
    colab = re.compile(re.escape(links.colab_url("")) + r"(lessons/.+\.ipynb)")
    binder = re.compile(re.escape(links.binder_url("")) + r"(lessons(/.+\.ipynb)?)")
    for target in sorted(external):
        for kind, form in (("Colab", colab), ("Binder", binder)):
            host = urlparse(links.colab_url("") if kind == "Colab" else links.binder_url("")).hostname
            if urlparse(target).hostname == host:
                match = form.fullmatch(target)
                assert match and (REPO / match.group(1)).exists(), f"a {kind} link of another form: {target}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_each_lesson_has_colab_binder_and_student_download(site):
    for lesson in pages.lessons():
        page = site / f"lessons/{lesson.name}/{lesson.student.stem}.html"
        assert page.is_file(), f"no page for {lesson.name}"
        hrefs = [target for tag, target in _parsed(page).targets if tag == "a"]
        assert links.colab_url(lesson.repo_path) in hrefs, f"{lesson.name}: no Open in Colab link to {lesson.repo_path}"
        assert links.binder_url(lesson.repo_path) in hrefs, f"{lesson.name}: no Binder link to {lesson.repo_path}"
        assert (REPO / lesson.repo_path).is_file(), f"the buttons point at {lesson.repo_path}, which is not in lessons/"
        download = page.parent / lesson.student.name
        assert lesson.student.name in hrefs and download.is_file(), f"{lesson.name}: no student notebook to download"
        assert download.read_bytes() == lesson.student.read_bytes(), (
            f"{lesson.name}: the download is not the released student notebook lessons/{lesson.name}")


# --- in Chromium --------------------------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    """The site on a free localhost port, and a Chromium page that may reach nothing else."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with browser.chromium_page(width=1300, height=900) as page:
            page.outside_requests = []
            page.console_errors = []
            page.context.route("**/*", lambda route: _local_or_recorded(page, route))
            page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
            yield f"http://127.0.0.1:{server.server_port}", page
    finally:
        server.shutdown()
        server.server_close()


def _local_or_recorded(page, route) -> None:
    if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        page.outside_requests.append(route.request.url)
        route.abort()


def _open(served, path: str):
    base, page = served
    page.errors.clear()
    page.console_errors.clear()
    page.outside_requests.clear()
    page.goto(f"{base}/{path}", wait_until="networkidle", timeout=60_000)
    return page


IMAGES_DECODE_JS = """async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = 'eager'; });
  const bad = [];
  for (const img of images) {
    try { await img.decode(); } catch (e) { /* judged below */ }
    if (!img.complete || img.naturalWidth === 0) bad.push(img.getAttribute('src').slice(0, 120));
  }
  return {count: images.length, bad};
}"""


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_every_page_loads_offline_with_its_images(served):
    base, page = served
    problems = []
    for path in _pages_of_the_site(page, base):
        _open(served, path)
        images = page.evaluate(IMAGES_DECODE_JS)
        if page.errors or page.console_errors:
            problems.append(f"{path}: console errors {page.errors + page.console_errors}")
        if page.outside_requests:
            problems.append(f"{path}: asked another site for {page.outside_requests[:5]}")
        if images["bad"]:
            problems.append(f"{path}: images missing or not decoded: {images['bad']}")
    assert not problems, "\n".join(problems)


def _pages_of_the_site(page, base: str) -> list[str]:
    """Every HTML page the site has, found by following its own links from the landing page."""
    seen, queue = set(), ["index.html"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        page.goto(f"{base}/{path}", wait_until="domcontentloaded")
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            url = urlparse(urljoin(f"{base}/{path}", href))
            if url.netloc == urlparse(base).netloc and url.path.endswith(".html"):
                queue.append(url.path.lstrip("/"))
    assert len(seen) >= len(pages.lessons()) + 3, f"only {sorted(seen)} reached from the landing page"
    return sorted(seen)


def _lesson_path(name: str) -> str:
    lesson = next(lesson for lesson in pages.lessons() if lesson.name == name)
    return f"lessons/{lesson.name}/{lesson.student.stem}.html"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_solutions_fold_and_unfold(served):
    page = _open(served, _lesson_path("03-clipped-surrogate"))
    toggles = page.locator("details.hide")
    assert toggles.count() >= 3, f"lesson 03 has 3 exercises but {toggles.count()} solution toggles"
    first = toggles.first
    summary = first.locator("summary")
    code = first.locator("pre").first
    assert "Show solution" in summary.inner_text(), f"the toggle says {summary.inner_text()!r}"
    assert not code.is_visible(), "the solution is shown before the reader asks for it"
    summary.click()
    code.wait_for(state="visible", timeout=5000)
    assert "Hide solution" in summary.inner_text() and "torch.minimum" in code.inner_text(), (
        f"opening the toggle did not show the solution: {summary.inner_text()!r}")
    summary.click()
    code.wait_for(state="hidden", timeout=5000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lesson-03.png"))


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_widgets_show_their_first_frame_and_where_to_run_them(served):
    widget_code = re.compile(r"Explorer\(")
    for lesson in pages.lessons():
        source = nbformat.read(lesson.solution, as_version=4)
        if not any(cell.cell_type == "code" and widget_code.search(cell.source) for cell in source.cells):
            continue
        page = _open(served, _lesson_path(lesson.name))
        stills = page.locator(".widget-still")
        assert stills.count() >= 1, f"{lesson.name}: its widget left no still on the page"
        still = stills.first
        assert still.locator("img").count() >= 1, f"{lesson.name}: the widget's still has no picture"
        assert "Colab" in still.inner_text() and "Binder" in still.inner_text(), (
            f"{lesson.name}: the still does not say where to run the widget live: {still.inner_text()[-300:]!r}")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_search_finds_the_clip_lesson(served):
    page = _open(served, "search.html?q=clipped")
    page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0", timeout=30_000)
    results = page.locator("#search-results").inner_text()
    assert "clipped surrogate" in results.lower(), f"searching 'clipped' did not find lesson 03: {results[:500]!r}"


# --- the kernel-free clip explorer --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_clip_explorer_computes_what_clipped_surrogate_computes(served):
    page = _open(served, _lesson_path("03-clipped-surrogate"))
    api = "window.ppoClipExplorer"
    assert page.evaluate(f"{api} && {api}.instances.length") == 1, "lesson 03 has no kernel-free explorer"
    assert page.evaluate(f"{api}.COLORS") == {key: COLORS[key] for key in
                                              ("positive", "negative", "unclipped", "clip_region", "flat")}, (
        "the explorer's colours differ from ppo_course.plotting.COLORS")
    r = torch.linspace(0.0, 2.5, 51, dtype=torch.float64)
    advs = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64)
    for eps in (0.05, 0.1, 0.2, 0.3, 0.5):
        got = torch.tensor(page.evaluate(
            f"([rs, advs, eps]) => advs.map(a => rs.map(r => {api}.clippedSurrogate(r, a, eps)))",
            [r.tolist(), advs.tolist(), eps]), dtype=torch.float64)
        expected = clipped_surrogate(r[None, :], advs[:, None], eps)
        assert torch.allclose(got, expected, rtol=0, atol=1e-12), (
            f"eps = {eps}: the page's L^CLIP differs from clipped_surrogate by up to "
            f"{(got - expected).abs().max():.3g}")
        slopes = torch.tensor(page.evaluate(
            f"([rs, advs, eps]) => advs.map(a => rs.map(r => {api}.slope(r, a, eps)))",
            [r[:-1].tolist(), advs.tolist(), eps]), dtype=torch.float64)
        flat = clip_is_active(r[None, :-1], advs[:, None], eps)
        assert torch.equal(slopes == 0, flat | (advs[:, None] == 0)), (
            f"eps = {eps}: where the page draws dL/dr = 0 is not where clip_is_active says the clip is active")
    # The curves drawn are the same function on the widget's grid.
    grid = torch.linspace(0.0, 2.5, 501, dtype=torch.float64)
    drawn = torch.tensor(page.evaluate(f"() => {api}.curve(-1.3, 0.25)"), dtype=torch.float64)
    assert torch.allclose(drawn, clipped_surrogate(grid, torch.tensor(-1.3, dtype=torch.float64), 0.25), atol=1e-12)
    # Moving the sliders with the keyboard changes what the readout says, to the value clipped_surrogate gives.
    explorer = page.locator("div.clip-explorer").first
    for name, presses in (("r", 6), ("eps", 2), ("adv", -25)):
        handle = explorer.locator(f"input[name={name}]")
        handle.focus()
        for _ in range(abs(presses)):
            page.keyboard.press("ArrowRight" if presses > 0 else "ArrowLeft")
    state = page.evaluate(f"{api}.instances[0].state()")
    assert (state["r"], state["eps"], round(state["adv"], 6)) == (1.3, 0.3, -1.5), f"the sliders moved to {state}"
    for row in state["rows"]:
        expected = float(clipped_surrogate(torch.tensor(1.3, dtype=torch.float64),
                                           torch.tensor(row["adv"], dtype=torch.float64), 0.3))
        assert abs(row["value"] - expected) < 1e-12, f"readout L at A = {row['adv']}: {row['value']} != {expected}"
        readout = explorer.locator(".clip-explorer-readout").inner_text().replace("\u2212", "-")
        assert f"L = {expected:+.3f}" in readout, f"the readout says {readout!r}, expected L = {expected:+.3f}"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_clip_explorer_keeps_up_with_its_sliders(served):
    page = _open(served, _lesson_path("03-clipped-surrogate"))
    results = explorer_latency.measure(page)
    report = ", ".join(f"{name}: median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms"
                       for name, r in results.items())
    print(f"\nkernel-free clip explorer, slider -> plot (target p95 <= 30 ms): {report}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "explorer-latency.json").write_text(json.dumps(results, indent=1))
    slow = {name: r["p95_ms"] for name, r in results.items() if r["p95_ms"] > LATENCY_SANITY_MS}
    assert not slow, f"the explorer took over {LATENCY_SANITY_MS} ms to redraw (p95): {slow}"
