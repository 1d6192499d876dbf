"""The one error type that is the user's to fix, as opposed to a bug (`plugin.cli.run_cli` maps it to exit 1)."""


class UserError(Exception):
    """A mistake in what the user gave us: printed as a message, exit code 1."""
