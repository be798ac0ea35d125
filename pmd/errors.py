"""Errors that the CLI reports as one clear line with exit code 2 (no traceback unless -v)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration: the message says what is wrong and how to fix it."""


class ConfigError(UserError, ValueError):
    """A config file or value is wrong; the message names the key (``shard.samples_per_shard``).

    A ``ValueError`` too, so code that validates values with ``ValueError`` keeps catching it."""


class NotImplementedYet(UserError):
    """A subcommand whose issue has not landed yet: an honest error, never a silent success."""

    def __init__(self, command: str, issue: int) -> None:
        super().__init__(f"`pmd {command}` is not implemented yet (tracked in issue #{issue})")
