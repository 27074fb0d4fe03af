"""What the benchmarks against Stable-Baselines3 share (bench_trainer.py on CartPole, bench_pendulum.py
on Pendulum): training each side with one evaluation function, summarising a run, running seeds
interleaved, and printing the comparison. Each script keeps only its task's settings and table.

Both sides run on the CPU with the given torch threads. Each is evaluated after every
``eval_every`` env steps, after that rollout's update (SB3: when the next rollout starts), and once
more after its last update, by ``ppo_course.trainer.evaluate_greedy``; the evaluation time is
excluded from the wall-clock and process-CPU seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ppo_course.stats import bootstrap_ratio, median, paired_counts
from ppo_course.trainer import PPOConfig, Stopwatch, TrainResult, evaluate_greedy, train


@dataclass(frozen=True)
class Task:
    env_id: str
    threshold: float     # a greedy mean at or above it counts as reached (solved)
    eval_every: int      # env steps between evaluations
    eval_episodes: int = 20
    goal: str = "solve"  # the table's word for reaching the threshold ("seeds reaching -200" when "reaching -200")


def benchmark_parser(doc: str, tuned_on: str) -> argparse.ArgumentParser:
    """The options every benchmark takes (--seeds, --first-seed, --budget); ``tuned_on`` names the seeds the
    settings were chosen on, so that a reader picks others."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help=f"seeds are FIRST..FIRST+N-1 (default 0; tuned on {tuned_on})")
    parser.add_argument("--budget", type=int, default=None,
                        help="env steps per run for both sides (default: each its own: ours the total_steps of "
                             "PPOConfig.for_env, over which its learning rate decays; SB3 the RL Zoo's n_timesteps)")
    parser.add_argument("--out", default=None, help="also write every run's evaluations to this JSON file")
    parser.add_argument("--from-json", nargs="+", metavar="FILE", default=None,
                        help="train nothing: print the table of runs saved with --out (several files pool their seeds)")
    parser.add_argument("--sb3-from", nargs="+", metavar="FILE", default=None,
                        help="train only ours; take SB3's runs of the same seeds from files saved with --out (its "
                             "step counts repeat exactly; its seconds are those of the day it ran)")
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser, task: Task, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.seeds < 1 or (args.budget is not None and args.budget < task.eval_every):
        parser.error(f"--seeds must be >= 1 and --budget >= {task.eval_every}")
    try:
        if args.from_json:
            args.saved = load_saved_runs(args.from_json, task)
        if args.sb3_from:
            seeds = range(args.first_seed, args.first_seed + args.seeds)
            args.sb3_runs = saved_side(args.sb3_from, task, SB3, seeds, args.budget)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def saved_schedule(task: Task) -> dict:
    """What a file of saved runs records of its task, and what ``--from-json`` checks it against."""
    return {"env_id": task.env_id, "threshold": task.threshold, "eval_every": task.eval_every,
            "eval_episodes": task.eval_episodes}


#: the two sides' names, in the saved files and the table
OURS, SB3 = "ours", "SB3 zoo"


def read_saved_runs(paths: list[str], task: Task) -> tuple[dict[str, dict[int, dict]], dict[str, int]]:
    """Every run saved with ``--out`` in ``paths``, per side and seed, and each side's budget (env steps).
    Raises ValueError (one line) for a file that is unreadable, of another task or evaluation schedule, that
    repeats a seed, or whose runs do not say which seed they are."""
    runs: dict[str, dict[int, dict]] = {}
    budgets: dict[str, int] = {}
    for path in paths:
        try:
            with open(path) as f:
                saved = json.load(f)
            schedule = {key: saved[key] for key in saved_schedule(task)}
            if schedule != saved_schedule(task):
                raise ValueError(f"runs of {schedule['env_id']} ({schedule}), not of this benchmark's {task.env_id}")
            for name, side in saved["runs"].items():
                budget = saved["budget"][name] if isinstance(saved["budget"], dict) else saved["budget"]
                if budgets.setdefault(name, budget) != budget:
                    raise ValueError(f"{name} ran {budget} env steps here, {budgets[name]} in an earlier file")
                for run in side:
                    if run["seed"] in runs.setdefault(name, {}):
                        raise ValueError(f"seed {run['seed']} of {name} is in an earlier file too")
                    summarise(run, task.threshold)   # refuses a run without evaluations
                    runs[name][run["seed"]] = run
        except (OSError, json.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"{path}: not a file of runs saved with --out ({exc!r})") from None
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return runs, budgets


def load_saved_runs(paths: list[str], task: Task) -> dict[str, list[dict]]:
    """The summaries, per side and in seed order, of runs saved with ``--out``; several files' seeds are pooled.
    Raises ValueError (one line) as ``read_saved_runs`` does, and where the two sides did not run the same seeds."""
    runs, _ = read_saved_runs(paths, task)
    seeds = {name: sorted(side) for name, side in runs.items()}
    if len(seeds) != 2 or len({tuple(s) for s in seeds.values()}) != 1:
        raise ValueError(f"the files must hold ours and SB3 on the same seeds; they hold {seeds}")
    return {name: [summarise(side[seed], task.threshold) for seed in sorted(side)] for name, side in runs.items()}


def saved_side(paths: list[str], task: Task, name: str, seeds: range,
               budget: int | None) -> tuple[dict[int, dict], int]:
    """One side's saved runs of ``seeds`` (what ``--sb3-from`` reuses) and the budget they ran; ValueError (one
    line) where a seed is missing or they ran another budget than ``budget`` (when given)."""
    runs, budgets = read_saved_runs(paths, task)
    missing = [seed for seed in seeds if seed not in runs.get(name, {})]
    if missing:
        raise ValueError(f"the files hold no {name} run of seeds {missing}")
    if budget is not None and budgets[name] != budget:
        raise ValueError(f"the files' {name} runs ran {budgets[name]} env steps, not --budget {budget}")
    return {seed: runs[name][seed] for seed in seeds}, budgets[name]


def comparison_fields(task: Task, seconds: str, extra: list | None = None) -> list:
    """The table's rows: seeds that reached the threshold; median wall-clock, CPU seconds and env steps to it
    (``seconds`` formats the seconds); ``extra`` rows; the final greedy mean, the seeds that ended at or above
    the threshold, and training steps per second."""
    to = "to solve" if task.goal == "solve" else f"to {task.threshold:g}"
    return [count_field("seeds solved" if task.goal == "solve" else f"seeds {task.goal}", lambda r: r["reached"]),
            median_field(f"wall s {to}", "wall", seconds),
            median_field(f"CPU s {to}", "cpu", seconds),
            median_field(f"steps {to}", "steps", ".0f"),
            *(extra or []),
            median_field("final greedy mean", "final", ".1f"),
            count_field(f"final >= {task.threshold:g}", lambda r: r["final"] >= task.threshold),
            median_field("training SPS", "sps", ".0f")]


def comparison_ratios(task: Task, extra: list | None = None) -> list[tuple[str, str]]:
    """The ours/SB3 ratios printed under the table (labels as in ``comparison_fields``)."""
    to = "to solve" if task.goal == "solve" else f"to {task.threshold:g}"
    return [(f"wall s {to}", "wall"), (f"CPU s {to}", "cpu"), (f"steps {to}", "steps"), *(extra or []),
            ("training SPS", "sps")]


def ours_config(task: Task, seed: int, budget: int | None, threads: int) -> PPOConfig:
    """Our trainer's config: the task's defaults (``PPOConfig.for_env``, its own budget unless ``budget``),
    evaluated as the task says."""
    return PPOConfig.for_env(task.env_id, seed=seed, device="cpu", torch_threads=threads, eval_every=task.eval_every,
                             eval_episodes=task.eval_episodes, **({} if budget is None else {"total_steps": budget}))


def run_ours(task: Task, seed: int, budget: int | None, threads: int) -> dict:
    """One run of our trainer with ``ours_config``."""
    return as_run(train(ours_config(task, seed, budget, threads)))


def as_run(result: TrainResult) -> dict:
    """Our trainer's result as the run ``summarise`` reads: evaluations, training seconds, env steps."""
    return {"evals": result.evals, "train_seconds": result.logs[-1]["train_seconds"], "steps": result.logs[-1]["step"]}


class _SB3Greedy:
    """Adapts an SB3 model to ``evaluate_greedy``'s interface (``greedy(obs) -> actions``: the mode or mean)."""

    def __init__(self, model):
        self.model = model

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        return self.model.predict(obs, deterministic=True)[0]


def run_sb3(task: Task, seed: int, budget: int, threads: int, n_envs: int, **ppo_kwargs) -> dict:
    """Stable-Baselines3's PPO with ``ppo_kwargs`` (the RL Zoo's settings for the task)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(threads)

    class Evaluate(BaseCallback):
        def _on_training_start(self) -> None:
            self.clock, self.evals = Stopwatch(), []

        def evaluate(self) -> None:
            self.clock.pause()
            returns = evaluate_greedy(_SB3Greedy(self.model), task.env_id, task.eval_episodes, seed=seed + 10_000)
            self.evals.append({"step": self.num_timesteps, "mean": float(returns.mean()),
                               "train_seconds": self.clock.wall, "train_cpu_seconds": self.clock.cpu})
            self.clock.resume()

        def _on_rollout_start(self) -> None:   # i.e. after the previous rollout's update, as ours evaluates
            if self.num_timesteps and self.num_timesteps % task.eval_every == 0:
                self.evaluate()

        def _on_step(self) -> bool:
            return True

    env = make_vec_env(task.env_id, n_envs=n_envs, seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ppo_kwargs)
    callback = Evaluate()
    model.learn(total_timesteps=budget, callback=callback)
    if not callback.evals or callback.evals[-1]["step"] != model.num_timesteps:
        callback.evaluate()   # after the last update
    callback.clock.pause()
    return {"evals": callback.evals, "train_seconds": callback.clock.wall, "steps": model.num_timesteps}


def summarise(run: dict, threshold: float) -> dict:
    """The first evaluation at or above ``threshold`` (its step, wall and CPU seconds), the step from which
    every later evaluation stays there, the final greedy mean and the training steps per second."""
    evals = run["evals"]
    first = next((e for e in evals if e["mean"] >= threshold), None)
    stays = next((evals[i]["step"] for i in range(len(evals)) if all(e["mean"] >= threshold for e in evals[i:])), None)
    return {"reached": first is not None, "steps": first and first["step"], "wall": first and first["train_seconds"],
            "cpu": first and first["train_cpu_seconds"], "stays": stays, "final": evals[-1]["mean"],
            "sps": run["steps"] / run["train_seconds"]}


def median_range(values: list, fmt: str) -> str:
    """'median [min, max]' over the runs that got there, and how many never did."""
    got = [v for v in values if v is not None]
    if not got:
        return "never"
    text = f"{format(statistics.median(got), fmt)} [{format(min(got), fmt)}, {format(max(got), fmt)}]"
    return text + (f" ({len(values) - len(got)} never)" if len(got) < len(values) else "")


def median_field(label: str, key: str, fmt: str) -> tuple[str, Callable[[list[dict]], str]]:
    """A table row: ``key``'s median [min, max] over one side's summaries."""
    return label, lambda summaries: median_range([r[key] for r in summaries], fmt)


def count_field(label: str, counts: Callable[[dict], bool]) -> tuple[str, Callable[[list[dict]], str]]:
    """A table row: how many of one side's summaries ``counts``."""
    return label, lambda summaries: f"{sum(bool(counts(r)) for r in summaries)}/{len(summaries)}"


def run_interleaved(task: Task, seeds: range, runners: dict[str, Callable[[int], dict]], budgets: dict[str, int],
                    out: str | None = None) -> dict[str, list[dict]]:
    """Each seed's runs, ours then SB3 on even seeds and the other way round on odd ones, so that the
    machine's load hits both alike; one line per run as it ends. With ``out``, every run's evaluations and
    each side's budget go to that JSON file, rewritten after each run so that a benchmark cut short keeps
    what it measured."""
    rows: dict[str, list[dict]] = {name: [] for name in runners}
    raw: dict[str, list[dict]] = {name: [] for name in runners}
    reached = "solved" if task.goal == "solve" else f"reached {task.threshold:g}"
    for seed in seeds:
        for name in (list(runners) if seed % 2 == 0 else list(runners)[::-1]):
            run = runners[name](seed)
            summary = summarise(run, task.threshold)
            rows[name].append(summary)
            raw[name].append({"seed": seed, **run})
            when = (f"{reached} @ {summary['steps']} steps in {summary['wall']:.2f} s;"
                    f" stays from {summary['stays'] or 'never'}" if summary["reached"] else f"never {reached}")
            print(f"seed {seed:3d} {name:8s} {when}; final {summary['final']:.1f}; sps {summary['sps']:.0f}",
                  flush=True)
            if out:
                with open(out, "w") as f:
                    json.dump({**saved_schedule(task), "budget": budgets, "runs": raw}, f)
    return rows


def print_comparison(rows: dict[str, list[dict]], fields: list[tuple[str, Callable[[list[dict]], str]]],
                     ratios: list[tuple[str, str]], width: int = 36) -> None:
    """One row per field (median [min, max] over seeds, for each side), then ours/SB3 of the medians, each with
    its paired bootstrap interval and on how many seeds ours is lower and higher."""
    names = list(rows)
    print(f"{'median [min, max]':<22}" + "".join(f"{n:>{width}}" for n in names))
    for label, show in fields:
        print(f"{label:<22}" + "".join(f"{show(rows[n]):>{width}}" for n in names))
    ours, sb3 = rows[names[0]], rows[names[1]]
    for label, key in ratios:
        a, b = [r[key] for r in ours], [r[key] for r in sb3]
        median_a, median_b = median(a), median(b)
        if median_a == median_b == float("inf"):
            print(f"ratio ours/SB3, median {label}: none (neither median got there)")
            continue
        low, high = bootstrap_ratio(a, b)
        below, above = paired_counts(a, b)
        print(f"ratio ours/SB3, median {label}: {median_a / median_b:.2f} (95% CI {low:.2f}-{high:.2f};"
              f" per seed, ours lower on {below} of {len(a)}, higher on {above})")


def run_benchmark(task: Task, args: argparse.Namespace, *, ours_threads: int, sb3_threads: int, zoo: dict,
                  zoo_n_envs: int, zoo_budget: int, fields: list, ratios: list, width: int = 36) -> None:
    """A benchmark's whole run: with ``--from-json`` the table of the saved runs ``parse_benchmark_args``
    loaded; otherwise our trainer (the task's defaults) and SB3 with the RL Zoo's settings (``zoo``, on
    ``zoo_n_envs`` envs, ``zoo_budget`` env steps) on the seeds, interleaved (``run_interleaved``), or with
    ``--sb3-from`` SB3's saved runs of the seeds; then the footer and the table."""
    if args.from_json:
        print(f"{len(next(iter(args.saved.values())))} seeds, runs saved in {' '.join(args.from_json)}\n")
        print_comparison(args.saved, fields, ratios, width)
        return
    seeds, started = range(args.first_seed, args.first_seed + args.seeds), time.time()
    budgets = {OURS: ours_config(task, seeds[0], args.budget, ours_threads).total_steps, SB3: args.budget or zoo_budget}
    runners = {OURS: lambda seed: run_ours(task, seed, args.budget, ours_threads)}
    if args.sb3_from:
        saved, budgets[SB3] = args.sb3_runs
        runners[SB3] = saved.__getitem__
    else:
        runners[SB3] = lambda seed: run_sb3(task, seed, budgets[SB3], sb3_threads, zoo_n_envs, **zoo)
    rows = run_interleaved(task, seeds, runners, budgets, out=args.out)
    print(footer(seeds, budgets, task, started, sb3_from=args.sb3_from))
    print_comparison(rows, fields, ratios, width)


def footer(seeds: range, budgets: dict[str, int], task: Task, started: float, sb3_from: list[str] | None = None) -> str:
    sb3 = f"SB3's runs read from {' '.join(sb3_from)}" if sb3_from else "both trained here"
    return (f"\n{len(seeds)} seeds ({seeds[0]}-{seeds[-1]}), budget {budgets[OURS]} env steps (ours) and {budgets[SB3]}"
            f" (SB3), eval every {task.eval_every} steps x {task.eval_episodes} greedy episodes (excluded from time);"
            f" {sb3}; torch {torch.__version__}, {time.time() - started:.0f} s in all\n")
