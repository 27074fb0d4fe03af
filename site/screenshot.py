"""The README's picture of a lesson page (assets/site-lesson-page.png), taken from a built site in Chromium.

    ./course.sh site && .venv-dev/bin/python site/screenshot.py     # -> assets/site-lesson-page.png

It uses the test suite's Chromium setup (tests/browser_helpers.py): Debian's chromium, offline by design.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path

SITE = Path(__file__).resolve().parent
REPO = SITE.parent
sys.path.insert(0, str(REPO / "tests"))
import browser_helpers as browser  # noqa: E402

PAGE = "lessons/03-clipped-surrogate/03-clipped-surrogate.html"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=SITE / "_build" / "html",
                        help="the built site (default site/_build/html)")
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "site-lesson-page.png", help="where the PNG goes")
    args = parser.parse_args(argv)
    if not (args.html / PAGE).is_file():
        parser.error(f"{args.html / PAGE} does not exist: build the site first (./course.sh site)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(args.html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with browser.chromium_page(width=1280, height=860) as page:
            page.goto(f"http://127.0.0.1:{server.server_port}/{PAGE}", wait_until="networkidle")
            # The first exercise: the learner's stub, the folded solution, and the lesson's navigation.
            page.locator("details.hide summary").first.scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, -330)")
            page.wait_for_timeout(300)
            page.screenshot(path=str(args.out))
    finally:
        server.shutdown()
    print(f"site/screenshot.py: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
