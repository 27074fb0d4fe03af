"""The reference PPO trainer (lesson 04), readable top to bottom like the algorithm.

    arguments (PPOConfig) -> make vectorized envs -> agent -> repeat:
        1. collect a rollout of T steps from N envs with pi_theta_old     (collect_rollout)
        2. GAE advantages and returns                                     (advantages_and_returns)
        3. K epochs of shuffled minibatches on the PPO loss               (update: ppo_update + gradient_step)
        4. log approx_kl, clip fraction, explained variance, entropy, SPS; evaluate greedily

``compute_gae``, ``ppo_loss`` and ``ppo_update`` are parameters of ``train``: lesson 04 trains with the
learner's own. A Box action space (lesson 06: Pendulum-v1) gets a Gaussian actor
(``GaussianActorCritic``) whose log-probability and entropy, ``gaussian_log_prob`` and
``gaussian_entropy``, are parameters too; everything else (rollout, GAE, loss, update) is shared. Its
actions are clipped to the bounds by the env (``ClipAction``), never in the stored rollout, and
observations and rewards can be normalised with gymnasium's wrappers (``norm_obs``, ``norm_reward``).

Episode ends with gymnasium 1.x vector envs (default NEXT_STEP autoreset). When an episode ends at
step t, the observation returned by that step is still the episode's *final* observation; the env
resets on the *next* call to ``step``, which ignores its action, returns reward 0 and the new
episode's first observation. That "reset step" is not a transition, so the trainer
  * marks it done (nothing is bootstrapped across it) and drops it from the loss (``Rollout.valid``);
  * uses it for truncation: at the reset step the agent's observation is the final observation of
    the cut episode, so V(final obs) is simply the value of the next row (or the rollout's last
    value). A truncated step gets reward r_t + gamma * V(final obs) and done = 1; a terminated step
    gets done = 1 and no bootstrap (the value of a terminal state is 0).
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from . import envs  # noqa: F401 - registers the course's own task (ppo_course/SparseChain-v0) with gymnasium
from .agent import ActorCritic, GaussianActorCritic, NumpyActor
from .clipping import ppo_policy_loss
from .commandline import knob
from .device import select_device
from .gae import compute_gae as reference_gae
from .gaussian import gaussian_entropy as reference_entropy
from .gaussian import gaussian_log_prob as reference_log_prob
from .losses import ppo_loss as reference_loss
from .update import ppo_update as reference_update

#: Where ``norm_adv`` normalises the advantages: each minibatch on its own, the whole batch once, or nowhere.
NORM_ADV = ("minibatch", "batch", "off")

@dataclass
class PPOConfig:
    """Every knob of the trainer, with the lesson's values where it gives one.

    The defaults solve CartPole-v1 (greedy mean >= 475) after a median of 6-7k env steps and end the
    100k budget at 500 on every seed measured (seeds 0-9 and 70-77); on 70-77 they stay solved only from
    a median of 45k. Chosen by measurement (benchmarks/README-trainer.md): K = 4 epochs of 64-sample
    minibatches at lr 5e-3 solved soonest among the settings that stayed solved. ``for_env("CartPole-v1")``
    adds a preset (``ENV_DEFAULTS``) that stays solved sooner, in half the budget: over 36 held-out seeds
    (70-105) from a median of 13k env steps, 0.59x Stable-Baselines3's (95% interval 0.45-0.86x).
    Lesson 04 measures which of the implementation details here matter on CartPole (``ablations.DETAILS``).
    """

    env_id: str = knob("CartPole-v1", "a gymnasium id with a flat Box observation and a Discrete or Box action "
                                      "space (Pendulum-v1 takes the defaults of ENV_DEFAULTS)")
    seed: int = knob(0, "seeds torch, NumPy and the envs: same seed, same curve (on the CPU)")
    total_steps: int = knob(100_000, "env steps over all envs (typical 50k-1M)")
    num_envs: int = knob(8, "N parallel environments (4-64)")
    num_steps: int = knob(32, "T steps per env per rollout; a rollout is N*T transitions (128-4096)")
    epochs: int = knob(4, "K passes over each rollout (lesson: 4-10; 30 is the pitfall)")
    minibatch_size: int = knob(64, "transitions per gradient step (32-4096)")
    lr: float = knob(5e-3, "Adam learning rate (typical 1e-4 - 5e-3; "
                           "on CartPole 5e-3 solved soonest, 6e-3 was less stable)")
    anneal_lr: bool = knob(True, "decay the learning rate linearly with the share of total_steps still to run "
                                 "(SB3's progress_remaining): lr at the first update, near 0 at the last")
    adam_eps: float = knob(1e-5, "Adam's epsilon (the PPO reference code's 1e-5; torch's default is 1e-8)")
    gamma: float = knob(0.99, "discount (0.95-0.999)")
    lam: float = knob(0.95, "GAE lambda: 0 = one-step TD (biased), 1 = Monte Carlo (noisy)")
    eps: float = knob(0.2, "clip range (lesson: 0.1-0.3; 0.5 is the pitfall)")
    c1: float = knob(0.5, "value-loss coefficient")
    c2: float = knob(0.01, "entropy-bonus coefficient (0 is the pitfall)")
    max_grad_norm: float = knob(0.5, "clip the global gradient norm (actor and critic together) at this value "
                                     "(0: never)")
    clip_vloss: bool = knob(False, "clip the value loss like the policy's: max((V - R)^2, (V_clipped - R)^2) with V "
                                   "kept within eps of the rollout's value (PPO2's, CleanRL's clip_vloss)")
    target_kl: float = knob(0.0, "skip a rollout's remaining epochs once approx KL(old || new) is above this "
                                 "(0: never)")
    norm_adv: str = knob("minibatch", "normalise advantages to zero mean and unit std: per minibatch (CleanRL, SB3), "
                                      "once per batch (Spinning Up), or off")
    hidden: int = knob(64, "units per hidden layer of the actor and the critic")
    ortho_init: bool = knob(True, "orthogonal init (gains sqrt 2, 0.01 on the policy head, 1 on the value head), "
                                  "else torch's default nn.Linear init")
    device: str = knob("auto", "where the update runs: auto | cpu | cuda (acting stays on the CPU)")
    torch_threads: int = knob(1, "CPU threads for torch; small nets are fastest on one")
    eval_every: int = knob(2048, "greedy evaluation every this many env steps (0: never)")
    eval_episodes: int = knob(20, "episodes per greedy evaluation")
    log_std_init: float = knob(0.0, "Box actions: initial log-std of the Gaussian policy (0: sigma = 1)")
    norm_obs: bool = knob(False, "normalise observations by running mean and std (gymnasium NormalizeObservation)")
    norm_reward: bool = knob(False, "scale rewards by the running std of the discounted return (NormalizeReward)")

    @classmethod
    def for_env(cls, env_id: str, **overrides) -> PPOConfig:
        """The config for ``env_id``: the defaults, then ``ENV_DEFAULTS[env_id]``, then ``overrides``."""
        return cls(env_id=env_id, **{**ENV_DEFAULTS.get(env_id, {}), **overrides})

    @property
    def iterations(self) -> int:
        """Rollouts of N*T steps in the run (the last one may end past ``total_steps``)."""
        return -(-self.total_steps // (self.num_envs * self.num_steps))

    def learning_rate(self, iteration: int) -> float:
        """The learning rate of iteration 0, 1, ...: with ``anneal_lr``, ``lr`` times the share of ``total_steps``
        not yet run when the iteration starts (positive to the end: no update is spent at a learning rate of 0)."""
        if not self.anneal_lr:
            return self.lr
        return self.lr * (1 - iteration / (self.total_steps / (self.num_envs * self.num_steps)))

    def describe(self) -> str:
        """What a run with this config does, in one line: the budget and the learning-rate schedule."""
        per = self.num_envs * self.num_steps
        lr = (f"learning rate {self.lr:g} decaying linearly to {self.learning_rate(self.iterations - 1):.2g} at the "
              "last update" if self.anneal_lr else f"constant learning rate {self.lr:g}")
        return (f"{self.iterations * per:,} env steps: {self.iterations} iterations of {self.num_envs} envs x "
                f"{self.num_steps} steps, each {self.epochs} epochs of minibatches of {self.minibatch_size}; {lr}")

    def validate(self) -> None:
        """Raise ValueError with a one-line message naming the first bad value."""
        positive = ("total_steps", "num_envs", "num_steps", "epochs", "minibatch_size", "lr", "hidden",
                    "torch_threads", "eval_episodes")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.norm_adv not in NORM_ADV:
            raise ValueError(f"norm_adv must be one of {', '.join(NORM_ADV)}, got {self.norm_adv!r}")
        for name in ("gamma", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("eps", "c1", "c2", "max_grad_norm", "target_kl", "eval_every", "adam_eps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        select_device(self.device)


#: Defaults that differ from PPOConfig's, per environment; see PPOConfig.for_env (what the CLI and the
#: benchmarks use; lesson 04 trains with PPOConfig's own, the lesson's gamma and lambda).
#: CartPole-v1: once solved, keep it solved. The RL Zoo's gamma = 0.98 and lambda = 0.8, and half the budget
#: of 100,096 steps (391 iterations of 256), so that the annealed learning rate is spent sooner: chosen on
#: tuning seeds 30-61 (benchmarks/README-trainer.md, step 12), as a learning rate reaching 0 at half of a
#: 100k-step run that then trained the rest at 0. The run takes 196 iterations, 50,176 steps.
#: Pendulum-v1: chosen on seeds 100-107 (benchmarks/README-pendulum.md), never the benchmark's seeds 0-9.
ENV_DEFAULTS: dict[str, dict] = {
    "CartPole-v1": dict(total_steps=50_048, gamma=0.98, lam=0.8),
    "Pendulum-v1": dict(total_steps=100_000, num_envs=8, num_steps=128, epochs=10, minibatch_size=128, lr=2e-3,
                        gamma=0.9, lam=0.95, c2=0.0, norm_reward=True, eval_every=4096),
}
#: The greedy return at which an environment counts as solved (CartPole: 475 of 500; Pendulum: -200; the
#: sparse chain: its one reward reached).
SOLVED_AT = {"CartPole-v1": 475.0, "Pendulum-v1": -200.0, envs.SPARSE_CHAIN: 1.0}


@dataclass
class Rollout:
    """T steps of N envs, time first. ``valid`` is False on autoreset steps (not transitions)."""

    obs: np.ndarray  #: [T, N, obs_dim] observation the action was chosen from
    actions: np.ndarray  #: [T, N] action taken ([T, N, action_dim] for a Box action, before clipping)
    rewards: np.ndarray  #: [T, N] reward received
    terminated: np.ndarray  #: [T, N] the episode reached a terminal state at this step
    truncated: np.ndarray  #: [T, N] the episode was cut by the time limit at this step
    valid: np.ndarray  #: [T, N] False where the step was the env's reset, not a transition
    next_obs: np.ndarray  #: [N, obs_dim] observation after the last step (for V(s_T))


@dataclass
class TrainResult:
    """What ``train`` returns: the agent, per-iteration logs, episodes and greedy evaluations."""

    agent: ActorCritic
    config: PPOConfig
    logs: list[dict] = field(default_factory=list)  #: one row per iteration
    episodes: list[tuple[int, float]] = field(default_factory=list)  #: (env step at end, return)
    evals: list[dict] = field(default_factory=list)  #: step, mean, std, train_seconds, train_cpu_seconds
    obs_rms: object = None  #: with norm_obs: the observation statistics (gymnasium RunningMeanStd) the agent saw

    def solved_at(self, threshold: float = 475.0) -> int | None:
        """Env steps at the first greedy evaluation with mean >= threshold (None if never)."""
        return next((e["step"] for e in self.evals if e["mean"] >= threshold), None)


class EpisodeTracker:
    """Sums rewards per env and records (step, return) when an episode ends."""

    def __init__(self, num_envs: int):
        self.running = np.zeros(num_envs)
        self.finished: list[tuple[int, float]] = []

    def update(self, step: int, rewards: np.ndarray, ended: np.ndarray) -> None:
        self.running += rewards
        for ret in self.running[ended]:
            self.finished.append((step, float(ret)))
        self.running[ended] = 0.0


class RecordRawReward(gym.vector.VectorWrapper):
    """Passes each step's reward on as it is, and also in ``info["raw_reward"]``: episode returns are
    reported in the task's units even when a wrapper further out normalises the reward the agent learns from."""

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return obs, reward, terminated, truncated, {**info, "raw_reward": reward}


def make_env(env_id: str, num_envs: int, norm_obs: bool = False, norm_reward: bool = False,
             gamma: float = 0.99) -> gym.vector.VectorEnv:
    """A gymnasium vector env: the native vectorized one when the env has it, else a sync wrapper.

    A Box action space is clipped to its bounds by ``ClipAction``. ``norm_obs``/``norm_reward`` add
    gymnasium's ``NormalizeObservation``/``NormalizeReward`` (the latter with the discount ``gamma``).
    Raises ValueError for an unknown id or an env the trainer cannot handle.
    """
    try:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    except gym.error.UnregisteredEnv as exc:
        raise ValueError(f"unknown environment {env_id!r}: {exc}") from None
    except gym.error.Error:  # registered, but without a native vectorized version
        try:
            env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
        except gym.error.Error as exc:
            raise ValueError(f"cannot make environment {env_id!r}: {exc}") from None
    space = env.single_action_space
    box = isinstance(space, gym.spaces.Box) and len(space.shape) == 1
    if not (isinstance(space, gym.spaces.Discrete) or box) or len(env.single_observation_space.shape) != 1:
        env.close()
        raise ValueError(f"environment {env_id!r} needs a flat Box observation and a Discrete or 1-D Box action space")
    if box:
        env = gym.wrappers.vector.ClipAction(env)
    if norm_reward:
        env = gym.wrappers.vector.NormalizeReward(RecordRawReward(env), gamma=gamma)
    if norm_obs:
        env = gym.wrappers.vector.NormalizeObservation(env)
    return env


def find_obs_rms(env) -> object:
    """The running observation statistics of ``env``'s NormalizeObservation wrapper (None without one)."""
    while env is not None:
        if isinstance(env, gym.wrappers.vector.NormalizeObservation):
            return env.obs_rms
        env = getattr(env, "env", None)
    return None


def collect_rollout(env, actor: NumpyActor, obs: np.ndarray, prev_done: np.ndarray, num_steps: int,
                    rng: np.random.Generator, tracker: EpisodeTracker, step: int) -> tuple[Rollout, np.ndarray]:
    """Step ``env`` ``num_steps`` times with actions sampled from ``actor``; no torch involved.

    ``prev_done`` (``[N]``, updated in place) says which envs ended on the previous step, so that
    this step is their autoreset. Returns the rollout and the observation to continue from.
    """
    n = env.num_envs
    shape = (num_steps, n)
    space = env.single_action_space
    actions = (np.empty(shape, np.int64) if isinstance(space, gym.spaces.Discrete)
               else np.empty((*shape, *space.shape), np.float32))
    r = Rollout(np.empty((*shape, obs.shape[1]), np.float32), actions, np.empty(shape, np.float32),
                np.empty(shape, bool), np.empty(shape, bool), np.empty(shape, bool), obs)
    for t in range(num_steps):
        r.obs[t] = obs
        r.valid[t] = ~prev_done
        r.actions[t] = actor.sample(obs, rng)
        obs, r.rewards[t], r.terminated[t], r.truncated[t], info = env.step(r.actions[t])
        np.logical_or(r.terminated[t], r.truncated[t], out=prev_done)
        step += n
        tracker.update(step, info.get("raw_reward", r.rewards[t]), prev_done)
    r.next_obs = obs
    return r, obs


def advantages_and_returns(rollout: Rollout, values: torch.Tensor, last_value: torch.Tensor, gamma: float,
                           lam: float, compute_gae: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the rollout with episode ends made explicit for ``compute_gae``.

    ``values`` is ``[T, N]`` (V of each row's observation), ``last_value`` ``[N]``. Truncated steps
    get ``gamma * V(final obs)`` added to their reward (V(final obs) is the next row's value, because
    with NEXT_STEP autoreset the final observation is what the agent sees on the reset step), unless
    they are also terminated: a terminal state is worth 0 whatever the clock says (Stable-Baselines3's
    rule too: it bootstraps when ``truncated and not terminated``).
    ``dones`` = terminated | truncated | reset step, so nothing is bootstrapped across an episode end.
    """
    terminated, truncated, valid, rewards = (torch.as_tensor(a, device=values.device) for a in (
        rollout.terminated, rollout.truncated, rollout.valid, rollout.rewards))
    next_values = torch.cat([values[1:], last_value.unsqueeze(0)])
    cut_short = truncated & ~terminated   # a step can be both (CartPole at its time limit): termination wins
    rewards = rewards + gamma * next_values * cut_short
    dones = (terminated | truncated | ~valid).float()
    return compute_gae(rewards, values, dones, last_value, gamma, lam)


def prepare_batch(agent: ActorCritic, rollout: Rollout, cfg: PPOConfig, compute_gae: Callable,
                  device: torch.device) -> dict[str, torch.Tensor]:
    """The rollout as flat ``[B]`` tensors on ``device``, with log pi_old, V, GAE advantages, returns.

    Values and old log-probabilities are computed here in one batched forward pass (cheaper than one
    per step). Autoreset rows are dropped last, after GAE has seen the whole [T, N] grid.
    """
    num_steps, num_envs = rollout.actions.shape[:2]
    obs = torch.as_tensor(rollout.obs, device=device).reshape(num_steps * num_envs, -1)
    actions = torch.as_tensor(rollout.actions, device=device).reshape(num_steps * num_envs, *rollout.actions.shape[2:])
    with torch.no_grad():
        logp, _, values = agent.evaluate(obs, actions)
        last_value = agent.value(torch.as_tensor(rollout.next_obs, dtype=torch.float32, device=device))
        adv, returns = advantages_and_returns(rollout, values.reshape(num_steps, num_envs), last_value,
                                              cfg.gamma, cfg.lam, compute_gae)
    batch = {"obs": obs, "actions": actions, "logp": logp, "values": values,
             "adv": adv.reshape(-1).float(), "returns": returns.reshape(-1).float()}
    valid = torch.as_tensor(rollout.valid, device=device).reshape(-1)
    return {k: v[valid] for k, v in batch.items()}


def make_optimizer(agent: ActorCritic, lr: float, eps: float = 1e-5) -> torch.optim.Optimizer:
    """One Adam over actor and critic (``eps`` = 1e-5, as in the PPO reference code), fused into one kernel
    where torch supports it.

    For nets this small the optimiser step is mostly per-tensor overhead: fused Adam is ~4x faster.
    """
    try:
        return torch.optim.Adam(agent.parameters(), lr=lr, eps=eps, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(agent.parameters(), lr=lr, eps=eps)


def clipped_values(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, eps: float) -> torch.Tensor:
    """The values that make ``mean((V - R)^2)`` PPO2's clipped value loss, ``mean(max((V - R)^2, (V_clip - R)^2))``
    with ``V_clip = V_old + clip(V - V_old, -eps, eps)``: per sample, whichever of V and V_clip is further from
    the return. Where V_clip is chosen and clipped, it is constant in theta, so that sample's gradient is 0."""
    v_clip = old_values + (values - old_values).clamp(-eps, eps)
    return torch.where((v_clip - returns) ** 2 > (values - returns) ** 2, v_clip, values)


def gradient_step(agent: ActorCritic, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                  cfg: PPOConfig, ppo_loss: Callable) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """``step(indices, adv)`` for ``ppo_update``: one Adam step on PPO's loss over those transitions."""
    params = list(agent.parameters())

    def step(indices: torch.Tensor, adv: torch.Tensor) -> None:
        indices = indices.to(batch["obs"].device)
        logp, entropy, values = agent.evaluate(batch["obs"][indices], batch["actions"][indices])
        returns = batch["returns"][indices]
        if cfg.clip_vloss:   # off by default: lesson 04 measures it among the implementation details
            values = clipped_values(values, batch["values"][indices], returns, cfg.eps)
        loss = ppo_loss(logp, batch["logp"][indices], adv, values, returns, entropy, eps=cfg.eps, c1=cfg.c1, c2=cfg.c2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm, foreach=True)
        optimizer.step()

    return step


def normalised(adv: torch.Tensor) -> torch.Tensor:
    """Advantages shifted and scaled to zero mean and unit standard deviation (as ``ppo_update`` does per minibatch)."""
    return (adv - adv.mean()) / (adv.std() + 1e-8)


def update(agent: ActorCritic, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], cfg: PPOConfig,
           ppo_loss: Callable, ppo_update: Callable, generator: torch.Generator) -> dict[str, float]:
    """Step 3: ``ppo_update``'s K epochs of minibatches on ``batch``; returns its stats
    (epochs, approx KL, clip fraction). With ``norm_adv = "batch"`` the advantages are normalised here, once,
    and ``ppo_update`` passes them on as they are."""
    @torch.no_grad()
    def evaluate() -> torch.Tensor:
        return agent.evaluate(batch["obs"], batch["actions"])[0]

    if cfg.norm_adv == "batch":
        batch = {**batch, "adv": normalised(batch["adv"])}
    return ppo_update(batch, gradient_step(agent, optimizer, batch, cfg, ppo_loss), evaluate, epochs=cfg.epochs,
                      minibatch_size=cfg.minibatch_size, eps=cfg.eps, target_kl=cfg.target_kl or None,
                      norm_adv=cfg.norm_adv == "minibatch", generator=generator)


@torch.no_grad()
def diagnostics(agent: ActorCritic, batch: dict[str, torch.Tensor], cfg: PPOConfig) -> dict[str, float]:
    """What practitioners read after an update besides ``ppo_update``'s approx KL and clip fraction,
    all on the whole batch with the updated networks.

    policy_loss = -mean(L^CLIP) (lesson 03's ``ppo_policy_loss``; the advantages normalised over the batch
    unless ``norm_adv`` is off),
    value_loss = mean((V - R)^2) (CleanRL logs both for the update's last minibatch, SB3 their mean over
    the update's minibatches); explained_variance = 1 - Var(R - V)/Var(R) with the rollout's values (1: the
    critic predicts the returns, 0: no better than a constant); entropy of the updated policy, averaged;
    advantage_std, the standard deviation of the batch's GAE advantages before any normalisation (their scale).
    """
    logp, entropy, values = agent.evaluate(batch["obs"], batch["actions"])
    var_returns = batch["returns"].var()
    explained = 1 - (batch["returns"] - batch["values"]).var() / var_returns if var_returns > 0 else torch.tensor(0.0)
    adv = normalised(batch["adv"]) if cfg.norm_adv != "off" and len(batch["adv"]) > 1 else batch["adv"]
    return {"policy_loss": ppo_policy_loss(logp, batch["logp"], adv, cfg.eps).item(),
            "value_loss": ((values - batch["returns"]) ** 2).mean().item(),
            "explained_variance": float(explained), "entropy": entropy.mean().item(),
            "advantage_std": batch["adv"].std().item() if len(batch["adv"]) > 1 else 0.0}


def evaluate_greedy(actor: NumpyActor, env_id: str, episodes: int = 20, seed: int = 0,
                    obs_rms: object = None) -> np.ndarray:
    """Returns of ``episodes`` greedy episodes (argmax action; the mean action for a Gaussian policy),
    run side by side in one vector env.

    ``obs_rms``: the observation statistics the actor was trained with (``TrainResult.obs_rms``); the
    evaluation env normalises with a frozen copy of them, so evaluating never changes the training stats.
    """
    env = make_env(env_id, episodes)
    if obs_rms is not None:
        env = gym.wrappers.vector.NormalizeObservation(env)
        env.update_running_mean = False
        env.obs_rms = copy.deepcopy(obs_rms)
    obs, _ = env.reset(seed=seed)
    returns, alive = np.zeros(episodes), np.ones(episodes, bool)
    while alive.any():
        obs, rewards, terminated, truncated, _ = env.step(actor.greedy(obs))
        returns += rewards * alive
        alive &= ~(terminated | truncated)
    env.close()
    return returns


class Stopwatch:
    """Wall-clock and process-CPU seconds of training, with evaluation paused out of both."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self.resume()

    def resume(self) -> None:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def pause(self) -> None:
        self.wall += time.perf_counter() - self._wall0
        self.cpu += time.process_time() - self._cpu0


def log_row(result: TrainResult, step: int, iteration: int, lr: float, clock: Stopwatch,
            stats: dict[str, float]) -> dict:
    """One iteration's log row: step, learning rate, SPS, the diagnostics, recent episode return."""
    recent = [ret for _, ret in result.episodes[-20:]]
    row = {"iteration": iteration, "step": step, "lr": lr, "train_seconds": clock.wall,
           "sps": step / max(clock.wall, 1e-9), "episode_return": float(np.mean(recent)) if recent else float("nan")}
    row.update(stats)
    return row


def make_agent(env: gym.vector.VectorEnv, cfg: PPOConfig, gaussian_log_prob: Callable = reference_log_prob,
               gaussian_entropy: Callable = reference_entropy) -> ActorCritic | GaussianActorCritic:
    """A fresh actor-critic for ``env``: categorical for a Discrete action space, Gaussian for a Box one."""
    obs_dim, space = env.single_observation_space.shape[0], env.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return ActorCritic(obs_dim, int(space.n), cfg.hidden, cfg.ortho_init)
    return GaussianActorCritic(obs_dim, space.shape[0], cfg.hidden, cfg.log_std_init, gaussian_log_prob,
                               gaussian_entropy, cfg.ortho_init)


def train(config: PPOConfig | None = None, *, compute_gae: Callable = reference_gae,
          ppo_loss: Callable = reference_loss, ppo_update: Callable = reference_update,
          gaussian_log_prob: Callable = reference_log_prob, gaussian_entropy: Callable = reference_entropy,
          callback: Callable[[dict, TrainResult], None] | None = None, progress: bool = False,
          agent: ActorCritic | GaussianActorCritic | None = None) -> TrainResult:
    """Train PPO with ``config``; returns a TrainResult (agent, logs, episodes, evaluations).

    ``compute_gae``, ``ppo_loss`` and ``ppo_update`` default to the package's references; lesson 04
    passes the learner's. ``gaussian_log_prob`` and ``gaussian_entropy`` are the Gaussian policy's
    (Box action spaces only; lesson 06 passes the learner's). ``callback(row, result)`` runs after every
    iteration (e.g. to redraw a live curve). ``agent`` continues from given weights (e.g. a loaded
    checkpoint) instead of a fresh init.
    """
    cfg = config or PPOConfig()
    cfg.validate()
    device, threads = select_device(cfg.device), torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    rng, generator = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    env = make_env(cfg.env_id, cfg.num_envs, cfg.norm_obs, cfg.norm_reward, cfg.gamma)
    agent = (agent or make_agent(env, cfg, gaussian_log_prob, gaussian_entropy)).to(device)
    if isinstance(agent, GaussianActorCritic):   # a loaded agent, too, runs the functions it is given
        agent.log_prob_fn, agent.entropy_fn = gaussian_log_prob, gaussian_entropy
    optimizer = make_optimizer(agent, cfg.lr, cfg.adam_eps)
    result, tracker = TrainResult(agent, cfg, obs_rms=find_obs_rms(env)), EpisodeTracker(cfg.num_envs)
    result.episodes = tracker.finished
    obs, _ = env.reset(seed=cfg.seed)
    prev_done, step, per_iteration = np.zeros(cfg.num_envs, bool), 0, cfg.num_envs * cfg.num_steps
    iterations = cfg.iterations
    bar = _progress_bar(iterations * per_iteration) if progress else None
    clock = Stopwatch()
    try:
        for iteration in range(iterations):
            lr = cfg.learning_rate(iteration)
            optimizer.param_groups[0]["lr"] = lr
            # 1. collect a rollout with pi_theta_old (NumPy actor, CPU)
            rollout, obs = collect_rollout(env, agent.numpy_actor(), obs, prev_done, cfg.num_steps, rng, tracker, step)
            step += per_iteration
            # 2. GAE advantages and returns; 3. K epochs of minibatch updates
            batch = prepare_batch(agent, rollout, cfg, compute_gae, device)
            stats = update(agent, optimizer, batch, cfg, ppo_loss, ppo_update, generator)
            # 4. log, and evaluate greedily now and then (evaluation time excluded from the clock)
            stats |= diagnostics(agent, batch, cfg)
            clock.pause()
            row = log_row(result, step, iteration, lr, clock, stats)
            result.logs.append(row)
            _maybe_evaluate(result, step, per_iteration, clock, last=iteration == iterations - 1)
            _report(bar, row, result, per_iteration)
            if callback is not None:
                callback(row, result)
            clock.resume()
    finally:
        env.close()
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    return result


def _maybe_evaluate(result: TrainResult, step: int, per_iteration: int, clock: Stopwatch, last: bool) -> None:
    """Greedy evaluation when ``step`` crossed a multiple of ``eval_every`` this iteration, and after the last one."""
    cfg = result.config
    if cfg.eval_every and (last or step // cfg.eval_every > (step - per_iteration) // cfg.eval_every):
        returns = evaluate_greedy(result.agent.numpy_actor(), cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 10_000,
                                  obs_rms=result.obs_rms)
        result.evals.append({"step": step, "mean": float(returns.mean()), "std": float(returns.std()),
                             "train_seconds": clock.wall, "train_cpu_seconds": clock.cpu})


def _progress_bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", desc="PPO", dynamic_ncols=True)


def _report(bar, row: dict, result: TrainResult, per_iteration: int) -> None:
    if bar is None:
        return
    postfix = {"return": f"{row['episode_return']:.0f}", "sps": f"{row['sps']:.0f}"}
    if result.evals:
        postfix["greedy"] = f"{result.evals[-1]['mean']:.0f}"
    bar.set_postfix(postfix, refresh=False)
    bar.update(per_iteration)


def save_checkpoint(path, result: TrainResult) -> None:
    """Save the agent's weights, its sizes, the observation statistics (with norm_obs) and the config
    that trained it (a torch .pt file)."""
    agent, rms = result.agent, result.obs_rms
    sizes = ({"action_dim": agent.action_dim} if isinstance(agent, GaussianActorCritic)
             else {"n_actions": agent.n_actions})
    torch.save({"config": asdict(result.config), "obs_dim": agent.obs_dim, **sizes, "state_dict": agent.state_dict(),
                "obs_rms": None if rms is None else {"mean": rms.mean.tolist(), "var": rms.var.tolist(),
                                                     "count": float(rms.count)},
                "step": result.logs[-1]["step"] if result.logs else 0}, path)


def load_checkpoint(path) -> tuple[ActorCritic | GaussianActorCritic, PPOConfig]:
    """The agent (on the CPU) and the config saved by ``save_checkpoint``; ``checkpoint_obs_rms`` has the
    observation statistics to evaluate it with."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    known = {f.name for f in fields(PPOConfig)}   # a checkpoint from an older version may hold retired knobs
    config = PPOConfig(**{name: value for name, value in data["config"].items() if name in known})
    if "action_dim" in data:
        agent = GaussianActorCritic(data["obs_dim"], data["action_dim"], config.hidden)
    else:
        agent = ActorCritic(data["obs_dim"], data["n_actions"], config.hidden)
    agent.load_state_dict(data["state_dict"])
    return agent, config


def checkpoint_obs_rms(path) -> object:
    """The observation statistics saved with a checkpoint (a gymnasium RunningMeanStd), or None."""
    saved = torch.load(path, map_location="cpu", weights_only=True).get("obs_rms")
    if saved is None:
        return None
    from gymnasium.wrappers.utils import RunningMeanStd

    rms = RunningMeanStd(shape=(len(saved["mean"]),))
    rms.mean, rms.var, rms.count = (np.array(saved["mean"]), np.array(saved["var"]), saved["count"])
    return rms
