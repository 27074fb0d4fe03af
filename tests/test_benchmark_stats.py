"""The statistics the SB3 benchmarks print under their table (benchmarks/versus_sb3.py): the paired bootstrap
interval of an ours/SB3 ratio of medians, and the per-seed counts."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from versus_sb3 import Task, bootstrap_ratio, load_saved_runs, median, paired_counts  # noqa: E402

SB3_STEPS = [18432, 22528, 30720, 14336, 24576, 59392, 16384, 20480]


def test_the_resampling_is_paired_by_seed():
    """Ours at exactly half of SB3 on every seed is 0.5 in every resample of the seeds, so the interval is
    the point. Resampling each side on its own (unpaired) would mix seeds and widen it."""
    assert bootstrap_ratio([s / 2 for s in SB3_STEPS], SB3_STEPS) == (0.5, 0.5)


def test_the_interval_holds_the_ratio_of_medians_and_narrows_with_more_seeds():
    ours = [6144, 30720, 8192, 12288, 10240, 43008, 6144, 20480]
    low, high = bootstrap_ratio(ours, SB3_STEPS)
    point = (sorted(ours)[3] + sorted(ours)[4]) / (sorted(SB3_STEPS)[3] + sorted(SB3_STEPS)[4])
    assert low < point < high, f"the interval ({low}, {high}) does not hold the ratio of medians {point}"
    low4, high4 = bootstrap_ratio(ours * 4, SB3_STEPS * 4)
    assert low <= low4 and high4 <= high and high4 - low4 < high - low, (
        f"four times the seeds gave ({low4}, {high4}), not narrower than ({low}, {high})")
    assert bootstrap_ratio(ours, SB3_STEPS) == (low, high), "the interval is not repeatable (seeded)"
    wider = bootstrap_ratio(ours, SB3_STEPS, level=0.99)
    assert wider[0] <= low and high <= wider[1], f"the 99% interval {wider} is inside the 95% one"


def test_a_run_that_never_got_there_counts_as_infinitely_slow():
    assert bootstrap_ratio([None] * 4, [1.0, 2.0, 3.0, 4.0]) == (float("inf"), float("inf"))
    assert bootstrap_ratio([1.0, 2.0, 3.0, 4.0], [None] * 4) == (0.0, 0.0)
    assert bootstrap_ratio([None] * 3, [None] * 3) == (float("inf"), float("inf")), (
        "neither side getting there must count against ours, not as a ratio of 1 or nan")


@pytest.mark.parametrize("ours, sb3, expected", [
    ([1, 2, 3], [2, 2, 2], (1, 1)),
    ([None, 5, 9], [4, None, 9], (1, 1)),   # never is slower than any step; a tie counts in neither
    ([None, None], [None, 3], (0, 1)),
])
def test_paired_counts(ours, sb3, expected):
    assert paired_counts(ours, sb3) == expected


TASK = Task("CartPole-v1", threshold=475.0, eval_every=2048)


def saved_runs(path, seeds: dict[str, list[int]], env_id: str = "CartPole-v1") -> str:
    """A file as ``--out`` writes it: each seed solves at step 2048 * (seed % 5 + 1) and stays solved."""
    def run(seed):
        evals = [{"step": 2048 * k, "mean": 500.0 if k > seed % 5 else 100.0, "train_seconds": k,
                  "train_cpu_seconds": k} for k in range(1, 8)]
        return {"seed": seed, "evals": evals, "train_seconds": 7.0, "steps": 7 * 2048}
    path.write_text(json.dumps({"env_id": env_id, "threshold": 475.0, "eval_every": 2048, "eval_episodes": 20,
                                "budget": 7 * 2048, "runs": {n: [run(s) for s in ss] for n, ss in seeds.items()}}))
    return str(path)


def test_saved_runs_from_several_files_pool_by_seed(tmp_path):
    both = saved_runs(tmp_path / "all.json", {"ours": [3, 1, 2, 4], "SB3 zoo": [4, 3, 2, 1]})
    first = saved_runs(tmp_path / "a.json", {"ours": [3, 1], "SB3 zoo": [1, 3]})
    second = saved_runs(tmp_path / "b.json", {"ours": [2, 4], "SB3 zoo": [4, 2]})
    pooled = load_saved_runs([first, second], TASK)
    assert pooled == load_saved_runs([both], TASK)
    assert [r["steps"] for r in pooled["ours"]] == [4096, 6144, 8192, 10240], "not in seed order"
    assert pooled["ours"] == pooled["SB3 zoo"], "the two sides are not paired by seed"


@pytest.mark.parametrize("files, message", [
    ([{"ours": [1, 2], "SB3 zoo": [1, 2]}, {"ours": [2], "SB3 zoo": [2]}], "seed 2 of ours is in an earlier file"),
    ([{"ours": [1, 2], "SB3 zoo": [1, 3]}], "same seeds"),
    ([{"ours": [1, 2]}], "same seeds"),
])
def test_saved_runs_that_do_not_pair_are_refused(tmp_path, files, message):
    paths = [saved_runs(tmp_path / f"{i}.json", seeds) for i, seeds in enumerate(files)]
    with pytest.raises(ValueError, match=message):
        load_saved_runs(paths, TASK)


def test_a_file_of_another_task_or_no_runs_is_refused(tmp_path):
    pendulum = saved_runs(tmp_path / "p.json", {"ours": [1], "SB3 zoo": [1]}, env_id="Pendulum-v1")
    (tmp_path / "bad.json").write_text("{")
    for path, message in ((pendulum, "runs of Pendulum-v1"), (str(tmp_path / "bad.json"), "not a file of runs"),
                          (str(tmp_path / "missing.json"), "not a file of runs")):
        with pytest.raises(ValueError, match=message):
            load_saved_runs([path], TASK)


SAVED = [f"benchmarks/results/cartpole_{seeds}.json" for seeds in ("70_87", "88_105")]
#: ours re-run after issue 33 on another machine, SB3's runs taken from SAVED (--sb3-from)
RERUN = [f"benchmarks/results/cartpole_{seeds}_issue33.json" for seeds in ("70_87", "88_105")]
README = REPO / "benchmarks" / "README-trainer.md"


@pytest.mark.parametrize("files", [SAVED, RERUN], ids=["saved", "rerun"])
def test_the_trainer_readme_quotes_the_table_of_the_saved_runs(files):
    command = [sys.executable, "benchmarks/bench_trainer.py", "--from-json", *files]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in README.read_text(), (
        f"README-trainer.md does not quote what `{' '.join(command[1:])}` prints:\n{result.stdout}")


def test_the_rerun_took_sb3s_runs_from_the_saved_files_unchanged():
    for rerun, saved in zip(RERUN, SAVED):
        new, old = (json.loads((REPO / path).read_text()) for path in (rerun, saved))
        assert new["runs"]["SB3 zoo"] == old["runs"]["SB3 zoo"], f"{rerun}: SB3's runs differ from {saved}'s"
        assert new["budget"] == {"ours": 50048, "SB3 zoo": 100000}, f"{rerun}: budgets {new['budget']}"


def test_the_trainer_readme_intervals_come_from_the_saved_runs():
    runs = load_saved_runs([str(REPO / path) for path in SAVED], TASK)
    seed_sets = {"70-77": range(70, 78), "80-87": range(80, 88), "90-105": range(90, 106),
                 "the 32 of the earlier runs": [s for s in range(70, 106) if s not in (78, 79, 88, 89)],
                 "all 36": range(70, 106)}
    readme = README.read_text().replace("**", "")
    for label, seeds in seed_sets.items():
        cells = []
        for key in ("stays", "steps"):
            ours, sb3 = ([side[seed - 70][key] for seed in seeds] for side in runs.values())
            low, high = bootstrap_ratio(ours, sb3)
            cells.append(f"{median(ours) / median(sb3):.2f} [{low:.2f}, {high:.2f}]")
            if key == "stays":
                cells.append("{} / {}".format(*paired_counts(ours, sb3)))
        row = f"| {label} | {' | '.join(cells)} |"
        assert row in readme, f"README-trainer.md's interval table lacks the row computed from the saved runs: {row}"
