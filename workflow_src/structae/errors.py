"""The one exception a user can cause: the CLI prints its message as a single line and exits 2."""


class UserError(Exception):
    """A mistake the user can fix (bad config value, missing file, corrupt input).

    The message names the problem and the fix, in one line, without a traceback.
    """
