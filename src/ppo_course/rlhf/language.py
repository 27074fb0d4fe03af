"""The toy language of lesson 05: its vocabulary, the review grammar, the corpus, and token layout.

A completion is ``MAX_LEN`` token ids; it ends with ``.`` and the positions after it hold ``<pad>``.
``real_tokens`` and ``last_token`` turn that layout into masks: where the model spoke, and where a
completion's reward goes.
"""
from __future__ import annotations

import random
from typing import Sequence

import torch

PAD, END = "<pad>", "."
PROMPT_WORDS = ("food", "movie", "hotel")
ADJECTIVE_SENTIMENT = {
    "good": 1.0, "great": 1.5, "fine": 0.5, "bad": -1.0, "awful": -1.5,
    "tasty": 1.0, "bland": -1.0, "fun": 1.0, "boring": -1.0, "clean": 1.0, "dirty": -1.0,
}
#: Adjectives a reader accepts for each prompt: the generic ones plus the prompt's own pair.
GENERIC_ADJECTIVES = ("good", "great", "fine", "bad", "awful")
PROMPT_ADJECTIVES = {"food": ("tasty", "bland"), "movie": ("fun", "boring"), "hotel": ("clean", "dirty")}
VOCAB = (PAD, END, "was", "very", "and", *ADJECTIVE_SENTIMENT, *PROMPT_WORDS)
TOKEN_ID = {word: i for i, word in enumerate(VOCAB)}
PAD_ID, END_ID, VERY_ID = TOKEN_ID[PAD], TOKEN_ID[END], TOKEN_ID["very"]
MAX_LEN = 8          # "was very great and very tasty ." is 7 tokens: one slot to spare
VERY_PROBABILITY = 0.3
AND_PROBABILITY = 0.4


def allowed_adjectives(prompt: str) -> tuple[str, ...]:
    return GENERIC_ADJECTIVES + PROMPT_ADJECTIVES[prompt]


def encode(words: Sequence[str]) -> list[int]:
    unknown = [w for w in words if w not in TOKEN_ID]
    if unknown:
        raise ValueError(f"not in the vocabulary: {unknown}; the words are {', '.join(VOCAB)}")
    return [TOKEN_ID[w] for w in words]


def decode(prompt: int, completion: Sequence[int]) -> str:
    """``'food: was very tasty .'`` (padding dropped)."""
    words = [VOCAB[int(t)] for t in completion if int(t) != PAD_ID]
    return f"{VOCAB[int(prompt)]}: " + " ".join(words)


def pad_completions(reviews: Sequence[Sequence[str]]) -> torch.Tensor:
    """Word lists as completions ``[N, MAX_LEN]``, padded with ``<pad>``; at most ``MAX_LEN`` words each."""
    completions = torch.full((len(reviews), MAX_LEN), PAD_ID, dtype=torch.long)
    for i, words in enumerate(reviews):
        ids = encode(words)
        if len(ids) > MAX_LEN:
            raise ValueError(f"{' '.join(words)!r} has {len(ids)} tokens; completions hold at most {MAX_LEN}")
        completions[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return completions


def tokenize(prompt: str, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hand-written completions of one prompt as tensors: ``(prompts [N], completions [N, MAX_LEN])``.

    ``tokenize("food", ["was very tasty ."])``; words must be in ``VOCAB``, at most ``MAX_LEN`` of them.
    """
    completions = pad_completions([text.split() for text in texts])
    return torch.full((len(texts),), TOKEN_ID[prompt], dtype=torch.long), completions


def sample_review(prompt: str, rng: random.Random) -> list[str]:
    """One review from the grammar: was [very] ADJ [and [very] ADJ] . with one sentiment per review."""
    positive = rng.random() < 0.5
    adjectives = [a for a in allowed_adjectives(prompt) if (ADJECTIVE_SENTIMENT[a] > 0) == positive]
    words = ["was"]
    for clause in range(2):
        if clause == 1:
            if rng.random() >= AND_PROBABILITY:
                break
            words.append("and")
        if rng.random() < VERY_PROBABILITY:
            words.append("very")
        words.append(rng.choice(adjectives))
    return words + [END]


def make_corpus(size: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` reviews for uniformly drawn prompts: ``(prompts [size], completions [size, MAX_LEN])``."""
    rng = random.Random(seed)
    prompt_words = [rng.choice(PROMPT_WORDS) for _ in range(size)]
    completions = pad_completions([sample_review(prompt, rng) for prompt in prompt_words])
    return torch.tensor(encode(prompt_words)), completions


def is_review(prompt: int, completion: Sequence[int]) -> bool:
    """Would a reader accept this as a review of ``prompt``? (the grammar, with its adjectives)."""
    words = [VOCAB[int(t)] for t in completion if int(t) != PAD_ID]
    if len(words) < 3 or words[0] != "was" or words[-1] != END:
        return False
    clauses = " ".join(words[1:-1]).split(" and ")
    adjectives = set(allowed_adjectives(VOCAB[int(prompt)]))
    return len(clauses) <= 2 and all(
        (c.split()[-1] in adjectives) and c.split()[:-1] in ([], ["very"]) for c in clauses)


def is_review_text(text: str) -> bool:
    """``is_review`` of a decoded completion: ``is_review_text("food: was tasty .")`` is True."""
    prompt, _, words = text.partition(": ")
    return prompt in PROMPT_WORDS and is_review(TOKEN_ID[prompt], encode(words.split()))


def real_tokens(completions: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` bool: the generated tokens up to and including ``.`` (padding excluded)."""
    ended = torch.cumsum(completions == END_ID, dim=1) > 0
    return torch.cat([torch.ones_like(ended[:, :1]), ~ended[:, :-1]], dim=1)


def last_token(completions: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` bool, True at each completion's last generated token (where its reward goes)."""
    mask = real_tokens(completions)
    last = torch.zeros_like(mask)
    last[torch.arange(len(mask)), mask.sum(1) - 1] = True
    return last
