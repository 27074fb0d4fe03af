"""Lesson 05's reward model: a small network fitted to the labelled pairs with the Bradley-Terry loss, then frozen.

InstructGPT's reward model is its language model with the vocabulary head replaced by one number,
read after the completion's last token. Ours is the same at toy scale: ``TinyLM``'s body with one
output and one more position, so it reads the whole completion (theirs starts from the pretrained
model's weights; ours starts from scratch, being small). Nothing in it knows what a review is: it
knows only what the labelled pairs taught it.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .language import MAX_LEN, PAD_ID, real_tokens
from .policy import TinyLM
from .preferences import Preferences, preference_loss

PreferenceLossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class RewardModel(nn.Module):
    """Scores ``[B]`` for completions ``[B, T]`` of prompts ``[B]``: the output after the last real token."""

    def __init__(self, embed: int = 32, hidden: int = 64):
        super().__init__()
        self.body = TinyLM(embed, hidden, out_dim=1, positions=MAX_LEN + 1)
        self.register_buffer("offset", torch.zeros(()))   # set after training: labelled reviews average 0

    def forward(self, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
        extended = F.pad(completions, (0, 1), value=PAD_ID)   # a slot after the last token: it has read them all
        outputs = self.body(prompts, extended)[..., 0]
        after_last = real_tokens(completions).sum(dim=1, keepdim=True)
        return outputs.gather(1, after_last)[:, 0] - self.offset


def train_reward_model(pairs: Preferences, steps: int = 200, batch_size: int = 256, lr: float = 3e-3,
                       seed: int = 0, loss_fn: PreferenceLossFn = preference_loss) -> RewardModel:
    """Fit a ``RewardModel`` to ``pairs`` with ``loss_fn(r_chosen, r_rejected)``, then freeze it.

    ``steps`` Adam steps on random minibatches of ``batch_size`` pairs. The Bradley-Terry loss sees only
    differences of scores, so the scale's zero is free: as InstructGPT does, a constant is subtracted so
    that the labelled completions average 0. The learner's ``preference_loss`` can be passed as ``loss_fn``.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = RewardModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        batch = pairs[torch.randint(len(pairs), (batch_size,), generator=gen)]
        loss = loss_fn(model(batch.prompts, batch.chosen), model(batch.prompts, batch.rejected))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        both = torch.cat([model(pairs.prompts, pairs.chosen), model(pairs.prompts, pairs.rejected)])
        model.offset.fill_(both.mean())
    return model.requires_grad_(False).eval()
