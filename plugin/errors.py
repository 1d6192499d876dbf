"""Errors that are the user's to fix, as opposed to bugs (see `plugin.cli` for exit codes)."""


class UserError(Exception):
    """A mistake in what the user gave us: printed as a message, exit code 1."""
