"""Unit tests of the lesson 01/02 reference modules (importance, trust_region) and their slider widgets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ppo_course import importance
from ppo_course import trust_region as tr
from ppo_course.widgets.importance_explorer import ImportanceExplorer
from ppo_course.widgets.trust_region_explorer import TrustRegionExplorer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_problem():
    policy = tr.make_policy(seed=1)
    return tr.TRPOProblem(policy, tr.collect_cartpole_batch(policy, n_steps=400, seed=1), damping=0.01)


# --- importance -------------------------------------------------------------------------------------

def test_is_estimate_is_exact_on_samples_in_q_proportions():
    p, q, f = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.3, 0.5]), torch.tensor([1.0, 2.0, 3.0])
    x = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    assert torch.isclose(importance.is_estimate(f[x], p[x], q[x]), p @ f), (
        f"IS on samples in q's proportions must give E_p[f] = {float(p @ f):.4f},"
        f" got {float(importance.is_estimate(f[x], p[x], q[x])):.4f}")
    batched = importance.is_estimate(f[x].expand(4, 10), p[x].expand(4, 10), q[x].expand(4, 10))
    assert batched.shape == (4,), (
        f"is_estimate must average over the last axis only: shape {tuple(batched.shape)}, want (4,)")


def test_probability_ratio_is_stable_and_one_at_theta_old():
    logp = torch.tensor([-120.0, -0.5])
    assert torch.equal(importance.probability_ratio(logp, logp), torch.ones(2)), (
        "the ratio must be exactly 1 where logp equals logp_old, even at a log-probability of -120")
    assert torch.isclose(importance.probability_ratio(torch.tensor(-120.0), torch.tensor(-121.0)),
                         torch.tensor(math.e)), (
        "a log-probability gap of 1 at -120 must give a ratio of e: compute it from the log difference")


def test_surrogate_gradient_at_theta_old_is_the_policy_gradient():
    gen = torch.Generator().manual_seed(0)
    states, W = torch.randn(64, 4, generator=gen), torch.randn(4, 3, generator=gen, requires_grad=True)
    probs = torch.softmax(states @ W, -1).detach()
    actions = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
    adv = torch.randn(64, generator=gen)
    logp = torch.log_softmax(states @ W, -1)[torch.arange(64), actions]
    logp_old = logp.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(importance.surrogate_objective(logp, logp_old, adv), W)
    score = states[:, :, None] * (torch.nn.functional.one_hot(actions, 3) - probs)[:, None, :]
    assert torch.allclose(grad, (score * adv[:, None, None]).mean(0), atol=1e-6), (
        "at theta_old the surrogate's gradient must be the policy gradient, the mean of score * advantage")


def test_gaussian_variance_formula_matches_simulation():
    assert importance.gaussian_is_variance(0.0, n_samples=100) == pytest.approx(2.0 / 100), (   # Var_p[x^2] = 2
        f"at shift 0 the IS variance with 100 samples must be 2 / 100,"
        f" got {importance.gaussian_is_variance(0.0, n_samples=100)}")
    measured = importance.gaussian_is_trials(0.5, n_samples=20, n_trials=20000, seed=3).var()
    assert float(measured) == pytest.approx(importance.gaussian_is_variance(0.5, n_samples=20), rel=0.1), (
        f"the simulated variance {float(measured):.4f} must be within 10% of the formula's"
        f" {importance.gaussian_is_variance(0.5, n_samples=20):.4f}")


def test_gaussian_trials_are_seeded_and_unbiased():
    first = importance.gaussian_is_trials(0.5, n_samples=50, n_trials=500, seed=7)
    assert torch.equal(first, importance.gaussian_is_trials(0.5, n_samples=50, n_trials=500, seed=7)), (
        "gaussian_is_trials with the same seed must give the same trials")
    assert float(first.mean()) == pytest.approx(importance.TRUE_VALUE, abs=0.05), (
        f"the trials' mean {float(first.mean()):.4f} must be within 0.05 of the true value {importance.TRUE_VALUE}")


# --- trust_region: the four exercises ----------------------------------------------------------------

def test_categorical_kl_matches_torch_distributions_and_ignores_logit_shifts():
    gen = torch.Generator().manual_seed(0)
    p, q = torch.randn(5, 3, 4, generator=gen), torch.randn(5, 3, 4, generator=gen)
    expected = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=p),
                                                 torch.distributions.Categorical(logits=q))
    assert torch.allclose(tr.categorical_kl(p, q), expected, atol=1e-6), (
        f"categorical_kl must match torch.distributions' KL, largest gap"
        f" {(tr.categorical_kl(p, q) - expected).abs().max():.2e}")
    assert torch.allclose(tr.categorical_kl(p + 3.0, q - 1.0), expected, atol=1e-5), (
        "categorical_kl must not change when a constant is added to every logit of either distribution")
    assert torch.allclose(tr.categorical_kl(p, p), torch.zeros(5, 3), atol=1e-7), (
        f"the KL of a distribution to itself must be 0, got up to {tr.categorical_kl(p, p).abs().max():.2e}")
    assert torch.isfinite(tr.categorical_kl(torch.tensor([0.0, -200.0]), torch.zeros(2))), (
        f"categorical_kl must stay finite with a logit of -200, got"
        f" {tr.categorical_kl(torch.tensor([0.0, -200.0]), torch.zeros(2))}")


def counting(matrix):
    calls = []
    return (lambda v: calls.append(1) or matrix @ v), calls


def test_conjugate_gradient_solves_and_stops_early():
    gen = torch.Generator().manual_seed(0)
    M = torch.randn(8, 8, generator=gen, dtype=torch.float64)
    A, b = M @ M.T + torch.eye(8, dtype=torch.float64), torch.randn(8, generator=gen, dtype=torch.float64)
    Avp, calls = counting(A)
    assert torch.allclose(tr.conjugate_gradient(Avp, b, iters=50), torch.linalg.solve(A, b), atol=1e-8), (
        f"conjugate_gradient must solve A x = b, largest error"   # A @ v, not Avp: the message must not add to calls
        f" {(tr.conjugate_gradient(lambda v: A @ v, b, iters=50) - torch.linalg.solve(A, b)).abs().max():.2e}")
    assert len(calls) <= 9, f"CG on an 8 x 8 system must converge within 9 products, it took {len(calls)}"
    Avp, calls = counting(torch.diag(torch.tensor([2.0, 2.0, 7.0, 7.0], dtype=torch.float64)))
    tr.conjugate_gradient(Avp, torch.ones(4, dtype=torch.float64))
    assert len(calls) == 2, "two distinct eigenvalues: two products, then stop"


def test_conjugate_gradient_of_zero_is_zero_without_products():
    Avp, calls = counting(torch.eye(3))
    x = tr.conjugate_gradient(Avp, torch.zeros(3))
    assert torch.equal(x, torch.zeros(3)) and not calls, (
        f"CG of b = 0 must return 0 without a matrix-vector product, got {x.tolist()} after {len(calls)} products")


def test_trpo_step_size_reaches_the_boundary_of_the_quadratic_model():
    gen = torch.Generator().manual_seed(0)
    M = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    F, s = M @ M.T + 0.1 * torch.eye(5, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)
    step = tr.trpo_step_size(s, F @ s, 0.02) * s
    assert float(0.5 * step @ F @ step) == pytest.approx(0.02), (
        f"the step must reach the model's boundary 0.5 s^T F s = 0.02, got {float(0.5 * step @ F @ step):.5f}")


@pytest.mark.parametrize("gain_of,kl_of,expected", [
    (lambda t: t, lambda t: 0.005 * t * t, 1.0),            # full step fine
    (lambda t: t, lambda t: 0.03 * t * t, 0.5),             # KL too big at 1
    (lambda t: t * (0.3 - t), lambda t: 0.0, 0.25),         # no improvement at 1 and 1/2
    (lambda t: -t, lambda t: 0.0, 0.0),                     # never improves: no update
])
def test_backtracking_line_search_returns_the_first_acceptable_step(gain_of, kl_of, expected):
    step = tr.backtracking_line_search(lambda s: (gain_of(float(s[0])), kl_of(float(s[0]))), torch.tensor([1.0]), 0.01)
    assert float(step[0]) == pytest.approx(expected), (
        f"the line search must accept the step fraction {expected}, got {float(step[0])}")


# --- trust_region: the plumbing ----------------------------------------------------------------------

def test_rewards_to_go_restart_at_episode_ends():
    rtg = tr.rewards_to_go(np.array([1.0, 1.0, 1.0, 1.0]), np.array([False, True, False, False]), gamma=0.5)
    assert rtg.tolist() == [1.5, 1.0, 1.5, 1.0], (
        f"rewards-to-go (gamma 0.5, an episode end at step 1) must be [1.5, 1.0, 1.5, 1.0], got {rtg.tolist()}")


def test_cartpole_batch_is_seeded_and_standardised():
    policy = tr.make_policy(seed=0)
    first, second = (tr.collect_cartpole_batch(policy, n_steps=150, seed=4) for _ in range(2))
    assert first.obs.shape == (150, 4) and first.actions.shape == (150,) and first.advantages.shape == (150,), (
        f"a 150-step batch must hold obs (150, 4), actions (150,) and advantages (150,),"
        f" got {tuple(first.obs.shape)}, {tuple(first.actions.shape)} and {tuple(first.advantages.shape)}")
    assert torch.equal(first.obs, second.obs) and torch.equal(first.actions, second.actions), (
        "two batches collected with the same seed must hold the same observations and actions")
    assert (abs(float(first.advantages.mean())) < 1e-5
            and float(first.advantages.std()) == pytest.approx(1.0, rel=0.01)), (
        f"the advantages must be standardised, got mean {float(first.advantages.mean()):.2e}"
        f" and std {float(first.advantages.std()):.4f}")


def test_flat_policy_matches_the_module():
    policy = tr.make_policy(seed=0)
    flat, obs = tr.FlatPolicy(policy), torch.randn(7, 4)
    assert torch.allclose(flat.logits(obs, flat.theta), policy(obs)), (
        "FlatPolicy.logits at its own theta must equal the module's output")
    assert flat.theta.numel() == sum(p.numel() for p in policy.parameters()), (
        f"theta must hold all {sum(p.numel() for p in policy.parameters())} parameters, it holds {flat.theta.numel()}")


def test_fisher_vector_product_equals_the_hessian_of_the_mean_kl():
    policy = tr.make_policy(obs_dim=3, n_actions=2, hidden=4, seed=0)
    flat, obs = tr.FlatPolicy(policy), torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    old = flat.logits(obs, flat.theta).detach()

    def mean_kl(theta):
        return tr.categorical_kl(old, flat.logits(obs, theta)).mean()

    hessian = torch.autograd.functional.hessian(mean_kl, flat.theta)
    v = torch.randn(flat.theta.numel(), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(tr.fisher_vector_product(mean_kl, flat.theta, v), hessian @ v, atol=1e-6), (
        "the Fisher-vector product must equal the Hessian of the mean KL times v")
    assert torch.allclose(tr.fisher_vector_product(mean_kl, flat.theta, v, damping=0.5), hessian @ v + 0.5 * v,
                          atol=1e-6), "with damping 0.5 the Fisher-vector product must be (H + 0.5 I) v"


def test_trpo_update_respects_the_trust_region_and_improves(small_problem):
    update = tr.trpo_update(small_problem, delta=0.01)
    assert 0 < update.kl <= 0.01 and update.gain > 0, (
        f"the update must stay in the trust region and improve: KL {update.kl:.5f} (want 0 < KL <= 0.01),"
        f" gain {update.gain:.5f} (want > 0)")
    g = small_problem.gradient()
    plain_gain, plain_kl = small_problem.evaluate(g / g.norm() * update.step.norm())
    assert plain_kl > update.kl, "a plain gradient step of the same length moves the policy further"


def test_trpo_update_sizes_its_full_step_on_the_damped_model(small_problem):
    """trpo_step_size gets (F + damping I) s: the damped model's KL is delta, the Fisher term's alone is below it."""
    update = tr.trpo_update(small_problem, delta=0.01)
    full = update.full_step
    damped_kl = float(0.5 * full @ small_problem.fvp(full))
    fisher_kl = float(0.5 * full @ tr.fisher_vector_product(small_problem.mean_kl, small_problem.theta_old, full))
    assert damped_kl == pytest.approx(0.01, rel=1e-4), (
        f"the full step must put the damped model 1/2 s^T (F + lambda I) s at delta = 0.01, got {damped_kl:.5f}")
    assert fisher_kl < damped_kl, (
        f"the damping term adds lambda |s|^2 / 2 > 0: the Fisher term alone ({fisher_kl:.5f}) must be below "
        f"{damped_kl:.5f}")


def test_trpo_update_runs_the_functions_it_is_given(small_problem):
    """Lesson 02 runs trpo_update with the learner's solvers, on a problem whose mean KL uses their KL."""
    calls = []

    def recorded(name, function):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return function(*args, **kwargs)
        return wrapper

    policy = tr.make_policy(seed=1)
    problem = tr.TRPOProblem(policy, small_problem.batch, damping=0.01, kl=recorded("kl", tr.categorical_kl))
    update = tr.trpo_update(problem, delta=0.01,
                            conjugate_gradient=recorded("conjugate_gradient", tr.conjugate_gradient),
                            trpo_step_size=recorded("trpo_step_size", tr.trpo_step_size),
                            backtracking_line_search=recorded("backtracking_line_search", tr.backtracking_line_search))
    assert {"kl", "conjugate_gradient", "trpo_step_size", "backtracking_line_search"} <= set(calls), calls
    reference = tr.trpo_update(small_problem, delta=0.01)
    assert torch.equal(update.step, reference.step) and update.kl == reference.kl, (
        "the reference functions passed explicitly must give the default update")


# --- widgets -----------------------------------------------------------------------------------------

def test_importance_explorer_redraws_in_place():
    def unfinished(f_x, p_x, q_x):
        raise NotImplementedError()

    explorer = ImportanceExplorer(estimator=unfinished, n_trials=100)
    assert "reference" in explorer.readout.get_text(), (
        f"an unfinished estimator must leave the readout on the reference, it reads {explorer.readout.get_text()!r}")
    figure, q_line, bars = explorer.figure.fig, explorer.q_line, list(explorer.bars)
    heights = [bar.get_height() for bar in bars]
    explorer.shift.value = 1.5
    assert explorer.figure.fig is figure and explorer.q_line is q_line and list(explorer.bars) == bars, (
        "moving the slider must redraw the same figure, q line and bars, not make new ones")
    assert float(np.asarray(q_line.get_xydata())[np.argmax(q_line.get_ydata()), 0]) == pytest.approx(1.5, abs=0.05), (
        f"after shift = 1.5 the q density must peak at x = 1.5, it peaks at"
        f" {float(np.asarray(q_line.get_xydata())[np.argmax(q_line.get_ydata()), 0]):.2f}")
    assert [bar.get_height() for bar in bars] != heights, "the bars' heights must change when the shift moves"
    learner = ImportanceExplorer(estimator=importance.is_estimate, n_trials=100)
    assert "your is_estimate" in learner.readout.get_text(), (
        f"a learner's estimator must be named in the readout, it reads {learner.readout.get_text()!r}")

    def broken(f_x, p_x, q_x):
        return f_x.mean(-1) + undefined_name  # noqa: F821  (a typical half-written answer)

    assert "NameError" in ImportanceExplorer(estimator=broken, n_trials=100).readout.get_text(), (
        "a broken estimator's NameError must show in the readout")


def test_trust_region_explorer_tracks_delta(small_problem):
    explorer = TrustRegionExplorer(small_problem, delta=0.01, n_points=12)
    figure, bound = explorer.figure.fig, explorer.bounds[0]
    for delta in (0.002, 0.05):
        explorer.delta.value = delta
        assert explorer.figure.fig is figure and explorer.bounds[0] is bound, (
            f"delta = {delta}: the slider must redraw the same figure and bound line, not make new ones")
        assert bound.get_ydata()[0] == pytest.approx(delta), (
            f"the KL bound line must sit at delta = {delta}, it sits at {bound.get_ydata()[0]}")
        length, kl = (float(x) for x in np.asarray(explorer.marks[explorer.ax_kl, "accepted"].get_xydata())[0])
        assert kl <= delta + 1e-9 and length > 0, (
            f"the accepted step must lie in the trust region: KL {kl:.5f} <= delta {delta} and length {length:.4f} > 0")
        assert f"δ = {delta:.4f}" in explorer.readout.value, (
            f"the readout must show δ = {delta:.4f}, it reads {explorer.readout.value!r}")
