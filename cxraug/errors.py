"""Errors a user can fix. The CLI turns each into one line on stderr and exit code 2."""


class UserError(Exception):
    """A mistake in the user's input: the message says what is wrong and what to do."""
