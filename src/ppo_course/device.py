"""Pick where the networks and minibatches live: ``select_device('auto' | 'cpu' | 'cuda')``."""
from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(name: str = "auto") -> torch.device:
    """``'auto'`` is CUDA when a GPU is visible, else the CPU; ``'cuda'`` without a GPU is an error.

    Raises ``ValueError`` with a one-line message naming the bad input, so a CLI can print it.
    """
    name = str(name).strip().lower()
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but no CUDA GPU is available here (use 'cpu' or 'auto')")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A short human description, e.g. 'cpu (2 threads)' or 'cuda:0 (NVIDIA H100)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
