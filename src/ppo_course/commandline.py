"""What the course's command-line tools share: one-line usage errors, and options from a config dataclass."""
from __future__ import annotations

import argparse
from dataclasses import MISSING, field, fields
from typing import Any


def knob(default, help: str):
    """A config field with its one-line explanation (the CLI's --help reads it from the field's metadata)."""
    return field(default=default, metadata={"help": help})


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to look), not the usage block; exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_config_options(parser: argparse.ArgumentParser, config_class: type,
                       special: dict[str, dict] | None = None) -> None:
    """One option per field of ``config_class`` (``--total-steps`` for ``total_steps``), documented by
    the field's ``metadata["help"]``; ``special`` overrides add_argument's keywords for some fields."""
    for f in fields(config_class):
        if "help" not in f.metadata:
            raise TypeError(f"{config_class.__name__}.{f.name} has no help text (declare it with knob())")
        default: Any = f.default if f.default is not MISSING else f.default_factory()
        options: dict[str, Any] = {"default": default, "help": f"{f.metadata['help']} (default: {default})"}
        if isinstance(default, bool):
            options["action"] = argparse.BooleanOptionalAction
        else:
            options |= {"type": type(default), "metavar": type(default).__name__.upper()}
        options |= (special or {}).get(f.name, {})
        flags = options.pop("flags", ["--" + f.name.replace("_", "-")])
        parser.add_argument(*flags, dest=f.name, **options)
