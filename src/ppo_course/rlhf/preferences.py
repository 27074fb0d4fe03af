"""Lesson 05's preference data: simulated labellers, and the Bradley-Terry loss a reward model learns from.

The labelling is InstructGPT's: a labeller reads one prompt and two completions and says which is
better. The completions are reviews people wrote, drawn from the same grammar as the pretraining
corpus: the labellers never see a sample of the model. Like a person, a labeller is noisy: it prefers
``a`` to ``b`` with the Bradley-Terry probability ``sigmoid(h(a) - h(b))``, ``h`` the reader's score,
so two reviews of similar quality are labelled either way nearly as often.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .language import PROMPT_WORDS, encode, pad_completions, sample_review
from .reader import human_score


@dataclass
class Preferences:
    """``N`` labelled pairs: for each prompt, the completion the labeller chose and the one it rejected."""

    prompts: torch.Tensor    # [N] prompt token ids
    chosen: torch.Tensor     # [N, T] the preferred completion
    rejected: torch.Tensor   # [N, T] the other one

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index) -> "Preferences":
        return Preferences(self.prompts[index], self.chosen[index], self.rejected[index])


def label_preferences(size: int, seed: int) -> Preferences:
    """``size`` pairs of two different reviews of one prompt, each labelled by a noisy reader.

    The labeller prefers ``a`` with probability ``sigmoid(human_score(a) - human_score(b))``: the
    Bradley-Terry model of choice, the same model the reward model is fitted with.
    """
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    prompt_words = [rng.choice(PROMPT_WORDS) for _ in range(size)]
    first, second = [], []
    for prompt in prompt_words:
        a = sample_review(prompt, rng)
        b = sample_review(prompt, rng)
        while b == a:   # a labeller is never shown the same review twice
            b = sample_review(prompt, rng)
        first.append(a)
        second.append(b)
    prompts = torch.tensor(encode(prompt_words))
    a, b = pad_completions(first), pad_completions(second)
    a_preferred = torch.rand(size, generator=gen) < torch.sigmoid(human_score(prompts, a) - human_score(prompts, b))
    return Preferences(prompts, torch.where(a_preferred[:, None], a, b), torch.where(a_preferred[:, None], b, a))


def preference_loss(rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor) -> torch.Tensor:
    """The Bradley-Terry loss of a reward model on labelled pairs.

    ``rewards_chosen`` and ``rewards_rejected`` are ``[N]``: the model's scores of the preferred and
    of the rejected completion of each pair. The model says the chosen one wins with probability
    ``sigmoid(r_chosen - r_rejected)``; the loss is the negative log of that probability, averaged over
    the pairs: a scalar that carries gradients to both scores.
    """
    return -torch.nn.functional.logsigmoid(rewards_chosen - rewards_rejected).mean()


def preference_accuracy(scores_chosen: torch.Tensor, scores_rejected: torch.Tensor) -> float:
    """Share of pairs whose chosen completion scores higher (a tie counts half): agreement with the labels."""
    right = (scores_chosen > scores_rejected).double() + 0.5 * (scores_chosen == scores_rejected).double()
    return float(right.mean())
