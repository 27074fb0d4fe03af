"""What scores a completion in lesson 05: the flawed reward model, the reader, and the KL-penalised reward.

``RewardModel`` is what training sees; ``human_score`` (the reader) is what we really wanted it to
measure, and training never sees it. ``kl_penalized_reward`` (exercise 1) turns the reward model's
score into the per-token reward PPO and GRPO maximise.
"""
from __future__ import annotations

from typing import Callable

import torch

from .language import ADJECTIVE_SENTIMENT, TOKEN_ID, VERY_ID, VOCAB, is_review

NONSENSE_SCORE = -3.0  # what the reader gives text that is not a review: below any real review


class RewardModel:
    """The frozen reward model: mean sentiment of the adjectives, plus ``very_bonus`` per ``very``.

    It stands in for a network trained on human preferences and agrees with readers on real reviews
    ("was very great ." really is better than "was fine ."). Its flaw is the one real reward models
    have: it was only ever shown real reviews, so it was never told that the bonus for an
    enthusiastic "very" should stop after one, nor that text must be a review at all.
    """

    def __init__(self, very_bonus: float = 0.5):
        self.very_bonus = very_bonus
        self.sentiment = torch.zeros(len(VOCAB))
        self.is_adjective = torch.zeros(len(VOCAB))
        for word, value in ADJECTIVE_SENTIMENT.items():
            self.sentiment[TOKEN_ID[word]] = value
            self.is_adjective[TOKEN_ID[word]] = 1.0

    @torch.no_grad()
    def __call__(self, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
        """Scores ``[B]`` for completions ``[B, T]`` (the prompt is ignored: another small flaw)."""
        adjectives = self.is_adjective[completions].sum(-1)
        sentiment = self.sentiment[completions].sum(-1) / adjectives.clamp(min=1.0)
        return sentiment + self.very_bonus * (completions == VERY_ID).sum(-1).float()


def human_score(prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """What a reader thinks, ``[B]``: the review's sentiment ("very" strengthens the next adjective by
    half), or ``NONSENSE_SCORE`` if the text is not a review of the prompt. Not available to training."""
    scores = []
    for prompt, completion in zip(prompts.tolist(), completions.tolist(), strict=True):
        if not is_review(prompt, completion):
            scores.append(NONSENSE_SCORE)
            continue
        words = [VOCAB[t] for t in completion]
        values = [ADJECTIVE_SENTIMENT[w] * (1.5 if i > 0 and words[i - 1] == "very" else 1.0)
                  for i, w in enumerate(words) if w in ADJECTIVE_SENTIMENT]
        scores.append(sum(values) / len(values))
    return torch.tensor(scores)


def kl_penalized_reward(rewards: torch.Tensor, logp_policy: torch.Tensor, logp_reference: torch.Tensor,
                        beta: float) -> torch.Tensor:
    """Per-token RLHF reward: the reward model's score minus beta times the KL estimate.

    All three tensors are ``[B, T]``. ``rewards`` is zero except at each completion's last token,
    which holds the reward model's score of the whole completion. ``logp_policy`` and
    ``logp_reference`` are the log-probabilities that the policy being trained and the frozen
    reference gave the sampled tokens. ``logp_policy - logp_reference`` is the per-token estimate of
    KL(policy || reference): positive where the policy likes a token more than the reference does.
    Returns ``rewards - beta * (logp_policy - logp_reference)``, ``[B, T]``.
    """
    return rewards - beta * (logp_policy - logp_reference)


KLRewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
