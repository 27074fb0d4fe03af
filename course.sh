#!/usr/bin/env bash
# One entry point for what people do with this repository on their own machine:
#   ./course.sh lab    set up the student environment (.venv) and open JupyterLab on lessons/
#   ./course.sh test   set up the developer environment (.venv-dev) and run the whole test suite
#   ./course.sh site   build the course's website into site/_build/html (lessons executed in fast mode)
#   ./course.sh instructor [COMMAND ...]   set up the instructor environment (.venv-instructor: nbgrader, Dask;
#                      no test tools) and run an autograder command in it, e.g. grade --course DIR
# Each is idempotent: a second run reuses the environment (it is rebuilt only when
# requirements.txt or pyproject.toml change) and starts in seconds.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
DEV_EXTRAS="[instructor,test,bench,site,cluster]"   # nbgrader, test tools, benchmarks, website, Dask: never for students
INSTRUCTOR_EXTRAS="[instructor,cluster]"            # what the instructor guide's commands need, and nothing else
TORCH_CPU="torch==2.13.0"   # a CPU wheel; an unpinned torch pulls a multi-GB CUDA build

die() { echo "course.sh: $*" >&2; exit 2; }

# make_venv DIR EXTRAS: create DIR and install the course into it, unless its stamp is current.
# EXTRAS is "" for the student runtime or e.g. "[instructor,test,bench,site]" for developers.
make_venv() {
    local dir=$1 extras=$2 stamp
    stamp=$(cat requirements.txt pyproject.toml <(echo "$extras") | sha256sum | cut -c1-16)
    if [[ -f "$dir/.course-stamp" && "$(cat "$dir/.course-stamp")" == "$stamp" ]]; then
        return 0
    fi
    echo "course.sh: setting up $dir (once; later runs reuse it)" >&2
    [[ -x "$dir/bin/python" ]] || "$PYTHON" -m venv "$dir" || die "could not create $dir with $PYTHON"
    local pip=("$dir/bin/python" -m pip install -q --disable-pip-version-check)
    # CPU torch first, so nothing later resolves torch to a CUDA build.
    "${pip[@]}" "$TORCH_CPU"
    "${pip[@]}" -r requirements.txt -e ".$extras"
    echo "$stamp" > "$dir/.course-stamp"
}

install_debian_tools() {
    # The test suite needs Debian's chromium (browser tests) and bubblewrap (the autograder's sandbox);
    # CI machines start without them.
    local missing=()
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    command -v bwrap >/dev/null || missing+=(bubblewrap)
    [[ ${#missing[@]} == 0 ]] && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "course.sh: installing ${missing[*]} for the tests" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
            || echo "course.sh: could not install ${missing[*]}; the tests that need them will fail or skip" >&2
    fi
}

ensure_bubblewrap() {
    # Grading runs student code in bubblewrap's sandbox; install it where we can, else say how.
    command -v bwrap >/dev/null && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "course.sh: installing bubblewrap (the grader's sandbox)" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) && return 0
    fi
    echo "course.sh: grading needs bubblewrap (the sandbox): sudo apt-get install bubblewrap" >&2
}

cmd=${1:-help}; shift || true
case "$cmd" in
    lab)
        make_venv .venv ""
        # --no-browser (or COURSE_NO_BROWSER=1) keeps Lab from opening a browser; the URL is printed.
        extra=()
        if [[ "${COURSE_NO_BROWSER:-0}" == 1 ]]; then extra+=(--no-browser); fi
        if [[ $(id -u) == 0 ]]; then extra+=(--allow-root); fi  # containers and CI machines run as root
        exec .venv/bin/jupyter lab --notebook-dir=lessons "${extra[@]}" "$@"
        ;;
    test)
        make_venv .venv-dev "$DEV_EXTRAS"
        install_debian_tools
        # Two pytest-xdist workers: the sandboxed gradings run one after another on one of them while the
        # rest of the suite runs on the other (tests/conftest.py: worker_group). Your own -n (-n 0: none),
        # or --pdb, replaces this.
        workers=(-n 2 --dist loadgroup)
        for arg in "$@"; do
            case "$arg" in -n|-n[0-9]*|--numprocesses*|--pdb|--trace|no:xdist) workers=() ;; esac
        done
        PATH="$PWD/.venv-dev/bin:$PATH" exec .venv-dev/bin/python -m pytest "${workers[@]}" "$@"
        ;;
    site)
        # Same environment as the tests (the site's test builds it too); options go to site/build.py
        # (--out DIR, --clean). A rebuild re-runs only the lessons whose code changed.
        make_venv .venv-dev "$DEV_EXTRAS"
        PATH="$PWD/.venv-dev/bin:$PATH" exec .venv-dev/bin/python site/build.py "$@"
        ;;
    instructor)
        make_venv .venv-instructor "$INSTRUCTOR_EXTRAS"
        ensure_bubblewrap
        if [[ $# -gt 0 ]]; then
            PATH="$PWD/.venv-instructor/bin:$PATH" exec .venv-instructor/bin/python -m ppo_course.autograder "$@"
        fi
        cat <<EOF
course.sh: the instructor environment is ready in .venv-instructor. Run the instructor guide's commands
(autograder/README.md) in it, from this folder, either as
    ./course.sh instructor COMMAND ...              e.g. ./course.sh instructor grade --course ~/ppo-fall
or, after  source .venv-instructor/bin/activate,  as the guide writes them:
    python -m ppo_course.autograder COMMAND ...     (--help on any command explains every option)
EOF
        ;;
    help|-h|--help)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        die "unknown command '$cmd' (use: lab, test, site, instructor, help)"
        ;;
esac
