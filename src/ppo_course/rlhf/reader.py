"""The reader of lesson 05: what a person thinks of a completion, the ground truth nobody can query at scale.

The labellers of ``preferences`` judge with it (plus choice noise), and the lesson measures every policy
with it. Training never calls it: real pipelines have only the labels, which is why they need a reward model.
"""
from __future__ import annotations

import torch

from .language import ADJECTIVE_SENTIMENT, VOCAB, is_review

NONSENSE_SCORE = -3.0  # what the reader gives text that is not a review: below any real review


def human_score(prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """What a reader thinks, ``[B]``: the review's sentiment, the mean over its adjectives ("very"
    strengthens the next adjective by half), or ``NONSENSE_SCORE`` if the text is not a review of the
    prompt. Real reviews score from -2.25 (``was very awful .``) to 2.25 (``was very great .``)."""
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
