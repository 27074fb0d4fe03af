"""``python -m ppo_course.rlhf --out beta_sweep.json``: regenerate lesson 05's beta sweep (``sweep.main``)."""
import sys

from .sweep import main

if __name__ == "__main__":
    sys.exit(main())
