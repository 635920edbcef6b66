"""Errors that say what is wrong with the user's files or settings: the CLI prints them as one line."""


class UserError(ValueError):
    """A file, folder or setting that cannot be used as it is; the message names it and what to do.

    :class:`asrdistill.cli.Cli` turns any of these into one line and exit status 1, so a
    command needs no wrapper of its own.
    """
