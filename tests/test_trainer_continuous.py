"""The trainer on a Box action space (lesson 06): the Gaussian actor, clipping at the env, the learner's
functions plugged in, the normalisation wrappers, checkpoints and the CLI (all short, CPU)."""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from ppo_course import gaussian, trainer
from ppo_course.agent import GaussianActorCritic
from ppo_course.train import main as cli_main
from ppo_course.trainer import PPOConfig, train

SHORT = dict(total_steps=2048, num_envs=4, num_steps=128, eval_every=1024, eval_episodes=2, device="cpu")


def pendulum(**overrides) -> PPOConfig:
    return PPOConfig.for_env("Pendulum-v1", **{**SHORT, **overrides})


def test_gaussian_agent_agrees_with_torch_distributions_and_its_numpy_copy():
    torch.manual_seed(0)
    agent = GaussianActorCritic(3, 2, hidden=16, log_std_init=-0.5)
    obs, actions = torch.randn(7, 3), torch.randn(7, 2)
    logp, entropy, values = agent.evaluate(obs, actions)
    dist = agent.policy(obs)
    torch.testing.assert_close(logp, dist.log_prob(actions), msg="evaluate's log-prob differs from the Normal's")
    torch.testing.assert_close(entropy, dist.entropy(), msg="evaluate's entropy differs from the Normal's")
    assert logp.shape == entropy.shape == values.shape == (7,), "evaluate must return one number per sample"
    actor = agent.numpy_actor()
    np.testing.assert_allclose(actor.greedy(obs.numpy()), agent.actor(obs).detach().numpy(), rtol=1e-5, atol=1e-6,
                               err_msg="the greedy action must be the actor's mean")
    samples = actor.sample(np.zeros((20_000, 3), np.float32), np.random.default_rng(0))
    assert samples.shape == (20_000, 2), "one sampled action per observation, of the action space's dimension"
    np.testing.assert_allclose(samples.std(0), np.exp(-0.5), rtol=0.03, err_msg="samples must have std exp(log_std)")
    # The log-std is one parameter per action dimension, the same in every state.
    assert agent.log_std.shape == (2,) and torch.equal(dist.stddev[0], dist.stddev[6]), (
        "the log-std must be one parameter per action dimension, the same in every state")


def test_rollout_stores_the_gaussian_sample_and_the_env_receives_it_clipped():
    env = trainer.make_env("Pendulum-v1", 2)
    agent = GaussianActorCritic(3, 1, log_std_init=2.0)          # sigma ~ 7: most samples lie outside [-2, 2]
    obs, _ = env.reset(seed=0)
    rollout, _ = trainer.collect_rollout(env, agent.numpy_actor(), obs, np.zeros(2, bool), 50,
                                         np.random.default_rng(0), trainer.EpisodeTracker(2), 0)
    env.close()
    assert rollout.actions.shape == (50, 2, 1) and rollout.actions.dtype == np.float32, (
        "the rollout must store float32 actions of shape [T, N, action_dim]")
    assert np.abs(rollout.actions).max() > 2, "the stored action must be the unclipped sample (its log-prob is exact)"
    # Pendulum clips the torque itself; other tasks do not, so the trainer's env clips every Box action.
    assert isinstance(env, gym.wrappers.vector.ClipAction), "a Box action must reach the env clipped to its bounds"
    np.testing.assert_array_equal(env.actions(np.array([[5.0], [-0.5]], np.float32)), [[2.0], [-0.5]])


def test_trainer_uses_the_learners_gaussian_functions():
    calls = {"log_prob": 0, "entropy": 0}

    def log_prob(mean, log_std, actions):
        calls["log_prob"] += 1
        return gaussian.gaussian_log_prob(mean, log_std, actions)

    def entropy(log_std):
        calls["entropy"] += 1
        return gaussian.gaussian_entropy(log_std)

    a = train(pendulum(seed=1), gaussian_log_prob=log_prob, gaussian_entropy=entropy)
    assert calls["log_prob"] > 0 and calls["entropy"] > 0, f"the learner's functions were not called: {calls}"
    b = train(pendulum(seed=1))
    assert [row["approx_kl"] for row in a.logs] == [row["approx_kl"] for row in b.logs], (
        "the reference functions passed in must give the same run as the defaults")
    assert a.episodes == b.episodes, "the reference functions passed in must give the same episodes as the defaults"


def test_same_seed_same_pendulum_run_and_the_log_std_learns():
    a, b = train(pendulum(seed=3)), train(pendulum(seed=3))
    assert [e["mean"] for e in a.evals] == [e["mean"] for e in b.evals] and a.episodes == b.episodes, (
        "the same seed must give the same Pendulum run")
    assert not torch.equal(a.agent.log_std.detach(), torch.zeros(1)), "log_std is a parameter: it must move"
    assert all(-2000 < ret <= 0 for _, ret in a.episodes), "Pendulum returns lie in [-16.3 * 200, 0]"


def test_reward_normalisation_reports_raw_returns_and_observation_stats_are_frozen_in_evaluation():
    raw, scaled = train(pendulum(seed=5)), train(pendulum(seed=5, norm_reward=True))
    assert raw.episodes[0][0] == scaled.episodes[0][0], (
        "reward normalisation must not change the first episode's recorded (raw) return")
    assert min(ret for _, ret in scaled.episodes) < -300, (
        "episode returns must be in the task's units (raw rewards), not the normalised ones")
    result = train(pendulum(seed=5, norm_obs=True))
    assert result.obs_rms is not None and result.obs_rms.count > 2048, (
        "norm_obs must keep running observation statistics over every training step")
    count, mean = result.obs_rms.count, result.obs_rms.mean.copy()
    trainer.evaluate_greedy(result.agent.numpy_actor(), "Pendulum-v1", 2, seed=0, obs_rms=result.obs_rms)
    assert result.obs_rms.count == count and np.array_equal(result.obs_rms.mean, mean), (
        "evaluation must not update the training statistics")


def test_checkpoint_round_trip_keeps_the_gaussian_and_its_observation_stats(tmp_path):
    result = train(pendulum(seed=2, norm_obs=True))
    trainer.save_checkpoint(tmp_path / "c.pt", result)
    agent, config = trainer.load_checkpoint(tmp_path / "c.pt")
    assert isinstance(agent, GaussianActorCritic) and config.env_id == "Pendulum-v1" and config.norm_obs, (
        "the checkpoint must restore a Gaussian agent and the config with norm_obs")
    torch.testing.assert_close(agent.log_std, result.agent.log_std.cpu())
    rms = trainer.checkpoint_obs_rms(tmp_path / "c.pt")
    np.testing.assert_allclose(rms.mean, result.obs_rms.mean, rtol=1e-6)
    before = trainer.evaluate_greedy(result.agent.numpy_actor(), "Pendulum-v1", 2, seed=0, obs_rms=result.obs_rms)
    after = trainer.evaluate_greedy(agent.numpy_actor(), "Pendulum-v1", 2, seed=0, obs_rms=rms)
    np.testing.assert_allclose(after, before, rtol=1e-5)


def test_pendulum_defaults_and_the_cli(tmp_path, capsys):
    config = PPOConfig.for_env("Pendulum-v1", seed=4)
    assert config.env_id == "Pendulum-v1" and config.seed == 4 and config.gamma == trainer.ENV_DEFAULTS[
        "Pendulum-v1"]["gamma"], "for_env must take the env's defaults and the given seed"
    preset = dataclasses.replace(PPOConfig(), gamma=0.98, lam=0.8, total_steps=50_048)
    assert PPOConfig.for_env("CartPole-v1") == preset, "CartPole's preset changes gamma, lambda and the budget only"
    out = tmp_path / "run"
    assert cli_main(["--env", "Pendulum-v1", "--total-steps", "1024", "--num-envs", "4", "--eval-every", "512",
                     "--eval-episodes", "2", "--device", "cpu", "--out", str(out), "--no-progress"]) == 0, (
        "a short Pendulum run from the command line must exit 0")
    _, saved = trainer.load_checkpoint(out / "checkpoint.pt")
    assert saved.total_steps == 1024 and saved.num_envs == 4, "options given on the command line win"
    assert saved.gamma == config.gamma and saved.epochs == config.epochs, "the others are Pendulum's defaults"
    capsys.readouterr()
    assert cli_main(["--env", "Pendulum-v1", "--load", str(out / "checkpoint.pt"), "--eval-only",
                     "--eval-episodes", "2"]) == 0, "--eval-only from a Pendulum checkpoint must exit 0"
    assert "greedy evaluation over 2 episodes" in capsys.readouterr().out, (
        "--eval-only must print its greedy evaluation")


@pytest.mark.slow
def test_learns_pendulum():
    result = train(PPOConfig.for_env("Pendulum-v1", seed=0, total_steps=61_440, eval_episodes=5, device="cpu"))
    assert max(e["mean"] for e in result.evals) >= -400, result.evals
