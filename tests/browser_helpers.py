"""Drive JupyterLab and Voilà in headless Chromium: the machinery behind tests/test_browser.py and
benchmarks/bench_widget_latency.py.

Every detail here was verified on the course's machines (see shared/browser-testing.md): Debian's
chromium driven by Python playwright, offline by design, JupyterLab isolated in a temporary directory,
and the selectors and waits that are reliable in JupyterLab 4 with ipywidgets 8.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--disable-extensions",
]
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# Lab settings for a test: no autosave (Run All would write outputs into the notebook under test), no
# news toast over the page, and every cell kept in the DOM (windowing would drop off-screen cells).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
# nbgrader's extensions are for instructors; a student's Lab (and Binder) never loads them.
DISABLED_LAB_EXTENSIONS = {"@jupyter/nbgrader": True}


def chromium_available() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


def require_browser(what: str, problem: str | None = None) -> None:
    """Skip the calling fixture's tests when Chromium or playwright (or ``problem``) is missing; under
    CI=true fail instead, so that the browser tests cannot silently stop running."""
    if problem is None and not chromium_available():
        problem = f"no Chromium at {CHROMIUM} (`./course.sh test` installs it with apt-get when run as root)"
    if problem is None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the Python package playwright is not installed (it comes with the [test] extra)"
    if problem:
        import pytest

        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; CI=true, so the {what} must run")
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running Jupyter server: where it listens, its token, and its log (shown when it fails)."""
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _isolated_env(workdir: Path) -> dict[str, str]:
    """Environment for a server whose config, runtime, workspaces and settings live in ``workdir``."""
    dirs = {name: workdir / name.lower() for name in (
        "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_WORKSPACES_DIR", "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTER_DATA_DIR", "IPYTHONDIR", "MPLCONFIGDIR")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"]
    for relative, value in LAB_SETTINGS.items():
        (settings / relative).parent.mkdir(parents=True, exist_ok=True)
        (settings / relative).write_text(json.dumps(value))
    labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
    labconfig.mkdir(exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": DISABLED_LAB_EXTENSIONS}))
    env = dict(os.environ, **{k: str(v) for k, v in dirs.items()})
    env.pop("MPLBACKEND", None)  # the notebooks choose their backend (%matplotlib widget)
    # Kernels are found through PATH: use this interpreter's environment.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PPO_COURSE_FAST"] = "1"
    return env


def _wait_until_ready(server: Server, path: str, any_answer: bool = False, timeout_s: float = 90) -> None:
    """Poll ``path`` until it answers 200 (or, with ``any_answer``, any HTTP status at all)."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"token {server.token}"})
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except urllib.error.HTTPError:
            if any_answer:
                return
            time.sleep(0.3)
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not answer {path} within {timeout_s:.0f} s:\n{server.log_tail()}")


def _stop(server: Server, shutdown_path: str | None) -> None:
    if shutdown_path and server.process.poll() is None:
        request = urllib.request.Request(server.url + shutdown_path, method="POST", data=b"",
                                         headers={"Authorization": f"token {server.token}"})
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError:
            pass  # it is terminated below either way
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def _root_flags() -> list[str]:
    # CI runs as root, and Jupyter refuses to start as root without this flag.
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


@contextmanager
def lab_server(root: Path, workdir: Path) -> Iterator[Server]:
    """JupyterLab serving ``root`` on a free localhost port with a random token, stopped afterwards."""
    port, token = free_port(), secrets.token_hex(16)
    log = workdir / "lab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", *_root_flags()]
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=root, env=_isolated_env(workdir), stdout=log_file,
                                   stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", token, process, log)
    try:
        _wait_until_ready(server, "/api/status")
        yield server
    finally:
        _stop(server, "/api/shutdown")


@contextmanager
def voila_server(notebook: Path, workdir: Path) -> Iterator[Server]:
    """Voilà serving one notebook as an app on a free localhost port with a random token."""
    port, token = free_port(), secrets.token_hex(16)
    log = workdir / "voila.log"
    # Preheat: Voilà runs the notebook as soon as it starts, so the page is ready when it is asked for
    # (and a test can do other work meanwhile).
    command = [sys.executable, "-m", "voila", notebook.name, "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1", f"--token={token}", "--preheat_kernel=True"]
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=notebook.parent, env=_isolated_env(workdir), stdout=log_file,
                                   stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", token, process, log)
    try:
        # Any answer means it listens. Not "/": that renders the app and would use up the preheated kernel.
        _wait_until_ready(server, "/voila/static/", any_answer=True)
        yield server
    finally:
        server.process.terminate()  # Voilà has no shutdown endpoint; SIGTERM stops it cleanly
        _stop(server, None)


def _local_only(route) -> None:
    """The test is offline by design: anything not on this machine is refused, not waited for."""
    if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """A headless Chromium page that can only reach localhost; page errors are kept in ``page.errors``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.route("**/*", _local_only)
            page = context.new_page()
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            yield page
        finally:
            browser.close()


def copy_lesson(source: Path, root: Path) -> Path:
    """Copy a lesson folder under ``root`` (Lab may write next to it) and return the notebook's copy."""
    target = root / source.parent.name
    shutil.copytree(source.parent, target, dirs_exist_ok=True)
    return target / source.name


# In-page probe, so latency is measured on the page's own clock: a capture-phase keydown listener
# stores performance.now(), and a requestAnimationFrame loop records when the slider's readout and
# the plot's signature (canvas pixels for ipympl, the <img> source otherwise) first change.
PROBE_JS = r"""
(() => {
  if (window.__probe) return;
  const hashText = (text) => {
    let h = 2166136261;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
    return (h >>> 0).toString(16);
  };
  const signature = (root) => {
    const canvas = root.querySelector('.jupyter-matplotlib-figure canvas');
    if (canvas && canvas.width > 0) {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      const words = new Uint32Array(data.buffer);
      let h = 2166136261;
      for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 16777619);
      return 'canvas:' + (h >>> 0).toString(16);
    }
    const img = root.querySelector('img');
    return img && img.src ? 'img:' + hashText(img.src) : '';
  };
  window.__probe = {
    signature,
    result: null,
    arm(root, readout) {
      const probe = this;
      probe.result = null;
      const plotBefore = signature(root);
      const readoutBefore = readout.textContent;
      const onKey = () => {
        document.removeEventListener('keydown', onKey, true);
        const t0 = performance.now();
        let readoutMs = null;
        const tick = () => {
          const elapsed = performance.now() - t0;
          if (readoutMs === null && readout.textContent !== readoutBefore) readoutMs = elapsed;
          const plot = signature(root);
          if (plot && plot !== plotBefore) {
            probe.result = {plotMs: elapsed, readoutMs, plotBefore, plot};
          } else if (elapsed > 20000) {
            probe.result = {plotMs: null, readoutMs, plotBefore, plot};
          } else {
            requestAnimationFrame(tick);
          }
        };
        requestAnimationFrame(tick);
      };
      document.addEventListener('keydown', onKey, true);
    },
  };
})();
"""


@dataclass
class SliderMove:
    """What one key press on a slider did, timed in the page."""
    label: str
    readout_before: str
    readout_after: str
    plot_changed: bool
    plot_ms: float | None
    readout_ms: float | None


def sliders_in(root) -> list:
    """Every ipywidgets slider inside ``root`` (a playwright Locator), in page order."""
    return root.locator(".widget-slider").all()


def slider_label(slider) -> str:
    return slider.locator(".widget-label").first.inner_text().strip()


def slider_position(slider) -> tuple[float, float, float]:
    """(value, min, max) of a slider, from its handle's ARIA attributes."""
    handle = slider.locator(".noUi-handle").first
    return tuple(float(handle.get_attribute(f"aria-value{name}")) for name in ("now", "min", "max"))


def move_slider(page, root, slider, key: str | None = None, timeout_s: float = 25) -> SliderMove:
    """Press one arrow key on ``slider`` and time the redraw of ``root`` (a Locator around the plot).

    ``key`` is "ArrowRight" or "ArrowLeft"; by default right, or left when the slider is at its maximum.
    """
    page.evaluate(PROBE_JS)
    handle = slider.locator(".noUi-handle").first
    readout = slider.locator(".widget-readout").first
    before = readout.inner_text().strip()
    if key is None:
        value, _low, high = slider_position(slider)
        key = "ArrowLeft" if value >= high else "ArrowRight"
    page.evaluate("([root, readout]) => window.__probe.arm(root, readout)",
                  [root.element_handle(), readout.element_handle()])
    handle.focus()
    page.keyboard.press(key)
    page.wait_for_function("() => window.__probe.result !== null", timeout=timeout_s * 1000)
    result = page.evaluate("() => window.__probe.result")
    return SliderMove(slider_label(slider), before, readout.inner_text().strip(), result["plotMs"] is not None,
                      result["plotMs"], result["readoutMs"])


class LabNotebook:
    """One notebook open in JupyterLab, in a fresh workspace so no earlier layout leaks in."""

    def __init__(self, page, server: Server, path: str, workspace: str):
        self.page, self.server = page, server
        page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{path}?token={server.token}",
                  wait_until="domcontentloaded", timeout=90_000)
        self.panel = page.locator(NOTEBOOK)
        self.panel.locator(".jp-Cell").first.wait_for(timeout=90_000)

    def wait_kernel_idle(self, timeout_s: float = 90) -> None:
        # The status bar, not the toolbar indicator: that one reports idle before the kernel exists.
        self.page.wait_for_function(
            """() => { const bar = document.querySelector('#jp-main-statusbar');
                       const text = bar ? bar.innerText : '';
                       return text.includes('| Idle') && !text.includes('No Kernel'); }""",
            timeout=timeout_s * 1000)

    def prompts(self) -> list[str]:
        return [p.strip() for p in self.panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]

    def run_all(self, timeout_s: float = 240) -> None:
        """Run All Cells from the Run menu, retrying if the click ran nothing; wait until all have run."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for _attempt in range(3):
            self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            self.page.locator(".lm-Menu-item").filter(
                has=self.page.locator(".lm-Menu-itemLabel", has_text="Run All Cells")).filter(
                has_not_text="Restart").first.click()
            try:
                self.page.wait_for_function(
                    f"""() => [...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputPrompt')]
                               .some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText))""", timeout=10_000)
                break
            except PlaywrightTimeout:
                continue  # the click ran nothing (Lab was not ready for it): click again
        self.page.wait_for_function(
            f"""() => {{ const prompts = [...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputPrompt')];
                        return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.innerText)); }}""",
            timeout=timeout_s * 1000)
        self.wait_kernel_idle()

    def error_outputs(self) -> list[str]:
        """Text of every error or stderr output shown in the notebook (tracebacks and warnings)."""
        selector = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        return [text[:500] for text in self.panel.locator(selector).all_inner_texts()]

    def slider_areas(self) -> list:
        """The output areas that hold sliders: one per interactive widget the notebook displays."""
        return self.panel.locator(".jp-OutputArea-output").filter(
            has=self.page.locator(".widget-slider")).all()
