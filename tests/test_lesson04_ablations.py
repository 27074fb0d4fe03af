"""The numbers lesson 04 quotes about its precomputed experiments (the pitfalls, the entropy bonus on the
sparse chain, reuse, the implementation details) are those of the files it loads, and the files hold what
the package names.

Regenerate them (``ablations.EXPERIMENTS`` has each one's CPU-minutes) with

    python -m ppo_course.ablations solutions/04-ppo-cartpole/ablations.json
    python -m ppo_course.ablations --experiment entropy solutions/04-ppo-cartpole/entropy.json
    python -m ppo_course.ablations --experiment reuse solutions/04-ppo-cartpole/reuse.json
    python -m ppo_course.ablations --experiment details solutions/04-ppo-cartpole/details.json

then set each experiment's ``cpu_minutes``, update the "How to read" cells until this passes, and re-release
lesson 04.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np
import pytest

from ppo_course import ablations
from ppo_course.trainer import SOLVED_AT, PPOConfig

LESSON = Path(__file__).resolve().parents[1] / "solutions" / "04-ppo-cartpole"
LABELS = {"default": "default", "eps": "eps = 0.5", "epochs": "K = 30", "c2": "c2 = 0"}
REUSE = ("K = 1", "K = 4", "K = 10", "no clip")
WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _load(name: str) -> dict[str, dict]:
    return json.loads((LESSON / name).read_text())


def _curves() -> dict[str, dict]:
    curves = _load("ablations.json")
    return {key: next(c for label, c in curves.items() if label.startswith(prefix)) for key, prefix in LABELS.items()}


def _reuse() -> dict[str, dict]:
    return dict(zip(REUSE, _load("reuse.json").values()))


def _markdown(start: str, containing: str = "") -> str:
    """The whitespace-normalised text of the markdown cell that starts with ``start``."""
    nb = nbformat.read(LESSON / "04-ppo-cartpole.ipynb", as_version=4)
    return next(" ".join(c.source.split()) for c in nb.cells
                if c.cell_type == "markdown" and c.source.lstrip().startswith(start) and containing in c.source)


def _median_solve(curve: dict) -> float:
    return float(np.percentile(ablations.steps_to_solve(curve), 50, method="nearest"))


def _solved_at_end(curve: dict) -> int:
    return int((np.array(curve["means"])[:, -1] >= 475).sum())


FILES = {"pitfalls": "ablations.json", "entropy": "entropy.json", "reuse": "reuse.json", "details": "details.json"}


@pytest.mark.parametrize("name", FILES)
def test_the_precomputed_files_hold_the_settings_the_package_names(name):
    experiment, curves = ablations.EXPERIMENTS[name], _load(FILES[name])
    settings = experiment.settings(experiment.base)
    assert list(curves) == list(settings), f"{FILES[name]} holds other settings than the package names: regenerate it"
    for label, changes in settings.items():
        want = replace(experiment.base, **changes)
        assert curves[label]["config"] == {k: getattr(want, k) for k in ablations.RECORDED}, (
            f"{FILES[name]}, {label}: the file was made with another config than ablations.EXPERIMENTS[{name!r}]")
        assert curves[label]["seeds"] == list(range(experiment.seeds)), (FILES[name], label)
        assert len(curves[label]["means"]) == len(curves[label]["cpu_seconds"]) == experiment.seeds, (
            f"{FILES[name]}, {label}: the file must hold one return curve and one CPU time per seed")


@pytest.mark.parametrize("name", FILES)
def test_a_rerun_says_the_cpu_time_the_precomputed_file_took(name):
    measured, said = ablations.total_cpu_minutes(_load(FILES[name])), ablations.EXPERIMENTS[name].cpu_minutes
    assert f"{said:.0f}" == f"{measured:.0f}", (
        f"a rerun of {name} says it takes about {said:.0f} CPU-minutes, but {FILES[name]} took {measured:.1f}: "
        f"set EXPERIMENTS[{name!r}].cpu_minutes to {measured:.1f}")


def test_the_intros_say_how_the_runs_were_made():
    base = PPOConfig()
    intro = _markdown("## ", "The pitfalls, measured")
    assert (f"on {len(ablations.SEEDS)} seeds (0 to {ablations.SEEDS[-1]}, {base.total_steps:,} env steps each)"
            in intro), (
        f"the 'pitfalls, measured' intro must say the runs use {len(ablations.SEEDS)} seeds"
        f" of {base.total_steps:,} env steps")
    reuse_intro = _markdown("## ", "Reuse buys sample efficiency")
    seeds = f"{len(ablations.SEEDS)} seeds (0 to {ablations.SEEDS[-1]})"
    assert f"{seeds} for {base.total_steps:,} env steps" in reuse_intro, (
        f"the 'Reuse buys sample efficiency' intro must say it ran {seeds} for {base.total_steps:,} env steps")
    assert f"$= N \\cdot T$ = {base.num_envs * base.num_steps})" in reuse_intro, (
        f"the reuse intro must give the batch size N * T = {base.num_envs * base.num_steps}")
    chain = ablations.EXPERIMENTS["entropy"]
    chain_intro = _markdown("### Where the entropy bonus matters")
    assert (f"{chain.base.total_steps:,} env steps; one greedy evaluation every {chain.base.eval_every:,} steps"
            in chain_intro and f"ran on {chain.seeds} seeds" in chain_intro), (
        f"the chain's intro must say it ran {chain.seeds} seeds of {chain.base.total_steps:,} env steps")
    details = ablations.EXPERIMENTS["details"]
    details_intro = _markdown("## ", "The implementation details, measured")
    assert (f"on {details.seeds} seeds (0 to {details.seeds - 1}) with a {details.base.total_steps:,}-step budget"
            in details_intro), (
        f"the details intro must say the runs use {details.seeds} seeds of {details.base.total_steps:,} env steps")


def test_quoted_ablation_numbers_come_from_the_precomputed_runs():
    curves, text = _curves(), _markdown("How to read them")
    kl = {k: np.median(c["approx_kl"]) for k, c in curves.items()}
    stays = {k: float(np.mean(ablations.solved_stats(c)[1])) for k, c in curves.items()}
    firsts = {k: float(np.nanmean(ablations.solved_stats(c)[0])) for k, c in curves.items()}
    mean_return = {k: float(np.mean(c["means"])) for k, c in curves.items()}
    final = {k: np.array(c["means"])[:, -1] for k, c in curves.items()}
    # eps = 0.5
    assert (f"about {kl['eps'] / kl['default']:.0f} times the default's "
            f"({kl['eps']:.4f} against {kl['default']:.4f})") in text, (
        f"'How to read them' must quote eps = 0.5's median KL, {kl['eps']:.4f},"
        f" against the default's {kl['default']:.4f}")
    assert f"spikes above {np.floor(np.max(curves['eps']['approx_kl'])):.0f}" in text, (
        f"'How to read them' must say eps = 0.5's KL spikes above {np.floor(np.max(curves['eps']['approx_kl'])):.0f}")
    lowest_eps = min(np.min(np.array(m)[np.argmax(np.array(m) >= 475):]) for m in curves["eps"]["means"])
    assert f"seed down to {lowest_eps:.0f}" in text, (
        f"'How to read them' must say a solved eps = 0.5 seed falls back to {lowest_eps:.0f}")
    assert f"Only {stays['eps']:.0%} of the evaluations" in text, (
        f"'How to read them' must say only {stays['eps']:.0%} of eps = 0.5's later evaluations are solved")
    assert f"against {stays['default']:.0%} for the default" in text, (
        f"'How to read them' must give the default's share of solved later evaluations, {stays['default']:.0%}")
    assert f"its mean return is lower ({mean_return['eps']:.1f} against {mean_return['default']:.1f})" in text, (
        f"'How to read them' must quote eps = 0.5's mean return, {mean_return['eps']:.1f},"
        f" against the default's {mean_return['default']:.1f}")
    # K = 30
    assert f"(median {kl['epochs']:.4f})" in text, (
        f"'How to read them' must quote K = 30's median KL, {kl['epochs']:.4f}")
    assert firsts["epochs"] == min(firsts.values()), "the text says K = 30 first reaches 475 soonest of the four"
    assert f"after {firsts['epochs']:.0f} steps on average, against {firsts['default']:.0f} for the default" in text, (
        f"'How to read them' must say K = 30 first solves after {firsts['epochs']:.0f} steps on average,"
        f" the default after {firsts['default']:.0f}")
    assert f"only {stays['epochs']:.0%} of the later evaluations" in text, (
        f"'How to read them' must say K = 30 solves only {stays['epochs']:.0%} of its later evaluations")
    assert stays["epochs"] == min(stays.values()), "the text calls K = 30 the worst of the four"
    assert (f"mean return ({mean_return['epochs']:.1f}) is well below the default's "
            f"({mean_return['default']:.1f})") in text, (
        f"'How to read them' must quote the mean returns, {mean_return['epochs']:.1f} for K = 30"
        f" and {mean_return['default']:.1f} for the default")
    # the end of the runs
    assert all(final[k].mean() >= 490 for k in curves) and "All four end at or near 500" in text, (
        f"the text says all four end at or near 500; their mean final returns: "
        f"{ {k: round(float(f.mean()), 1) for k, f in final.items()} }")


def test_quoted_entropy_numbers_come_from_the_precomputed_runs():
    curves, text = _curves(), _markdown("How to read them")
    entropy = {k: ablations.mean_between(c) for k, c in curves.items()}
    at_end = {k: np.mean([e[-1] for e in c["entropy"]]) for k, c in curves.items()}
    ent, ref = entropy["c2"], entropy["default"]
    assert ablations.ENTROPY_WINDOW == (20_000, 60_000) and "between 20k and 60k steps" in text, (
        f"the entropy window is {ablations.ENTROPY_WINDOW} steps; the text must say between 20k and 60k steps")
    eps_lower = (entropy["eps"] < ref).sum()
    on = "all" if eps_lower == ref.size else f"{eps_lower} of the"
    assert (f"({entropy['eps'].mean():.2f} nats on average between 20k and 60k steps, against {ref.mean():.2f}, "
            f"lower on {on} {ref.size} seeds)") in text, (
        f"'How to read them' must quote eps = 0.5's entropy, {entropy['eps'].mean():.2f} nats against {ref.mean():.2f}")
    assert f"({ent.mean():.2f} against {ref.mean():.2f} nats, lower on {(ent < ref).sum()} of the {ent.size} seeds" \
        in text, (
        f"'How to read them' must quote c2 = 0's entropy, {ent.mean():.2f} against {ref.mean():.2f} nats,"
        f" lower on {(ent < ref).sum()} of {ent.size} seeds")
    assert f"the seeds overlap: {ent.min():.2f}-{ent.max():.2f} against {ref.min():.2f}-{ref.max():.2f})" in text, (
        f"'How to read them' must quote the seeds' entropy ranges, {ent.min():.2f}-{ent.max():.2f} for c2 = 0"
        f" and {ref.min():.2f}-{ref.max():.2f} for the default")
    assert ent.max() > ref.min(), "the text says the seeds' ranges overlap"
    assert f"({at_end['c2']:.3f} against {at_end['default']:.3f} nats)" in text, (
        f"'How to read them' must quote the final entropy, {at_end['c2']:.3f} for c2 = 0"
        f" against {at_end['default']:.3f}")
    stays = {k: float(np.mean(ablations.solved_stats(c)[1])) for k in ("c2", "default") for c in [curves[k]]}
    mean_return = {k: float(np.mean(curves[k]["means"])) for k in ("c2", "default")}
    assert f"a mean return of {mean_return['c2']:.1f} against {mean_return['default']:.1f}" in text, (
        f"'How to read them' must quote c2 = 0's mean return, {mean_return['c2']:.1f}"
        f" against {mean_return['default']:.1f}")
    assert f"{stays['c2']:.0%} against {stays['default']:.0%} of the later evaluations solved" in text, (
        f"'How to read them' must quote the solved shares, {stays['c2']:.0%} for c2 = 0 against {stays['default']:.0%}")
    per_seed = {k: np.mean(curves[k]["means"], axis=1) for k in ("c2", "default")}
    standard_error = np.sqrt(sum(np.var(m, ddof=1) / m.size for m in per_seed.values()))
    assert abs(mean_return["c2"] - mean_return["default"]) < 2 * standard_error, (
        f"the text says the gap in mean return ({mean_return['c2'] - mean_return['default']:+.1f}) is within the"
        f" seeds' spread, but it is more than twice its standard error ({standard_error:.1f})")
    table = ablations.summarise_entropy(_load("ablations.json"))
    assert f"on {(ent < ref).sum()} of {ent.size} seeds" in table.splitlines()[-1], "the printed table says it too"


def test_quoted_reuse_numbers_come_from_the_precomputed_runs():
    runs, text = _reuse(), _markdown("How to read it", "More reuse, fewer samples")
    median = {k: _median_solve(c) for k, c in runs.items()}
    ended = {k: _solved_at_end(c) for k, c in runs.items()}
    seeds = len(runs["K = 1"]["means"])
    mean_return = {k: float(np.mean(c["means"])) for k, c in runs.items()}
    kl = {k: float(np.median(c["approx_kl"])) for k, c in runs.items()}
    assert min(median, key=median.get) == "K = 10", "the text (and the predict cell's answer) say K = 10 solves soonest"
    assert median["K = 10"] < median["K = 4"] < median["K = 1"] < median["no clip"], (
        f"the text orders the median steps to solve K = 10 < K = 4 < K = 1 < no clip; the runs give {median}")
    assert (f"after {median['K = 1']:.0f} env steps with vanilla policy gradient, {median['K = 4']:.0f} with $K = 4$ "
            f"and {median['K = 10']:.0f} with $K = 10$") in text, (
        f"'How to read it' must quote the median steps to solve: {median['K = 1']:.0f} for K = 1,"
        f" {median['K = 4']:.0f} for K = 4 and {median['K = 10']:.0f} for K = 10")
    share_solved = (np.array(runs["K = 1"]["means"]) >= 475).mean(axis=0)
    assert share_solved.max() < 1 and "At no evaluation are all of its seeds solved at once" in text, (
        f"the text says vanilla PG never has all its seeds solved at once; at best {share_solved.max():.0%} are")
    assert ended["K = 4"] == ended["K = 10"] == seeds > ended["K = 1"], (
        f"the text says K = 4 and K = 10 end solved on all {seeds} seeds and K = 1 on fewer;"
        f" seeds solved at the end: {ended}")
    assert f"only {ended['K = 1']} of its {seeds} seeds ends solved, against all {seeds} for" in text, (
        f"'How to read it' must say only {ended['K = 1']} of {seeds} vanilla-PG seeds are still solved at the end")
    assert (f"its mean return is {mean_return['K = 1']:.1f} against {mean_return['K = 4']:.1f} "
            f"and {mean_return['K = 10']:.1f}") in text, (
        f"'How to read it' must quote the mean returns {mean_return['K = 1']:.1f} (K = 1),"
        f" {mean_return['K = 4']:.1f} (K = 4) and {mean_return['K = 10']:.1f} (K = 10)")
    assert (f"(a median approximate KL of {kl['K = 1']:.4f} per update, about {kl['K = 4'] / kl['K = 1']:.0f}x less "
            f"than the {kl['K = 4']:.4f} of $K = 4$)") in text, (
        f"'How to read it' must quote vanilla PG's median KL {kl['K = 1']:.4f} against K = 4's {kl['K = 4']:.4f}")
    assert f"(a median KL of {kl['K = 4']:.4f} and {kl['K = 10']:.4f})" in text, (
        f"'How to read it' must quote the median KLs of K = 4 and K = 10, {kl['K = 4']:.4f} and {kl['K = 10']:.4f}")


def test_quoted_no_clip_and_cost_numbers_come_from_the_precomputed_runs():
    runs, text = _reuse(), _markdown("How to read it", "More reuse, fewer samples")
    kl = {k: float(np.median(c["approx_kl"])) for k, c in runs.items()}
    largest = {k: float(np.max(c["approx_kl"])) for k, c in runs.items()}
    assert (f"the median KL per update is {kl['no clip'] / kl['K = 10']:.1f}x the clipped one "
            f"({kl['no clip']:.4f} against {kl['K = 10']:.4f})") in text, (
        f"'How to read it' must quote the no-clip median KL {kl['no clip']:.4f} against the clipped {kl['K = 10']:.4f}")
    assert f"the largest single update reaches {largest['no clip']:.3g} against {largest['K = 10']:.3g}" in text, (
        f"'How to read it' must quote the largest single-update KLs, {largest['no clip']:.3g} without the clip"
        f" and {largest['K = 10']:.3g} with it")
    last = np.array(runs["no clip"]["means"])[:, -1]
    collapsed = last[last < 20]
    assert f"On {WORDS[collapsed.size]} seeds the policy collapses" in text, (
        f"'How to read it' must say the policy collapses on {collapsed.size} seeds")
    assert collapsed.max() < 10 and "(a last greedy return below 10)" in text, (
        f"the text says the collapsed seeds' last greedy return is below 10; they are {collapsed}")
    entropy = {k: np.mean([e[-1] for e in c["entropy"]]) for k, c in runs.items()}
    assert (f"entropy at the end averages {entropy['no clip']:.3f}, "
            f"against {entropy['K = 10']:.3f} with the clip") in text, (
        f"'How to read it' must quote the final entropy, {entropy['no clip']:.3f} without the clip"
        f" and {entropy['K = 10']:.3f} with it")
    seeds = len(last)
    assert (f"The median seed takes {_median_solve(runs['no clip']):.0f} steps to first solve, and only "
            f"{_solved_at_end(runs['no clip'])} of {seeds} seeds end solved") in text, (
        f"'How to read it' must quote no clip's median steps to first solve ({_median_solve(runs['no clip']):.0f})"
        f" and its {_solved_at_end(runs['no clip'])} of {seeds} seeds solved at the end")
    seconds = {k: np.mean(c["cpu_seconds"]) for k, c in runs.items()}
    assert f"run took {seconds['K = 10']:.1f} CPU seconds against {seconds['K = 1']:.1f} for $K = 1$" in text, (
        f"'How to read it' must quote the CPU seconds per run, {seconds['K = 10']:.1f} for K = 10"
        f" and {seconds['K = 1']:.1f} for K = 1")



def test_quoted_entropy_task_numbers_come_from_the_precomputed_runs():
    chain, text = _load("entropy.json"), _markdown("How to read it", "gets the reward at the last evaluation")
    threshold = SOLVED_AT[ablations.EXPERIMENTS["entropy"].base.env_id]
    ends = {label: np.array(c["means"])[:, -1] >= threshold for label, c in chain.items()}
    ever = {label: (np.array(c["means"]) >= threshold).any(axis=1) for label, c in chain.items()}
    none, default, large = ends.values()   # the order of ablations.ENTROPY_SETTINGS
    n = len(none)
    assert f"**No bonus**: {none.sum()} of the {n} seeds get there. On the other {n - none.sum()}" in text, (
        f"the text must say {none.sum()} of {n} seeds solve the chain without the bonus")
    assert (f"{default.sum()} of {n}, no better than none (it solves {(default & ~none).sum()} seeds that no bonus "
            f"does not, and misses {(none & ~default).sum()} that no bonus solves)") in text
    assert default.sum() <= none.sum(), (
        f"the text must say c2 = 0.01 solves {default.sum()} of {n}, no better than no bonus ({none.sum()})")
    assert (f"**$c_2 = 0.05$**: {large.sum()} of {n}. It gets the reward on {(large & ~none).sum()} seeds where no "
            "bonus does not, and never the other way round") in text and not (none & ~large).any(), (
        f"the text must say c2 = 0.05 solves {large.sum()} of {n}, {(large & ~none).sum()} seeds more, none fewer")
    medians = [ablations.median(ablations.steps_to_solve(c, threshold).tolist()) for c in chain.values()]
    assert (f"its median seed first solves after {medians[2]:.0f} env steps, against {medians[0]:.0f} with no bonus "
            f"and {medians[1]:.0f} with the default's") in text, f"the text must quote the first solves {medians}"
    stuck = {label: np.mean([e[-1] for e, got in zip(c["entropy"], ever[label]) if not got])
             for label, c in chain.items()}
    first, second, _ = stuck
    assert f"(their entropy averages {stuck[first]:.2f} nats at the end" in text, (
        f"the text must quote the stuck seeds' final entropy without the bonus, {stuck[first]:.2f}")
    assert f"({stuck[second]:.2f} nats at the end on average)" in text, (
        f"the text must quote the stuck seeds' final entropy with c2 = 0.01, {stuck[second]:.2f}")


def test_the_details_text_says_which_details_matter_and_quotes_the_table():
    rows, text = ablations.compare_details(_load("details.json")), _markdown("How to read it: on CartPole")
    verdicts = {label: row["verdict"] for label, row in rows.items()}
    hurts = {label for label, v in verdicts.items() if v == "hurts"}
    assert hurts == {"constant learning rate", "value loss clipped"}, (
        f"the text says a constant learning rate and value-loss clipping hurt, and nothing else; verdicts: {verdicts}")
    assert "helps" not in verdicts.values(), f"the text says no change helps; verdicts: {verdicts}"
    no_clear = {"advantages not normalised", "advantages normalised per batch", "torch's default init",
                "Adam eps = 1e-8 (torch's default)", "no gradient clipping"}
    assert all(verdicts[label] == "no clear effect" for label in no_clear | {"early stop at KL 0.01"}), verdicts

    def cell(label, metric):
        c = rows[label][metric]
        return f"{c['ratio']:.2f}x", f"[{c['low']:.2f}, {c['high']:.2f}]", c["better"], c["worse"]

    ratio, interval, _, later = cell("constant learning rate", "stays solved from")
    assert f"stays solved only from {ratio} the default's step {interval}, later on {later} of the 16 seeds" in text
    assert f"as soon as the default ({cell('constant learning rate', 'first solve')[0]} its steps" in text
    ratio, interval, _, later = cell("value loss clipped", "stays solved from")
    assert f"stays solved from {ratio} the default's step {interval}, later on {later} seeds" in text
    ratio, interval, _, _ = cell("value loss clipped", "mean return")
    assert f"lowers the mean return to {ratio} {interval}" in text
    ratio, interval, _, lower = cell("early stop at KL 0.01", "mean return")
    assert f"a mean return of {ratio} the default's {interval}, lower on {lower} of the 16 seeds" in text
    ratio, interval, _, _ = cell("early stop at KL 0.01", "stays solved from")
    assert f"staying solved from {ratio} its step {interval}" in text
    returns = [rows[label]["mean return"]["ratio"] for label in no_clear]
    assert f"within {min(returns):.2f}x to {max(returns):.2f}x of the default's" in text, (
        f"the text must give the no-clear-effect rows' mean returns, {min(returns):.2f} to {max(returns):.2f}")

def test_the_reuse_command_runs(tmp_path, capsys):
    out = tmp_path / "reuse.json"
    ablations.main(["--experiment", "reuse", "--seeds", "1", "--total-steps", "2048", str(out)])
    curves = json.loads(out.read_text())
    assert list(curves) == list(ablations.reuse_settings()), (
        f"the reuse command wrote the settings {list(curves)}, not those of ablations.reuse_settings()")
    assert curves["K = 1, whole batch (vanilla PG)"]["config"]["minibatch_size"] == 256, (
        f"vanilla PG must take the whole batch of 256 as its minibatch, not"
        f" {curves['K = 1, whole batch (vanilla PG)']['config']['minibatch_size']}")
    table = ablations.summarise_reuse(curves)
    assert "whole batch" in table and "no clip" in table, (
        f"the reuse summary must name the whole-batch and no-clip settings:\n{table}")
    assert "4 settings x 1 seeds" in capsys.readouterr().out, (
        "the reuse command must print that it ran 4 settings x 1 seeds")
