"""Errors a user can fix. Each message names the problem and the fix; the CLI prints it without a traceback."""


class ImprovedGanError(Exception):
    """Base class: the CLI reports these as ``error: <message>`` and exits with status 2."""


class ConfigError(ImprovedGanError, ValueError):
    """A bad option: unknown key, wrong type, invalid choice or impossible size."""


class DataError(ImprovedGanError):
    """A dataset file that is missing, corrupted or cannot be fetched."""


class CheckpointError(ImprovedGanError):
    """A checkpoint that is missing or cannot be read."""


class NonFiniteLossError(ImprovedGanError, FloatingPointError):
    """A loss became NaN or infinite; the last good checkpoint is left as it was."""
