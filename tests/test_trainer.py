"""The reference trainer, its episode-end handling, device selection and the CLI (all fast, CPU)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from ppo_course import trainer
from ppo_course.agent import ActorCritic
from ppo_course.device import select_device
from ppo_course.gae import compute_gae
from ppo_course.train import main as cli_main
from ppo_course.trainer import PPOConfig, Rollout, train

SHORT = dict(total_steps=2048, eval_every=1024, eval_episodes=4, device="cpu")


def test_same_seed_same_curve_and_other_seed_differs():
    a, b, c = train(PPOConfig(seed=3, **SHORT)), train(PPOConfig(seed=3, **SHORT)), train(PPOConfig(seed=4, **SHORT))
    keys = ("step", "approx_kl", "clip_fraction", "explained_variance", "entropy", "episode_return")
    assert [[row[k] for k in keys] for row in a.logs] == [[row[k] for k in keys] for row in b.logs], (
        "the same seed gave a different training log: something in the trainer is not seeded")
    assert a.evals and [e["mean"] for e in a.evals] == [e["mean"] for e in b.evals], (
        "the same seed gave different greedy evaluations (or none were recorded)")
    assert a.episodes == b.episodes, "the same seed gave different episodes"
    assert a.episodes != c.episodes, (
        "seeds 3 and 4 gave the same episodes: the seed is not reaching the envs or the policy")


def test_learns_cartpole_quickly():
    result = train(PPOConfig(seed=0, total_steps=12_288, eval_every=4096, eval_episodes=5, device="cpu"))
    assert max(e["mean"] for e in result.evals) >= 150, result.evals
    row = result.logs[-1]
    assert 0 <= row["clip_fraction"] <= 1 and row["approx_kl"] >= 0 and 0 < row["entropy"] <= np.log(2) + 1e-6, (
        f"a logged statistic is out of its range: {row}")
    assert row["explained_variance"] <= 1 and row["sps"] > 0, (
        f"explained variance above 1 or no steps per second logged: {row}")


def test_evaluate_and_the_numpy_actor_agree_with_the_torch_distribution():
    """``evaluate`` writes out Categorical's log_prob and entropy; the NumPy actor is the same forward pass."""
    torch.manual_seed(0)
    agent = ActorCritic(4, 3, hidden=16)
    obs, actions = torch.randn(7, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    logp, entropy, values = agent.evaluate(obs, actions)
    dist = agent.policy(obs)
    torch.testing.assert_close(logp, dist.log_prob(actions), msg="evaluate's log-prob differs from Categorical's")
    torch.testing.assert_close(entropy, dist.entropy(), msg="evaluate's entropy differs from Categorical's")
    torch.testing.assert_close(values, agent.critic(obs).squeeze(-1), msg="evaluate's value is not the critic's")
    np.testing.assert_allclose(agent.numpy_actor().logits(obs.numpy()), agent.actor(obs).detach().numpy(),
                               rtol=1e-5, atol=1e-6, err_msg="the NumPy actor's logits differ from the actor's")
    # Separate networks: the value loss reaches no actor weight.
    values.sum().backward()
    assert all(p.grad is None for p in agent.actor.parameters()), "the critic's loss must not reach the actor"


def test_autoreset_step_is_marked_invalid_and_earns_nothing():
    env = trainer.make_env("CartPole-v1", 4)
    obs, _ = env.reset(seed=0)
    agent = ActorCritic(4, 2)
    prev_done = np.zeros(4, bool)
    tracker = trainer.EpisodeTracker(4)
    rollout, _ = trainer.collect_rollout(env, agent.numpy_actor(), obs, prev_done, 200, np.random.default_rng(0),
                                         tracker, 0)
    ended = rollout.terminated | rollout.truncated
    assert ended.any(), "a random policy ends CartPole episodes within 200 steps"
    # valid[t] is False exactly on the step after an episode ended (the env's reset step).
    np.testing.assert_array_equal(rollout.valid[1:], ~ended[:-1])
    assert rollout.valid[0].all(), "the first step of a rollout follows no reset, so it must be valid"
    assert (rollout.rewards[~rollout.valid] == 0).all(), "a reset step must earn no reward (it is not a transition)"
    assert len(tracker.finished) == ended.sum(), (
        f"the tracker finished {len(tracker.finished)} episodes, the rollout ended {ended.sum()}")
    assert all(ret >= 1 for _, ret in tracker.finished), "every finished CartPole episode has a return of at least 1"


def _rollout(terminated, truncated, valid, rewards=None):
    shape = np.shape(terminated)
    return Rollout(np.zeros((*shape, 4), np.float32), np.zeros(shape, np.int64),
                   np.ones(shape, np.float32) if rewards is None else np.asarray(rewards, np.float32),
                   np.asarray(terminated), np.asarray(truncated), np.asarray(valid),
                   np.zeros((shape[1], 4), np.float32))


def test_truncation_bootstraps_from_the_final_observation_and_termination_does_not():
    # One env: steps 0, 1 of an episode; step 1 is truncated (time limit); step 2 is the reset step
    # (the agent sees the final observation there, so values[2] = V(final obs)); step 3 a new episode.
    rollout = _rollout([[False], [False], [False], [False]], [[False], [True], [False], [False]],
                       [[True], [True], [False], [True]])
    values = torch.tensor([[1.0], [2.0], [7.0], [3.0]])
    seen = {}

    def spy(rewards, values, dones, last_value, gamma, lam):
        seen.update(rewards=rewards.clone(), dones=dones.clone())
        return compute_gae(rewards, values, dones, last_value, gamma, lam)

    trainer.advantages_and_returns(rollout, values, torch.tensor([5.0]), 0.9, 0.95, spy)
    torch.testing.assert_close(seen["rewards"][:, 0], torch.tensor([1.0, 1.0 + 0.9 * 7.0, 1.0, 1.0]))
    torch.testing.assert_close(seen["dones"][:, 0], torch.tensor([0.0, 1.0, 1.0, 0.0]))
    # The same episode end by termination: no bootstrap, only the done flag.
    rollout = _rollout([[False], [True], [False], [False]], [[False], [False], [False], [False]],
                       [[True], [True], [False], [True]])
    trainer.advantages_and_returns(rollout, values, torch.tensor([5.0]), 0.9, 0.95, spy)
    torch.testing.assert_close(seen["rewards"][:, 0], torch.ones(4))
    torch.testing.assert_close(seen["dones"][:, 0], torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_truncation_at_the_rollout_end_bootstraps_from_last_value():
    rollout = _rollout([[False], [False]], [[False], [True]], [[True], [True]])
    adv, ret = trainer.advantages_and_returns(rollout, torch.tensor([[1.0], [2.0]]), torch.tensor([5.0]), 0.9, 0.95,
                                              compute_gae)
    assert ret[1, 0].item() == pytest.approx(1.0 + 0.9 * 5.0), (
        "a truncation at the rollout end must bootstrap: R = r + gamma * V(s_T)")


def test_batch_drops_reset_rows_and_trainer_uses_the_given_functions():
    calls = {"gae": 0, "loss": 0}

    def my_gae(*args):
        calls["gae"] += 1
        assert args[0].shape == (16, 4), "compute_gae sees the [T, N] grid"
        return compute_gae(*args)

    def my_loss(*args, **kwargs):
        calls["loss"] += 1
        from ppo_course.losses import ppo_loss
        return ppo_loss(*args, **kwargs)

    cfg = PPOConfig(num_envs=4, num_steps=16, total_steps=256, epochs=2, minibatch_size=32, eval_every=0, device="cpu")
    result = train(cfg, compute_gae=my_gae, ppo_loss=my_loss)
    assert calls["gae"] == 4 and calls["loss"] >= 4 * 2 * 1, (
        f"the trainer must call the given functions: gae once per rollout (4), loss per minibatch step; got {calls}")
    assert not result.evals, "eval_every=0 must record no evaluations"


def test_select_device():
    assert select_device("cpu").type == "cpu", "--device cpu must select the CPU"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu"), (
        "--device auto must pick CUDA when it is there and the CPU otherwise")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            select_device("cuda")


def test_learning_rate_reaches_zero_at_the_decay_fraction_and_stays_there():
    config = PPOConfig(total_steps=2048, num_envs=4, num_steps=64, epochs=1, eval_every=0, device="cpu",
                       lr_decay_fraction=0.5)   # 8 iterations: lr falls to 0 over the first 4
    lrs = [row["lr"] for row in train(config).logs]
    np.testing.assert_allclose(lrs, config.lr * np.array([1, 0.75, 0.5, 0.25, 0, 0, 0, 0]), err_msg=(
        "with lr_decay_fraction = 0.5 the learning rate must fall linearly to 0 at half the run and stay 0"))


@pytest.mark.parametrize("field,value", [("lr", -1.0), ("epochs", 0), ("lam", 1.5), ("minibatch_size", 0),
                                         ("lr_decay_fraction", 0.0), ("lr_decay_fraction", 1.5)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        PPOConfig(**{field: value}).validate()


def test_make_env_errors_and_fallback():
    with pytest.raises(ValueError, match="unknown environment 'Nope-v0'"):
        trainer.make_env("Nope-v0", 2)
    with pytest.raises(ValueError, match="flat Box observation and a Discrete or 1-D Box action space"):
        trainer.make_env("FrozenLake-v1", 2)   # a Discrete observation (Box actions: tests/test_trainer_continuous.py)
    env = trainer.make_env("Acrobot-v1", 2)  # no native vector version: a sync vector env
    assert env.num_envs == 2, "make_env must make as many envs as asked"
    env.close()


@pytest.mark.parametrize("args,message", [
    (["--env", "Nope-v0"], "unknown environment 'Nope-v0'"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    (["--lr", "-0.1"], "lr must be > 0"),
    (["--epochs", "three"], "invalid int value: 'three'"),
    (["--eval-only"], "--eval-only needs --load"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args + ["--no-progress"])
    assert exit_info.value.code == 2, "bad input must exit with status 2"
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, (
        f"the error must name the problem ({message!r}) without a traceback: {err}")
    assert len(err.strip().splitlines()) == 1, err


def test_cli_unknown_env_in_a_fresh_process_has_no_traceback():
    done = subprocess.run([sys.executable, "-m", "ppo_course.train", "--env", "CartPole-v9"],
                          capture_output=True, text=True)
    assert done.returncode == 2, f"an unknown env must exit with status 2, not {done.returncode}"
    assert "Traceback" not in done.stderr and "unknown environment 'CartPole-v9'" in done.stderr, (
        f"an unknown env must be one line without a traceback: {done.stderr}")


def test_cli_trains_writes_curve_and_checkpoint_then_reloads(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["--seed", "1", "--total-steps", "1024", "--eval-every", "512", "--eval-episodes", "2",
                     "--device", "cpu", "--out", str(out), "--no-progress"]) == 0, (
        "a short training run from the command line must exit 0")
    for name in ("curve.csv", "curve.png", "checkpoint.pt"):
        assert (out / name).stat().st_size > 0, f"the run must write a non-empty {name}"
    header = (out / "curve.csv").read_text().splitlines()[0].split(",")
    logged = {"step", "approx_kl", "clip_fraction", "explained_variance", "entropy", "sps", "greedy_mean"}
    assert logged <= set(header), f"curve.csv lacks the logged columns {sorted(logged - set(header))}"
    agent, config = trainer.load_checkpoint(out / "checkpoint.pt")
    assert config.seed == 1, "the checkpoint must carry the config it was trained with"
    capsys.readouterr()
    assert cli_main(["--load", str(out / "checkpoint.pt"), "--eval-only", "--eval-episodes", "2"]) == 0, (
        "--eval-only from a checkpoint must exit 0")
    assert "greedy evaluation over 2 episodes" in capsys.readouterr().out, (
        "--eval-only must print its greedy evaluation")


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    text = capsys.readouterr().out
    for option in ("--env", "--seed", "--device", "--total-steps", "--epochs", "--minibatch-size", "--eps", "--c1",
                   "--c2", "--lam", "--gamma", "--anneal-lr", "--out", "--load", "--eval-only", "--eval-every"):
        assert option in text, f"--help does not mention {option}"
    assert "(default: CartPole-v1)" in " ".join(text.split()), "--help must show each option's default"


def test_every_config_field_is_an_option_with_its_own_help(capsys):
    """The CLI is derived from PPOConfig: a field without help text cannot be added by mistake."""
    import argparse
    from dataclasses import dataclass, fields

    from ppo_course.commandline import add_config_options
    from ppo_course.trainer import knob

    with pytest.raises(SystemExit):
        cli_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in fields(PPOConfig):
        assert " ".join(f.metadata["help"].split()) in text, f"--help does not explain {f.name}"

    @dataclass
    class Undocumented:
        documented: int = knob(1, "has help")
        bare: int = 2

    with pytest.raises(TypeError, match="bare has no help"):
        add_config_options(argparse.ArgumentParser(), Undocumented)
