"""Sphinx configuration of the course's website (built by ``./course.sh site``; see site/build.py).

The source folder is not this one: site/build.py stages the pages (site/pages.py) into the build folder
and points Sphinx at this configuration. Everything the pages need ships with the packages of the
``[site]`` extra, so the build and the pages work without a network: the theme's assets come with
sphinx-book-theme, MathJax with sphinx-mathjax-offline, search is Sphinx's own.
"""
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent
sys.path.insert(0, str(SITE / "_ext"))
sys.path.insert(0, str(SITE.parent / "src"))
from ppo_course import links  # noqa: E402

project = "PPO from first principles"
author = "the PPO course authors"
copyright = "the PPO course authors, MIT licence"

extensions = [
    "myst_nb",
    "sphinx-mathjax-offline",  # MathJax from the package, not from a CDN
    "course_site",             # site/_ext: page buttons, widget stills, the kernel-free clip explorer
    "sphinx.ext.githubpages",  # .nojekyll, so GitHub Pages serves _static/ and _images/
]
exclude_patterns = ["**/.ipynb_checkpoints"]

# --- MyST and notebook execution -------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3  # GitHub-style anchors, so the guide's "#isolation-..." links resolve
nb_execution_mode = "cache"  # jupyter-cache: a notebook runs again only when its code cells change
nb_execution_timeout = 900
nb_execution_raise_on_error = True  # a lesson that fails to run fails the build
nb_execution_show_tb = True
nb_merge_streams = True
# A widget's own output goes through course_site's still (its first frame); the embed scripts MyST-NB would
# load for live widgets come from a CDN, so none are added.
nb_ipywidgets_js = {}
# ipympl figures carry a PNG next to their widget view: show the PNG.
nb_mime_priority_overrides = [("html", "image/png", 5), ("html", "application/vnd.jupyter.widget-view+json", 6)]

# --- HTML --------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = [str(SITE / "_static")]
html_css_files = ["course.css", "clip-explorer.css"]
html_js_files = ["clip-explorer.js"]
html_copy_source = False   # no _sources/: a page's notebook is never offered, only the student version
html_show_sourcelink = False
html_last_updated_fmt = None
# Without a default mode the theme logs a console error on a first visit ("invalid theme mode").
html_context = {"default_mode": "light"}
html_theme_options = {
    "repository_url": f"https://github.com/{links.GITHUB_REPO}",
    "repository_branch": links.BRANCH,
    "use_repository_button": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
