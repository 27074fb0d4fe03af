"""The reference trainer, its episode-end handling, device selection and the CLI (all fast, CPU)."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from ppo_course import trainer
from ppo_course.agent import ActorCritic
from ppo_course.device import select_device
from ppo_course.gae import compute_gae
from ppo_course.train import main as cli_main
from ppo_course.trainer import PPOConfig, Rollout, train
from ppo_course.update import ppo_update as reference_update

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


#: (terminated, truncated) at an episode's last step: the four cases, one env each
ENDINGS = [(False, False), (True, False), (False, True), (True, True)]


def _bootstrapped_and_done(gamma: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Which of the four ENDINGS our trainer bootstraps at their step 1, and which it marks done there."""
    terminated, truncated = (np.array([[False] * 4, [e[i] for e in ENDINGS], [False] * 4, [False] * 4])
                             for i in (0, 1))
    ended = terminated[1] | truncated[1]
    valid = np.array([[True] * 4, [True] * 4, ~ended, [True] * 4])
    values = torch.tensor([[1.0] * 4, [2.0] * 4, [7.0] * 4, [3.0] * 4])   # row 2 is V(final obs) where ended
    seen = {}

    def spy(rewards, values, dones, last_value, gamma, lam):
        seen.update(rewards=rewards.clone(), dones=dones.clone())
        return compute_gae(rewards, values, dones, last_value, gamma, lam)

    trainer.advantages_and_returns(_rollout(terminated, truncated, valid), values, torch.full((4,), 5.0), gamma,
                                   0.95, spy)
    bootstrap = (seen["rewards"][1] - 1.0).numpy()
    assert all(np.isclose(b, 0) or np.isclose(b, gamma * 7.0) for b in bootstrap), (
        f"a bootstrap adds gamma * V(final obs) = {gamma * 7.0} to the reward, or nothing: {bootstrap}")
    return bootstrap > 0, seen["dones"][1].numpy() > 0


def test_termination_wins_when_a_step_is_both_terminated_and_truncated():
    bootstrapped, done = _bootstrapped_and_done()
    np.testing.assert_array_equal(bootstrapped, [False, False, True, False], err_msg=(
        "only a step truncated and NOT terminated bootstraps: (none, terminated, truncated, both)"))
    np.testing.assert_array_equal(done, [False, True, True, True], err_msg="every episode end is done for GAE")


def test_the_bootstrap_rule_is_stable_baselines3s():
    """SB3's DummyVecEnv sets info["TimeLimit.truncated"] = truncated and not terminated, and its rollout
    collection adds gamma * V(terminal_observation) to the reward only where that flag is set
    (stable_baselines3/common/vec_env/dummy_vec_env.py and common/on_policy_algorithm.py)."""
    pytest.importorskip("stable_baselines3")
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    class EndsAtStep2(gym.Env):
        observation_space, action_space = gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2)

        def __init__(self, terminated: bool, truncated: bool):
            self.ending, self.t = (terminated, truncated), 0

        def reset(self, *, seed=None, options=None):
            self.t = 0
            return np.zeros(4, np.float32), {}

        def step(self, action):
            self.t += 1
            ending = self.ending if self.t == 2 else (False, False)
            return np.zeros(4, np.float32), 1.0, *ending, {}

    venv = DummyVecEnv([lambda e=e: EndsAtStep2(*e) for e in ENDINGS])
    venv.reset()
    venv.step(np.zeros(4, int))
    _, _, sb3_done, infos = venv.step(np.zeros(4, int))
    sb3_bootstraps = [bool(done and info.get("terminal_observation") is not None and info.get("TimeLimit.truncated"))
                      for done, info in zip(sb3_done, infos)]
    bootstrapped, done = _bootstrapped_and_done()
    assert bootstrapped.tolist() == sb3_bootstraps, (
        f"(none, terminated, truncated, both): we bootstrap {bootstrapped.tolist()}, SB3 {sb3_bootstraps}")
    assert done.tolist() == sb3_done.tolist(), f"episode ends: ours {done.tolist()}, SB3 {sb3_done.tolist()}"


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


def test_learning_rate_decays_linearly_and_is_never_spent_before_the_end():
    config = PPOConfig(total_steps=1024, num_envs=4, num_steps=64, epochs=1, eval_every=0, device="cpu")
    lrs = [row["lr"] for row in train(config).logs]   # 4 iterations
    np.testing.assert_allclose(lrs, config.lr * np.array([1, 0.75, 0.5, 0.25]), err_msg=(
        "the learning rate must fall linearly from lr to lr / iterations at the last update (CleanRL's schedule)"))
    uneven = [row["lr"] for row in train(replace(config, total_steps=640)).logs]   # 2.5 iterations' worth: 3
    np.testing.assert_allclose(uneven, config.lr * np.array([1, 0.6, 0.2]), err_msg=(
        "the learning rate must follow the share of total_steps not yet run (SB3's progress_remaining)"))
    constant = [row["lr"] for row in train(replace(config, anneal_lr=False)).logs]
    assert constant == [config.lr] * 4, f"anneal_lr=False must keep the learning rate constant, got {constant}"


@pytest.mark.parametrize("env_id", ["the defaults", *trainer.ENV_DEFAULTS])
def test_no_preset_spends_steps_with_a_zero_learning_rate(env_id):
    config = PPOConfig() if env_id == "the defaults" else PPOConfig.for_env(env_id)
    last = config.learning_rate(config.iterations - 1)
    assert 0 < last < config.lr / 10, (
        f"{env_id}: the last update's learning rate is {last}; it must be spent by the end, and not before")
    assert f"{config.iterations * config.num_envs * config.num_steps:,} env steps" in config.describe(), (
        f"describe() must say how many env steps the run takes: {config.describe()}")


def test_policy_and_value_loss_are_logged_beside_the_diagnostics():
    row = train(PPOConfig(total_steps=512, num_envs=4, num_steps=64, eval_every=0, device="cpu")).logs[-1]
    for key in ("policy_loss", "value_loss", "approx_kl", "clip_fraction", "explained_variance", "entropy",
                "advantage_std"):
        assert key in row and np.isfinite(row[key]), f"the log row lacks a finite {key}: {row}"
    assert row["value_loss"] > 0, f"CartPole's returns are not all predicted exactly: value_loss {row['value_loss']}"


def test_clipped_value_loss_is_ppo2s_max_of_the_two_errors():
    gen = torch.Generator().manual_seed(0)
    old, returns = torch.randn(50, generator=gen), torch.randn(50, generator=gen) * 2
    values = (old + torch.randn(50, generator=gen) * 0.5).requires_grad_(True)
    eps = 0.2
    clipped = trainer.clipped_values(values, old, returns, eps)
    ((clipped - returns) ** 2).mean().backward()
    ours = values.grad.clone()
    values.grad = None
    v_clip = old + (values - old).clamp(-eps, eps)
    torch.max((values - returns) ** 2, (v_clip - returns) ** 2).mean().backward()   # CleanRL's v_loss_max
    torch.testing.assert_close(((clipped - returns) ** 2).detach(),
                               torch.max((values - returns) ** 2, (v_clip - returns) ** 2).detach())
    torch.testing.assert_close(ours, values.grad, msg="the clipped value loss's gradient differs from PPO2's")
    assert (ours == 0).any() and (ours != 0).any(), "the test's values must have clipped and unclipped samples"
    result = train(PPOConfig(total_steps=512, num_envs=4, num_steps=64, eval_every=0, device="cpu", clip_vloss=True))
    assert np.isfinite(result.logs[-1]["value_loss"])


def test_per_batch_normalisation_normalises_once_and_tells_ppo_update_not_to():
    seen = []

    def spy_update(batch, step, evaluate, **kwargs):
        seen.append((batch["adv"].clone(), kwargs["norm_adv"]))
        return reference_update(batch, step, evaluate, **kwargs)

    config = PPOConfig(total_steps=256, num_envs=4, num_steps=64, eval_every=0, device="cpu")
    for norm_adv, passed in (("minibatch", True), ("batch", False), ("off", False)):
        seen.clear()
        train(replace(config, norm_adv=norm_adv), ppo_update=spy_update)
        adv, flag = seen[0]
        assert flag is passed, f"norm_adv={norm_adv!r} must pass norm_adv={passed} to ppo_update, not {flag}"
        if norm_adv == "batch":
            assert abs(adv.mean()) < 1e-5 and abs(adv.std() - 1) < 1e-4, (
                f"per-batch normalisation must give ppo_update advantages of mean 0, std 1: {adv.mean()}, {adv.std()}")
        else:
            assert adv.std() > 1.5, f"norm_adv={norm_adv!r} must hand ppo_update the raw advantages (std {adv.std()})"
    with pytest.raises(ValueError, match="norm_adv must be one of minibatch, batch, off"):
        PPOConfig(norm_adv=True).validate()


def test_init_and_adam_eps_options():
    torch.manual_seed(0)
    ortho, default = ActorCritic(4, 2), ActorCritic(4, 2, ortho_init=False)
    assert ortho.actor[-1].weight.abs().max() < 0.05 and (ortho.actor[0].bias == 0).all(), (
        "orthogonal init: the policy head starts with gain 0.01 and every bias at 0")
    assert default.actor[-1].weight.abs().max() > 0.05 and (default.actor[0].bias != 0).any(), (
        "ortho_init=False must keep torch's default nn.Linear init (uniform weights and biases)")
    optimizer = trainer.make_optimizer(ortho, 1e-3, eps=1e-8)
    assert optimizer.param_groups[0]["eps"] == 1e-8, "make_optimizer must use the eps it is given"
    config = PPOConfig(total_steps=256, num_envs=4, num_steps=64, eval_every=0, device="cpu", ortho_init=False,
                       adam_eps=1e-8)
    assert np.isfinite(train(config).logs[-1]["approx_kl"])


@pytest.mark.parametrize("field,value", [("lr", -1.0), ("epochs", 0), ("lam", 1.5), ("minibatch_size", 0),
                                         ("adam_eps", -1e-8), ("norm_adv", "sometimes")])
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
    printed = capsys.readouterr().out
    assert "1,024 env steps: 4 iterations of 8 envs x 32 steps" in printed and "decaying linearly" in printed, (
        f"the CLI must say what the run does (its budget and learning-rate schedule) before it starts:\n{printed}")
    header = (out / "curve.csv").read_text().splitlines()[0].split(",")
    logged = {"step", "approx_kl", "clip_fraction", "explained_variance", "entropy", "policy_loss", "value_loss", "sps",
              "greedy_mean"}
    assert logged <= set(header), f"curve.csv lacks the logged columns {sorted(logged - set(header))}"
    agent, config = trainer.load_checkpoint(out / "checkpoint.pt")
    assert config.seed == 1, "the checkpoint must carry the config it was trained with"
    capsys.readouterr()
    assert cli_main(["--load", str(out / "checkpoint.pt"), "--eval-only", "--eval-episodes", "2"]) == 0, (
        "--eval-only from a checkpoint must exit 0")
    assert "greedy evaluation over 2 episodes" in capsys.readouterr().out, (
        "--eval-only must print its greedy evaluation")


def test_a_checkpoint_with_a_retired_knob_still_loads(tmp_path):
    result = train(PPOConfig(total_steps=256, num_envs=4, num_steps=64, eval_every=0, device="cpu"))
    trainer.save_checkpoint(tmp_path / "new.pt", result)
    saved = torch.load(tmp_path / "new.pt", weights_only=True)
    saved["config"]["lr_decay_fraction"] = 0.5   # a knob of an earlier version (the budget now matches the schedule)
    torch.save(saved, tmp_path / "old.pt")
    agent, config = trainer.load_checkpoint(tmp_path / "old.pt")
    assert config == result.config, "a checkpoint's retired knobs must be ignored, the others kept"


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
