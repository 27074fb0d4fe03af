"""Unit tests of ppo_course.rlhf (lesson 05's toy RLHF) and of its slider, BetaExplorer."""
from __future__ import annotations

import copy
from dataclasses import asdict

import pytest
import torch

from ppo_course import rlhf
from ppo_course.widgets.beta_explorer import BetaExplorer

from conftest import SOLUTIONS

SWEEP_FILE = SOLUTIONS / "05-ppo-for-rlhf" / "beta_sweep.json"
BETA = rlhf.RLHFConfig().beta   # the lesson's beta (its setup cell checks the same: tests/test_lesson05_numbers.py)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_reference():
    return rlhf.pretrain(steps=30, seed=0)


@pytest.fixture(scope="module")
def pairs():
    return rlhf.label_preferences(600, seed=1)


@pytest.fixture(scope="module")
def small_reward_model(pairs):
    return rlhf.train_reward_model(pairs, steps=20, batch_size=64)


def test_corpus_is_made_of_reviews_and_round_trips():
    prompts, completions = rlhf.make_corpus(size=200, seed=1)
    assert all(rlhf.is_review(p, c) for p, c in zip(prompts.tolist(), completions.tolist())), (
        "every corpus sample must be a review the reader accepts")
    text = rlhf.decode(prompts[0], completions[0])
    prompt_word, words = text.split(": ")
    again_prompts, again = rlhf.tokenize(prompt_word, [words])
    assert torch.equal(again[0], completions[0]) and again_prompts[0] == prompts[0], (
        f"tokenizing the decoded text {text!r} must give back the same prompt and completion")


@pytest.mark.parametrize("text", ["very very very very very very very very", "was tasty .",
                                  "was good and bad and fine .", "was very .", "was good", "was great great ."])
def test_reader_calls_non_reviews_nonsense(text):
    prompts, completions = rlhf.tokenize("movie", [text])   # "tasty" is food's adjective, not a movie's
    assert rlhf.human_score(prompts, completions).item() == rlhf.NONSENSE_SCORE, (
        f"the reader must score {text!r} as nonsense ({rlhf.NONSENSE_SCORE}),"
        f" got {rlhf.human_score(prompts, completions).item()}")


def test_tokenize_names_unknown_words_and_overlong_texts():
    with pytest.raises(ValueError, match="not in the vocabulary: \\['cheap'\\]"):
        rlhf.tokenize("food", ["was cheap ."])
    with pytest.raises(ValueError, match="at most 8"):
        rlhf.tokenize("food", ["was " + "very " * 8 + "good ."])


def test_labellers_read_real_reviews_and_choose_with_bradley_terry_noise():
    pairs = rlhf.label_preferences(3000, seed=5)
    prompts = pairs.prompts.tolist()
    for completions in (pairs.chosen, pairs.rejected):
        assert all(rlhf.is_review(p, c) for p, c in zip(prompts, completions.tolist())), (
            "labellers read only real reviews of the prompt (the grammar's), never other text")
    assert not (pairs.chosen == pairs.rejected).all(dim=1).any(), "a pair never shows the same review twice"
    margin = rlhf.human_score(pairs.prompts, pairs.chosen) - rlhf.human_score(pairs.prompts, pairs.rejected)
    expected_against = torch.sigmoid(-margin.abs())[margin != 0].mean()
    against = (margin < 0)[margin != 0].float().mean()
    assert abs(against - expected_against) < 0.03, (
        f"with P(a > b) = sigmoid(h(a) - h(b)), {expected_against:.3f} of the labels of unequal pairs should go"
        f" against the reader, got {against:.3f}")
    again = rlhf.label_preferences(3000, seed=5)
    assert torch.equal(again.chosen, pairs.chosen) and torch.equal(again.rejected, pairs.rejected), (
        "labelling is seeded: the same seed must give the same pairs and labels")


def test_preference_loss_and_accuracy_reference():
    chosen = torch.tensor([2.0, 0.0, -1.0], requires_grad=True)
    rejected = torch.tensor([1.0, 0.0, 1.0], requires_grad=True)
    loss = rlhf.preference_loss(chosen, rejected)
    loss.backward()
    assert loss.item() == pytest.approx(1.0444, abs=1e-4), f"-log sigmoid of [1, 0, -2], averaged, got {loss.item()}"
    assert torch.allclose(chosen.grad, -rejected.grad) and chosen.grad[2] < chosen.grad[0] < 0, (
        f"the gradient pushes chosen up and rejected down, most on the pair ranked wrong, got {chosen.grad.tolist()}")
    assert rlhf.preference_loss(torch.tensor([-100.0]), torch.tensor([100.0])).item() == pytest.approx(200), (
        "a pair ranked wrong by 200 costs 200 (logsigmoid, no underflow)")
    assert rlhf.preference_accuracy(torch.tensor([1.0, 0.0, 2.0, 1.0]), torch.tensor([0.0, 1.0, 2.0, 0.5])) == 0.625, (
        "accuracy: 2 right, 1 wrong and a tie that counts half, of 4")


def test_reward_model_reads_the_whole_completion_and_is_centred(pairs, small_reward_model):
    prompts, completions = rlhf.tokenize("food", ["was great .", "was great", "was great great great great great ."])
    with torch.no_grad():
        scores = small_reward_model(prompts, completions)
    assert len(set(scores.tolist())) == 3, f"the score must depend on every token, even the last, got {scores.tolist()}"
    assert not any(p.requires_grad for p in small_reward_model.parameters()), "the reward model comes back frozen"
    with torch.no_grad():
        labelled = torch.cat([small_reward_model(pairs.prompts, pairs.chosen),
                              small_reward_model(pairs.prompts, pairs.rejected)])
    assert abs(labelled.mean().item()) < 1e-4, (
        f"the scale is shifted so that the labelled reviews average 0 (InstructGPT), got {labelled.mean().item():.2e}")


def test_reward_model_learns_as_well_as_the_noise_allows():
    pairs, held_out = rlhf.label_preferences(2000, seed=1), rlhf.label_preferences(1000, seed=2)
    seen = []

    def spy_loss(chosen, rejected):
        seen.append(chosen.shape)
        return rlhf.preference_loss(chosen, rejected)

    model = rlhf.train_reward_model(pairs, steps=100, loss_fn=spy_loss)
    assert seen == [torch.Size([256])] * 100, "train_reward_model calls the loss it is given once per step"
    with torch.no_grad():
        accuracy = rlhf.preference_accuracy(model(held_out.prompts, held_out.chosen),
                                            model(held_out.prompts, held_out.rejected))
    ceiling = rlhf.preference_accuracy(rlhf.human_score(held_out.prompts, held_out.chosen),
                                       rlhf.human_score(held_out.prompts, held_out.rejected))
    assert ceiling - 0.04 < accuracy <= ceiling + 0.02, (
        f"on held-out pairs the reward model must come close to the reader's own agreement with the noisy labels"
        f" ({ceiling:.3f}), got {accuracy:.3f}")


def test_padding_is_forced_and_free(small_reference):
    gen = torch.Generator().manual_seed(0)
    prompts = rlhf.sample_prompts(rlhf.RLHFConfig(prompts_per_batch=4), gen)
    completions = small_reference.generate(prompts, gen)
    logp = rlhf.token_log_probs(small_reference, prompts, completions)
    real = rlhf.real_tokens(completions)
    assert (completions[~real] == rlhf.PAD_ID).all(), "only <pad> may follow '.'"
    assert (completions[real] != rlhf.PAD_ID).all(), "<pad> never comes before '.'"
    assert (logp[~real] == 0).all() and (logp[real] < 0).all(), (
        "<pad> tokens must have log-probability 0 and real tokens a negative one")
    assert rlhf.last_token(completions).sum(1).eq(1).all(), (
        f"each completion must have exactly one last token, counts {rlhf.last_token(completions).sum(1).tolist()}")


def test_exact_kl_is_zero_to_itself_and_positive_after_a_change(small_reference):
    gen = torch.Generator().manual_seed(0)
    prompts = rlhf.sample_prompts(rlhf.RLHFConfig(prompts_per_batch=4), gen)
    completions = small_reference.generate(prompts, gen)
    assert rlhf.exact_kl(small_reference, small_reference, prompts, completions).abs().max() < 1e-6, (
        f"the exact KL of the reference to itself must be 0, got up to"
        f" {float(rlhf.exact_kl(small_reference, small_reference, prompts, completions).abs().max()):.2e}")
    moved = rlhf.TinyLM()
    moved.load_state_dict(small_reference.state_dict())
    with torch.no_grad():
        moved.body[-1].bias[rlhf.VERY_ID] += 2.0
    assert (rlhf.exact_kl(moved, small_reference, prompts, completions) > 0).all(), (
        "raising the 'very' logit must make the exact KL positive on every completion")


def test_kl_penalized_reward_reference():
    rewards = torch.tensor([[0.0, 0.0, 2.0]])
    out = rlhf.kl_penalized_reward(rewards, torch.tensor([[-1.0, -0.5, -0.2]]), torch.tensor([[-1.2, -0.5, -1.0]]), 0.1)
    assert torch.allclose(out, torch.tensor([[-0.02, 0.0, 1.92]])), (
        f"the penalised reward must be reward - beta * (logp_policy - logp_reference) per token, got {out.tolist()}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [0.1, 0.3, -0.7, 2.2, 1000.1, 1 / 3])
@pytest.mark.parametrize("size", [3, 6, 7, 8])
def test_group_relative_advantages_are_exactly_zero_for_equal_rewards(dtype, value, size):
    rewards = torch.cat([torch.full((size,), value, dtype=dtype), torch.arange(size, dtype=dtype)])
    out = rlhf.group_relative_advantages(rewards, size)
    assert torch.equal(out[:size], torch.zeros(size, dtype=dtype)), (
        f"{size} rewards of {value} ({dtype}, computed std {rewards[:size].std().item():.1e}) must give exactly 0,"
        f" got {out[:size].tolist()}")
    spread = (rewards[size:] - rewards[size:].mean()) / rewards[size:].std()
    assert torch.allclose(out[size:], spread), "the group beside the tied one is standardised by its own sample std"


def test_group_relative_advantages_standardise_a_tiny_genuine_spread():
    out = rlhf.group_relative_advantages(torch.tensor([1.0, 1.0 + 1e-6, 1.0, 1.0], dtype=torch.float64), 4)
    assert torch.allclose(out, torch.tensor([-0.5, 1.5, -0.5, -0.5], dtype=torch.float64)), (
        f"rewards that differ, however little, are standardised (unlike TRL's std + 1e-4), got {out.tolist()}")


def test_dpo_loss_is_the_preference_loss_of_implicit_rewards():
    reference = torch.tensor([-3.0, -4.0]), torch.tensor([-5.0, -2.0])
    assert rlhf.dpo_loss(*reference, *reference, 0.5).item() == pytest.approx(0.6931, abs=1e-4), (
        "at the start of training (policy = reference) every implicit reward is 0 and the loss is log 2")
    policy = torch.tensor([-2.0, -4.5]), torch.tensor([-5.5, -1.0])
    implicit = 0.5 * (policy[0] - reference[0]), 0.5 * (policy[1] - reference[1])
    assert rlhf.dpo_loss(*policy, *reference, 0.5).item() == pytest.approx(rlhf.preference_loss(*implicit).item()), (
        "DPO's loss is preference_loss of beta * (log pi - log pi_ref) of the chosen and the rejected completion")


def test_train_dpo_uses_the_loss_it_is_given_and_is_seeded(small_reference, pairs, small_reward_model):
    seen = []

    def spy_loss(*args):
        seen.append(args[-1])
        return rlhf.dpo_loss(*args)

    config = rlhf.DPOConfig(beta=0.3, epochs=1, pairs_per_batch=100, eval_every=2)
    _, first = rlhf.train_dpo(small_reference, pairs, config, small_reward_model, loss_fn=spy_loss)
    _, second = rlhf.train_dpo(small_reference, pairs, config, small_reward_model)
    assert seen == [0.3] * 6, f"600 pairs in batches of 100: 6 calls of the given loss with beta 0.3, saw {seen}"
    assert first.reward == second.reward and first.kl == second.kl and first.samples == second.samples, (
        "two DPO runs with the same config and seed must give the same curves and samples")
    assert len(first.kl) == 1 + 3 and first.kl[0] == pytest.approx(0, abs=1e-6) and first.kl[-1] > 0, (
        f"one point before training and one every 2 of the 6 steps, the KL starting at 0, got {first.kl}")
    assert first.method == "dpo" and first.cpu_seconds > 0 and first.seconds == sorted(first.seconds), (
        "a DPO run records its CPU time, never decreasing")


@pytest.mark.parametrize("method", ["ppo", "grpo"])
def test_finetune_uses_the_functions_it_is_given_and_is_seeded(small_reference, small_reward_model, method):
    seen = []

    def spy_reward(rewards, logp_policy, logp_reference, beta):
        seen.append((tuple(rewards.shape), tuple(logp_policy.shape), beta))
        return rlhf.kl_penalized_reward(rewards, logp_policy, logp_reference, beta)

    config = rlhf.RLHFConfig(beta=0.2, iterations=2, prompts_per_batch=4, group_size=4, epochs=1, minibatches=2)
    _, first = rlhf.finetune(small_reference, small_reward_model, config, method=method, kl_reward=spy_reward)
    _, second = rlhf.finetune(small_reference, small_reward_model, config, method=method)
    assert seen == [((16, rlhf.MAX_LEN), (16, rlhf.MAX_LEN), 0.2)] * 2, (
        f"finetune must call the given kl_reward once per iteration on (16, {rlhf.MAX_LEN}) tensors with beta 0.2,"
        f" saw {seen}")
    assert first.reward == second.reward and first.kl == second.kl and first.samples == second.samples, (
        "two runs with the same config and seed must give the same rewards, KLs and samples")
    assert len(first.reward) == len(first.kl) == len(first.human) == 2 and first.kl[0] == pytest.approx(0, abs=1e-6), (
        f"two iterations must give two points per curve, the KL starting at 0, got reward {first.reward},"
        f" kl {first.kl}, human {first.human}")
    assert len(first.samples) == 3 * len(rlhf.PROMPT_WORDS), (
        f"finetune must keep 3 samples per prompt word ({3 * len(rlhf.PROMPT_WORDS)}), got {len(first.samples)}")
    assert len(first.rollout_seconds) == len(first.update_seconds) == len(first.update_kl) == 2 and all(
        low <= 1 <= high for low, high in first.update_ratio), (
        "each iteration records its rollout and update CPU time, the update's KL and the range of r around 1")


def test_update_is_lesson_04s_loop_over_completions(small_reference, small_reward_model):
    config = rlhf.RLHFConfig(prompts_per_batch=4, group_size=4, epochs=3, minibatches=2)
    gen = torch.Generator().manual_seed(0)
    policy = copy.deepcopy(small_reference).requires_grad_(True)
    rollout = rlhf.collect(policy, small_reference, small_reward_model, config, gen, rlhf.kl_penalized_reward)
    rollout = rlhf.grpo_advantages(rollout, config.group_size, rlhf.group_relative_advantages)
    assert rlhf.update_size(policy, rollout) == {"kl": 0.0, "ratio_min": 1.0, "ratio_max": 1.0}, (
        "before any step the policy is the one that sampled the batch: KL 0 and every ratio 1")
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    stats = rlhf.update(policy, optimizer, rollout, config, gen)
    steps = int(optimizer.state[next(policy.parameters())]["step"])
    assert steps == config.epochs * config.minibatches, f"expected K * minibatches = 6 Adam steps, got {steps}"
    assert stats["epochs"] == config.epochs and stats["approx_kl"] >= 0 and 0 <= stats["clip_fraction"] <= 1, stats
    moved = rlhf.update_size(policy, rollout)
    assert moved["kl"] > 0 and moved["ratio_min"] < 1 < moved["ratio_max"], f"the update moved the policy: {moved}"


def test_finetune_rejects_an_unknown_method(small_reference, small_reward_model):
    with pytest.raises(ValueError, match="'dqn'"):
        rlhf.finetune(small_reference, small_reward_model, rlhf.RLHFConfig(iterations=1), method="dqn")


def test_stored_sweep_matches_the_code_and_tells_the_lessons_story():
    sweep = rlhf.load_sweep(SWEEP_FILE)
    assert [run.beta for run in sweep["runs"]] == list(rlhf.SWEEP_BETAS), (
        f"the stored sweep's betas must be rlhf.SWEEP_BETAS {list(rlhf.SWEEP_BETAS)}: regenerate beta_sweep.json")
    assert [run.beta for run in sweep["dpo"]] == [b for b in rlhf.SWEEP_BETAS if b > 0], (
        "the stored DPO runs must be one per beta above 0: regenerate beta_sweep.json")
    assert sorted({(run.epochs, run.seed) for run in sweep["epochs"]}) == sorted(
        (k, s) for k in rlhf.SWEEP_EPOCHS for s in rlhf.sweep.EPOCH_SEEDS), "one K-epoch run per K and seed: regenerate"
    assert sweep["config"] == asdict(rlhf.RLHFConfig()) and sweep["dpo_config"] == asdict(rlhf.DPOConfig()), (
        "the stored sweep's configs must be RLHFConfig's and DPOConfig's defaults: regenerate beta_sweep.json")
    model = sweep["reward_model"]
    assert model["accuracy"] > model["reader_accuracy"] - 0.04, (
        f"the lesson says the reward model comes close to the reader's agreement with the labels, got {model}")
    finals = {run.beta: run.final() for run in sweep["runs"]}
    assert finals[0.0]["human"] == rlhf.NONSENSE_SCORE and finals[0.0]["kl"] > 20 and finals[0.0]["reward"] > 4, (
        f"the lesson says beta = 0 hacks the reward (nonsense, KL > 20, reward > 4), the sweep ends at {finals[0.0]}")
    assert finals[BETA]["reviews"] > 0.9 and finals[BETA]["human"] > 1.0 and finals[BETA]["kl"] < 3, (
        f"the lesson says beta = {BETA} keeps writing reviews (> 90%, reader > 1, KL < 3), it ends at {finals[BETA]}")
    assert min(b for b, f in finals.items() if f["reviews"] > 0.9) == BETA, (
        f"the lesson's beta = {BETA} must be the smallest of the sweep with over 90% real reviews")
    kls = [finals[b]["kl"] for b in rlhf.SWEEP_BETAS]
    assert kls == sorted(kls, reverse=True), "more KL weight must mean less drift"
    dpo = {run.beta: run.final() for run in sweep["dpo"]}
    assert dpo[BETA]["reviews"] > 0.9 and abs(dpo[BETA]["human"] - finals[BETA]["human"]) < 0.3, (
        f"the lesson says DPO at beta = {BETA} ends close to PPO, got {dpo[BETA]} against {finals[BETA]}")
    reached = {k: sum(next(i for i, r in enumerate(run.reward) if r >= 1.5)
                      for run in sweep["epochs"] if run.epochs == k) for k in rlhf.SWEEP_EPOCHS}
    assert reached[1] > 2 * reached[4] and reached[8] <= reached[4], (
        f"the lesson says 4 epochs per batch reach a score of 1.5 in under half the rollouts of 1, and 8 in no more"
        f" than 4 (total rollouts over the seeds: {reached})")


def test_cli_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    for argv, message in [(["--out", str(tmp_path / "x.json"), "--betas", "-1"], "--betas must be >= 0"),
                          (["--out", str(tmp_path / "no" / "x.json")], "does not exist"),
                          (["--out", str(tmp_path / "x.json"), "--epochs", "0"], "--epochs must be >= 1"),
                          (["--out", str(tmp_path / "x.json"), "--iterations", "0"], "--iterations must be >= 1")]:
        assert rlhf.main(argv) == 2, f"rlhf.main({argv}) must exit with status 2"
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, (
            f"bad input must give one line that starts with 'error:' and says {message!r}, got {err!r}")


def test_beta_explorer_redraws_for_the_chosen_beta():
    explorer = BetaExplorer(rlhf.load_sweep(SWEEP_FILE), beta=BETA)
    assert f"β = {BETA:g}</b>" in explorer.samples.value, f"the samples panel must show beta = {BETA}'s samples"
    before = explorer.figure.widget.value
    explorer.slider.value = 0.0
    assert "β = 0</b>" in explorer.samples.value and "great great" in explorer.samples.value, (
        "at beta = 0 the samples panel must show beta = 0's 'great great ...' samples")
    assert list(explorer.markers[0].get_xdata()) == [0, 0], (
        f"the beta marker must move to 0, it is at {list(explorer.markers[0].get_xdata())}")
    assert explorer.reward_curve.get_ydata()[-1] == explorer.runs[0.0].reward[-1], (
        "the reward curve must be redrawn from the beta = 0 run")
    assert explorer.figure.widget.value != before, "the picture must change with beta"


def test_a_missing_sweep_is_recomputed_and_stored(tmp_path, monkeypatch):
    stored = rlhf.load_sweep(SWEEP_FILE)
    # load_or_run_sweep calls the sweep module's beta_sweep; the real one is the CLI's, tested by its output file
    monkeypatch.setattr(rlhf.sweep, "beta_sweep", lambda: stored)
    path = tmp_path / "beta_sweep.json"
    assert rlhf.load_or_run_sweep(path)["runs"] == stored["runs"], (
        "a missing sweep file must be recomputed with beta_sweep")
    again = rlhf.load_or_run_sweep(path)
    assert again["runs"][0].beta == 0.0 and again["dpo"] == stored["dpo"] and again["epochs"] == stored["epochs"], (
        "the recomputed sweep must be stored at the path and load back from it, DPO and K-epoch runs included")
