"""Shared plumbing for the PPO course notebooks."""
__version__ = "0.1.0"
