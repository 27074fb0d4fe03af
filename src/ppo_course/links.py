"""Where the course lives online: the one place the repository's address is written in code."""
GITHUB_REPO = "ppo-course/ppo-from-first-principles"
BRANCH = "main"
PACKAGE_SPEC = f"git+https://github.com/{GITHUB_REPO}@{BRANCH}"


def colab_url(path: str) -> str:
    """The "Open in Colab" address of a notebook at ``path`` (relative to the repository root)."""
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{BRANCH}/{path}"


def binder_url(path: str = "lessons") -> str:
    return f"https://mybinder.org/v2/gh/{GITHUB_REPO}/{BRANCH}?urlpath=lab/tree/{path}"
