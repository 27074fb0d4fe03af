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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_reference():
    return rlhf.pretrain(steps=30, seed=0)


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
                                  "was good and bad and fine .", "was very .", "was good"])
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


def test_reward_model_flaw_outscores_every_real_review():
    prompts, completions = rlhf.tokenize("food", ["was very great and very great .",
                                                  "was very very very great very very very"])
    best_real, hack = rlhf.RewardModel()(prompts, completions).tolist()
    assert best_real == pytest.approx(2.5) and hack == pytest.approx(4.5), (
        f"the reward model must give the best real review 2.5 and the 'very' hack 4.5, got {best_real} and {hack}")
    assert rlhf.human_score(prompts, completions).tolist()[1] == rlhf.NONSENSE_SCORE, (
        f"the reader must score the 'very' hack as nonsense, got {rlhf.human_score(prompts, completions).tolist()[1]}")


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


def test_reference_exercise_answers():
    rewards = torch.tensor([[0.0, 0.0, 2.0]])
    out = rlhf.kl_penalized_reward(rewards, torch.tensor([[-1.0, -0.5, -0.2]]), torch.tensor([[-1.2, -0.5, -1.0]]), 0.1)
    assert torch.allclose(out, torch.tensor([[-0.02, 0.0, 1.92]])), (
        f"the penalised reward must be reward - beta * (logp_policy - logp_reference) per token, got {out.tolist()}")
    adv = rlhf.group_relative_advantages(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0]), 4)
    assert torch.allclose(adv, torch.tensor([-1.1619, -0.3873, 0.3873, 1.1619, 0, 0, 0, 0]), atol=1e-4), (
        f"the advantages must be standardised within each group of 4 (0 for equal rewards), got {adv.tolist()}")


@pytest.mark.parametrize("method", ["ppo", "grpo"])
def test_finetune_uses_the_functions_it_is_given_and_is_seeded(small_reference, method):
    seen = []

    def spy_reward(rewards, logp_policy, logp_reference, beta):
        seen.append((tuple(rewards.shape), tuple(logp_policy.shape), beta))
        return rlhf.kl_penalized_reward(rewards, logp_policy, logp_reference, beta)

    config = rlhf.RLHFConfig(beta=0.2, iterations=2, prompts_per_batch=4, group_size=4, epochs=1, minibatches=2)
    _, first = rlhf.finetune(small_reference, rlhf.RewardModel(), config, method=method, kl_reward=spy_reward)
    _, second = rlhf.finetune(small_reference, rlhf.RewardModel(), config, method=method)
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


def test_update_is_lesson_04s_loop_over_completions(small_reference):
    config = rlhf.RLHFConfig(prompts_per_batch=4, group_size=4, epochs=3, minibatches=2)
    gen = torch.Generator().manual_seed(0)
    policy = copy.deepcopy(small_reference).requires_grad_(True)
    rollout = rlhf.collect(policy, small_reference, rlhf.RewardModel(), config, gen, rlhf.kl_penalized_reward)
    rollout = rlhf.grpo_advantages(rollout, config.group_size, rlhf.group_relative_advantages)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    stats = rlhf.update(policy, optimizer, rollout, config, gen)
    steps = int(optimizer.state[next(policy.parameters())]["step"])
    assert steps == config.epochs * config.minibatches, f"expected K * minibatches = 6 Adam steps, got {steps}"
    assert stats["epochs"] == config.epochs and stats["approx_kl"] >= 0 and 0 <= stats["clip_fraction"] <= 1, stats


def test_finetune_rejects_an_unknown_method(small_reference):
    with pytest.raises(ValueError, match="'dqn'"):
        rlhf.finetune(small_reference, rlhf.RewardModel(), rlhf.RLHFConfig(iterations=1), method="dqn")


def test_stored_sweep_matches_the_code_and_tells_the_lessons_story():
    sweep = rlhf.load_sweep(SWEEP_FILE)
    assert [run.beta for run in sweep["runs"]] == list(rlhf.SWEEP_BETAS), (
        f"the stored sweep's betas must be rlhf.SWEEP_BETAS {list(rlhf.SWEEP_BETAS)}: regenerate beta_sweep.json")
    assert sweep["config"] == {**asdict(rlhf.RLHFConfig()), "beta": sweep["config"]["beta"]}, (
        "the stored sweep's config must be RLHFConfig's defaults apart from beta: regenerate beta_sweep.json")
    finals = {run.beta: run.final() for run in sweep["runs"]}
    assert finals[0.0]["human"] == rlhf.NONSENSE_SCORE and finals[0.0]["kl"] > 20 and finals[0.0]["reward"] > 4, (
        f"the lesson says beta = 0 hacks the reward (nonsense, KL > 20, reward > 4), the sweep ends at {finals[0.0]}")
    assert finals[0.2]["reviews"] > 0.9 and finals[0.2]["human"] > 1.0 and finals[0.2]["kl"] < 5, (
        f"the lesson says beta = 0.2 keeps writing reviews (> 90%, human > 1, KL < 5), the sweep ends at {finals[0.2]}")
    kls = [finals[b]["kl"] for b in rlhf.SWEEP_BETAS]
    assert kls == sorted(kls, reverse=True), "more KL weight must mean less drift"


def test_cli_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    for argv, message in [(["--out", str(tmp_path / "x.json"), "--betas", "-1"], "--betas must be >= 0"),
                          (["--out", str(tmp_path / "no" / "x.json")], "does not exist"),
                          (["--out", str(tmp_path / "x.json"), "--iterations", "0"], "--iterations must be >= 1")]:
        assert rlhf.main(argv) == 2, f"rlhf.main({argv}) must exit with status 2"
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, (
            f"bad input must give one line that starts with 'error:' and says {message!r}, got {err!r}")


def test_beta_explorer_redraws_for_the_chosen_beta():
    explorer = BetaExplorer(rlhf.load_sweep(SWEEP_FILE), beta=0.2)
    assert "β = 0.2</b>" in explorer.samples.value, "the samples panel must show beta = 0.2's samples"
    before = explorer.figure.widget.value
    explorer.slider.value = 0.0
    assert "β = 0</b>" in explorer.samples.value and "very very" in explorer.samples.value, (
        "at beta = 0 the samples panel must show beta = 0's 'very very' samples")
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
    assert path.exists() and rlhf.load_or_run_sweep(path)["runs"][0].beta == 0.0, (
        "the recomputed sweep must be stored at the path and load back from it")
