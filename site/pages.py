"""The site's pages, staged from the repository: what a reader may see of each source, and nothing else.

The site is built from a staging folder, never from the repository itself, so what reaches the HTML is
decided here, in one place:

- each ``solutions/NN-name/NN-name.ipynb`` becomes ``lessons/NN-name/NN-name.ipynb`` (so the page sits
  where its student notebook sits in the repository): nbgrader's solution markers and every hidden-test
  block are removed, each answer cell is shown first as the learner's stub and then folded behind
  "Show solution", the Colab-only setup cell and the badge images are dropped (each page has its own
  buttons), and nbgrader's metadata is stripped;
- the README's introduction, its two commands and its course map become the landing page;
- the instructor guide and the trainer benchmark become pages, their links pointing at pages of the
  site where there is one and at the repository on GitHub otherwise.

A file is rewritten only when its content changes, so Sphinx (which goes by modification times) and
MyST-NB's execution cache (which goes by the code cells) redo only what a change touched.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "site"
sys.path.insert(0, str(REPO / "src"))
from ppo_course import links  # noqa: E402  (the one place the repository's address is written)

SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?",
                          re.MULTILINE | re.DOTALL)
# The markers themselves: none of these may reach a file of the site.
NBGRADER_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
# Markdown: a linked image [![alt](img)](target), an image ![alt](src), a link [text](target).
LINKED_IMAGE = re.compile(r"\[!\[([^\]]*)\]\(([^)\s]+)\)\]\(([^)\s]+)\)")
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
# Where a lesson's widget has a kernel-free twin on the page: the code that builds the widget -> the HTML
# put right after its cell (site/_static/clip-explorer.js draws into it).
KERNEL_FREE_TWINS = {
    "ClipExplorer(": (
        "## Try it here: the clip explorer, no kernel needed\n\n"
        "The figure above is the widget's first frame. This one is the same picture computed by your "
        "browser: drag r, ε and A.\n\n"
        '<div class="clip-explorer" data-r="1.0" data-eps="0.2" data-adv="1.0"></div>\n'),
}
# Pages made from the repository's Markdown files: repository path -> page path in the site.
MARKDOWN_PAGES = {
    "autograder/README.md": "guide/instructors.md",
    "benchmarks/README-trainer.md": "benchmarks/trainer.md",
}


@dataclass(frozen=True)
class Lesson:
    name: str          # "03-clipped-surrogate"
    solution: Path     # solutions/NN-name/NN-name.ipynb, the source
    student: Path      # lessons/NN-name/NN-name.ipynb, what the download button gives

    @property
    def repo_path(self) -> str:
        """The student notebook's path in the repository: where Colab, Binder and the page point."""
        return f"lessons/{self.name}/{self.student.name}"


def lessons(repo: Path = REPO, released_only: bool = True) -> list[Lesson]:
    """Every lesson with a source notebook, found by folder (a new ``solutions/NN-*/`` joins by itself).

    A lesson joins the site once it is released (its student notebook is in ``lessons/``): before that its
    Colab, Binder and download buttons would lead nowhere.
    """
    found = []
    for folder in sorted((repo / "solutions").glob("[0-9][0-9]-*/")):
        notebooks = sorted(folder.glob("*.ipynb"))
        if notebooks:
            found.append(Lesson(folder.name, notebooks[0], repo / "lessons" / folder.name / notebooks[0].name))
    return [lesson for lesson in found if lesson.student.is_file() or not released_only]


# --- what a reader may see of a source notebook -------------------------------------------------------------

def hidden_test_blocks(notebook: nbformat.NotebookNode) -> list[str]:
    """The text of every hidden-test block of a source notebook (for the leak check)."""
    return [match.group(0) for cell in notebook.cells if cell.cell_type == "code"
            for match in HIDDEN_TESTS.finditer(cell.source)]


def public_source(source: str) -> str:
    """A cell's source without hidden tests and without the solution markers (the code between stays)."""
    return SOLUTION_MARKER.sub("", HIDDEN_TESTS.sub("", source))


def student_stub(source: str) -> str:
    """The answer cell as the learner gets it: each solution block replaced by ``raise NotImplementedError()``."""
    block = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)
    return block.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", source)


def released_stubs(student: Path) -> dict[str, str]:
    """grade_id -> source of each answer cell in the released student notebook (the exact stub)."""
    if not student.is_file():
        return {}
    notebook = nbformat.read(student, as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in notebook.cells
            if cell.metadata.get("nbgrader", {}).get("solution") and "grade_id" in cell.metadata["nbgrader"]}


def code_inputs(lesson: Lesson) -> str:
    """A fingerprint of what a lesson's outputs depend on besides its own code: the package and its data files.

    MyST-NB's cache goes by the notebook's code cells (and their metadata). With this fingerprint in the first
    code cell's metadata, a change to ``src/ppo_course`` or to a lesson's data file runs the lesson again,
    so no page shows outputs of code that has changed since; a prose change still runs nothing.
    """
    digest = hashlib.sha256()
    package = REPO / "src" / "ppo_course"
    # The grading code (autograder/) never runs in a lesson, so changing it re-runs nothing.
    code = sorted(path for path in package.rglob("*.py") if "autograder" not in path.relative_to(package).parts)
    inputs = code + sorted(path for path in lesson.solution.parent.iterdir()
                           if path.is_file() and path.suffix != ".ipynb")
    for path in inputs:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _markdown_cell(source: str, cell_id: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = cell_id  # fixed, so a rebuild stages the same bytes
    return cell


def lesson_page(lesson: Lesson) -> nbformat.NotebookNode:
    """The notebook Sphinx renders for ``lesson``: solutions folded, hidden tests gone, no nbgrader trace."""
    source = nbformat.read(lesson.solution, as_version=4)
    stubs = released_stubs(lesson.student)
    page = copy.deepcopy(source)
    page.metadata = {key: page.metadata[key] for key in ("kernelspec", "language_info") if key in page.metadata}
    cells = []
    for cell in source.cells:
        cell = copy.deepcopy(cell)
        grading = cell.metadata.pop("nbgrader", {})
        tags = cell.metadata.get("tags", [])
        if "colab-setup" in tags:
            continue  # a no-op anywhere but Colab; the page's buttons open Colab
        if cell.cell_type == "markdown":
            cell.source = rewrite_markdown(cell.source, f"lessons/{lesson.name}/x.ipynb", badges="drop")
        else:
            raw = cell.source
            cell.source = public_source(raw)
            if grading.get("solution"):
                stub = stubs.get(grading.get("grade_id"), student_stub(raw))
                cells.append(_markdown_cell(
                    f"**Exercise `{grading.get('grade_id', 'answer')}`.** Write the body, then run the tests "
                    f"below it. Try it before you open the solution.\n\n```python\n{stub}\n```", f"{cell.id}-stub"))
                cell.metadata["tags"] = [*tags, "hide-input"]
                cell.metadata["mystnb"] = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}
        cells.append(cell)
        if cell.cell_type == "code":
            cells.extend(_markdown_cell(html, f"{cell.id}-live") for code, html in KERNEL_FREE_TWINS.items()
                         if code in cell.source)
    first_code = next((cell for cell in cells if cell.cell_type == "code"), None)
    if first_code is not None:
        first_code.metadata["site_inputs"] = code_inputs(lesson)
    page.cells = cells
    nbformat.validate(page)
    return page


# --- Markdown from the repository ---------------------------------------------------------------------------

def _page_for(repo_path: str) -> str | None:
    """The page of the site that shows the repository file ``repo_path``, if there is one."""
    if repo_path in MARKDOWN_PAGES:
        return MARKDOWN_PAGES[repo_path]
    match = re.fullmatch(r"(lessons|solutions)/(\d\d-[^/]+)/([^/]+\.ipynb)", repo_path)
    if match and (REPO / "solutions" / match.group(2)).is_dir():
        return f"lessons/{match.group(2)}/{match.group(3)}"
    return None


def _relative(target: str, page: str) -> str:
    """``target`` (a site path) as a link from ``page`` (a site path)."""
    parts_from = PurePosixPath(page).parent.parts
    parts_to = PurePosixPath(target).parts
    common = 0
    while common < min(len(parts_from), len(parts_to)) and parts_from[common] == parts_to[common]:
        common += 1
    return "/".join([".."] * (len(parts_from) - common) + list(parts_to[common:])) or "."


def _repo_path(link: str, source: str) -> str:
    """A relative link in the repository file ``source``, as a path from the repository root."""
    parts: list[str] = []
    for part in (PurePosixPath(source).parent / link).parts:
        if part == "..":
            parts = parts[:-1]
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def rewrite_markdown(text: str, source: str, page: str | None = None, badges: str = "text") -> str:
    """Rewrite the links of Markdown from the repository file ``source`` for the site page ``page``.

    A link to a file the site shows goes to its page; any other file of the repository goes to GitHub.
    Badge images (which would be fetched from their sites) become text links (``badges="text"``) or
    are dropped (``"drop"``). Local images are kept, as paths from ``page``.
    """
    page = page or source

    def external(target: str) -> bool:
        return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target)) or target.startswith("#")

    def target_for(target: str) -> str:
        if external(target):
            return target
        path, _, anchor = target.partition("#")
        repo_path = _repo_path(path, source)
        shown = _page_for(repo_path)
        if shown:
            return _relative(shown, page) + (f"#{anchor}" if anchor else "")
        kind = "tree" if (REPO / repo_path).is_dir() else "blob"
        return f"https://github.com/{links.GITHUB_REPO}/{kind}/{links.BRANCH}/{repo_path}" + (
            f"#{anchor}" if anchor else "")

    def linked_image(match: re.Match) -> str:
        alt, image, target = match.groups()
        if not external(image):
            return f"[![{alt}]({target_for(image)})]({target_for(target)})"
        return "" if badges == "drop" else f"[{alt}]({target_for(target)})"

    def image(match: re.Match) -> str:
        alt, src = match.groups()
        if external(src):
            return "" if badges == "drop" else alt
        return f"![{alt}]({_relative(_repo_path(src, source), page)})"

    text = LINKED_IMAGE.sub(linked_image, text)
    text = IMAGE.sub(image, text)
    return LINK.sub(lambda m: f"[{m.group(1)}]({target_for(m.group(2))})", text)


def readme_sections(readme: str) -> dict[str, str]:
    """The README split at its ``## `` headings: title -> body ("" holds what comes before the first)."""
    chunks = re.split(r"^## ", readme, flags=re.MULTILINE)
    sections = {"": chunks[0].strip()}
    for chunk in chunks[1:]:
        title, _, body = chunk.partition("\n")
        sections[title.strip()] = body.strip()
    return sections


def landing_page(repo: Path = REPO) -> str:
    """index.md: the README's introduction, picture, two commands and course map, and the site's map."""
    sections = readme_sections((repo / "README.md").read_text())
    intro = sections.get("", "")
    parts = [rewrite_markdown(intro, "README.md", "index.md")]
    parts.append(
        "**Read any lesson here** with its figures, tables and printed numbers, before you run anything; "
        "open it in Colab or Binder, or download the student notebook, from the buttons on its page. "
        "[Lesson 03](lessons/03-clipped-surrogate/03-clipped-surrogate.ipynb) has a clip explorer that runs "
        "in this page, no kernel needed:\n\n"
        '<div class="clip-explorer" data-r="1.3" data-eps="0.2" data-adv="1.0"></div>')
    for title in ("Two commands", "Course map"):
        if title in sections:
            parts.append(f"## {title}\n\n" + rewrite_markdown(sections[title], "README.md", "index.md"))
    parts.append(
        "## More\n\n"
        "- [Instructor guide](guide/instructors.md): release, collect, grade, feedback and export.\n"
        "- [Benchmark: the reference trainer against Stable-Baselines3](benchmarks/trainer.md).\n"
        f"- [The repository on GitHub](https://github.com/{links.GITHUB_REPO}).\n")
    toc = "\n".join(f"lessons/{lesson.name}/{lesson.student.stem}" for lesson in lessons(repo))
    parts.append(f"```{{toctree}}\n:hidden:\n:caption: Lessons\n\n{toc}\n```\n\n"
                 "```{toctree}\n:hidden:\n:caption: For instructors and contributors\n\n"
                 "guide/instructors\nbenchmarks/trainer\n```")
    return "\n\n".join(parts) + "\n"


# --- staging ------------------------------------------------------------------------------------------------

def _write_if_changed(path: Path, data: bytes) -> None:
    """Write only a change, so an unchanged page keeps its modification time (Sphinx skips it)."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _copy_if_changed(source: Path, target: Path) -> None:
    _write_if_changed(target, source.read_bytes())


def stage(target: Path, repo: Path = REPO) -> list[Path]:
    """Write every page and file the site is built from into ``target``; return what was staged."""
    staged: list[Path] = []

    def put(relative: str, data: bytes) -> None:
        _write_if_changed(target / relative, data)
        staged.append(target / relative)

    for lesson in lessons(repo):
        notebook = lesson_page(lesson)
        put(lesson.repo_path, (nbformat.writes(notebook) + "\n").encode())
        for data_file in sorted(lesson.solution.parent.iterdir()):
            if data_file.is_file() and data_file.suffix != ".ipynb":  # what the lesson loads, e.g. ablations.json
                put(f"lessons/{lesson.name}/{data_file.name}", data_file.read_bytes())
    for source, page in MARKDOWN_PAGES.items():
        if (repo / source).is_file():
            put(page, rewrite_markdown((repo / source).read_text(), source, page).encode())
    put("index.md", landing_page(repo).encode())
    for image in sorted((repo / "assets").glob("*.png")):
        put(f"assets/{image.name}", image.read_bytes())
    # Whatever was staged before and is no longer a source (a renamed lesson) would still be built.
    keep = {path.resolve() for path in staged}
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_file() and path.resolve() not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return staged


def student_notebooks(repo: Path = REPO) -> dict[str, str]:
    """Site path of each downloadable student notebook -> its repository path (for the build and tests)."""
    return {lesson.repo_path: str(lesson.student.relative_to(repo)) for lesson in lessons(repo)
            if lesson.student.is_file()}


if __name__ == "__main__":  # a quick look at what would be staged: python site/pages.py OUT
    if len(sys.argv) != 2:
        sys.exit("usage: python site/pages.py OUT_FOLDER")
    print(json.dumps([str(p) for p in stage(Path(sys.argv[1]))], indent=1))
