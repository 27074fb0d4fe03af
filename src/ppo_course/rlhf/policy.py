"""The language model of lesson 05: ``TinyLM``, its log-probabilities, its pretraining, and the KL between two.

The same class is the policy, the frozen reference it is fine-tuned away from, and (with one output)
PPO's value network.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .language import END_ID, MAX_LEN, PAD_ID, PROMPT_WORDS, TOKEN_ID, VOCAB, decode, make_corpus, real_tokens


class TinyLM(nn.Module):
    """A tiny autoregressive language model over ``VOCAB`` (or, with ``out_dim=1``, a value network;
    with one more position, the body of the reward model).

    The output at position t reads four things: the prompt, the previous token, the sum of the
    embeddings of every token said so far (a cheap memory: has "and" been said? an adjective?), and
    the position. A small MLP maps them to next-token logits. It is causal, so one forward pass
    scores a whole completion (teacher forcing), and sampling goes one token at a time.
    """

    def __init__(self, embed: int = 32, hidden: int = 64, out_dim: int = len(VOCAB), positions: int = MAX_LEN):
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), embed)
        self.position = nn.Embedding(positions, embed)
        self.body = nn.Sequential(nn.Linear(4 * embed, hidden), nn.Tanh(), nn.Linear(hidden, out_dim))

    def forward(self, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
        """Outputs for every completion position, ``[B, T, out_dim]``; the output at t sees only the
        prompt and ``completions[:, :t]``."""
        previous = torch.cat([prompts[:, None], completions[:, :-1]], dim=1)     # [B, T]
        said = self.embed(previous)
        said_so_far = torch.cumsum(said, dim=1) - said[:, :1]                     # completion tokens before t
        prompt = self.embed(prompts)[:, None].expand_as(said)
        position = self.position.weight[None, : completions.shape[1]].expand_as(said)
        return self.body(torch.cat([prompt, said, said_so_far, position], dim=-1))

    def log_softmax(self, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities ``[B, T, V]``, with the end-of-review rule applied."""
        return F.log_softmax(mask_logits(self(prompts, completions), completions), dim=-1)

    @torch.no_grad()
    def generate(self, prompts: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Sample one completion per prompt, ``[B, MAX_LEN]``, one token at a time."""
        completion = torch.full((len(prompts), MAX_LEN), PAD_ID, dtype=torch.long)
        for t in range(MAX_LEN):
            logits = self.log_softmax(prompts, completion[:, : t + 1])[:, t]
            completion[:, t] = torch.multinomial(logits.exp(), 1, generator=gen)[:, 0]
        return completion


def mask_logits(logits: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """After ``.`` only ``<pad>`` may follow, and ``<pad>`` never comes before it.

    ``logits`` are ``[B, L, V]`` for completion positions ``0..L-1``. The forced ``<pad>`` then has
    log-probability exactly 0 under every model, so padding adds no ratio, no KL and no gradient.
    """
    ended = torch.cumsum(completions == END_ID, dim=1) > 0           # "." at or before t
    ended_before = torch.cat([torch.zeros_like(ended[:, :1]), ended[:, :-1]], dim=1)
    is_pad = torch.zeros(logits.shape[-1], dtype=torch.bool)
    is_pad[PAD_ID] = True
    forbidden = torch.where(ended_before[..., None], ~is_pad, is_pad)
    return logits.masked_fill(forbidden, float("-inf"))


def token_log_probs(model: TinyLM, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """``log pi(c_t | prompt, c_<t)`` for every position, ``[B, T]`` (0 at forced padding)."""
    return model.log_softmax(prompts, completions).gather(-1, completions[..., None])[..., 0]


def pretrain(steps: int = 300, seed: int = 0, label_smoothing: float = 0.01) -> TinyLM:
    """Fit a ``TinyLM`` to the review corpus by next-token cross-entropy: the "pretrained" model.

    The label smoothing leaves a little probability on every token, as a real language model does;
    without it, RL could never sample (and so never find) the degenerate completions.
    """
    torch.manual_seed(seed)
    prompts, completions = make_corpus(seed=seed)
    model = TinyLM()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    mask = real_tokens(completions)
    for _ in range(steps):
        batch = torch.randint(len(prompts), (256,), generator=gen)
        logits = mask_logits(model(prompts[batch], completions[batch]), completions[batch])
        keep = mask[batch]
        loss = F.cross_entropy(logits[keep], completions[batch][keep], label_smoothing=label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.requires_grad_(False).eval()


def exact_kl(policy: TinyLM, reference: TinyLM, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """KL(policy || reference) summed over each completion's positions, ``[B]``, in nats.

    Computed over the whole vocabulary at every visited prefix: a low-variance, never-negative
    measurement for plots (training uses the one-sample estimate logp_policy - logp_reference).
    """
    with torch.no_grad():
        logp, logq = policy.log_softmax(prompts, completions), reference.log_softmax(prompts, completions)
        per_token = (logp.exp() * (logp - logq).nan_to_num(0.0, posinf=0.0, neginf=0.0)).sum(-1)
    return (per_token * real_tokens(completions)).sum(-1)


def final_samples(policy: TinyLM, per_prompt: int = 3, seed: int = 1234) -> list[str]:
    """A few completions per prompt, decoded, from a fixed generator (comparable across runs)."""
    gen = torch.Generator().manual_seed(seed)
    first = TOKEN_ID[PROMPT_WORDS[0]]
    prompts = torch.arange(first, first + len(PROMPT_WORDS)).repeat_interleave(per_prompt)
    return [decode(p, c) for p, c in zip(prompts.tolist(), policy.generate(prompts, gen).tolist(), strict=True)]
