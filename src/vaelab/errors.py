"""User-facing errors.

Every failure a user can cause (bad config, missing data, corrupt file, ...) raises a
subclass of :class:`VaelabError`.  The CLI prints ``str(err)`` as one line and exits
with ``err.exit_code``; no traceback is shown.  Programming errors stay ordinary
exceptions so that they are loud.
"""

import os


def first_line(err: BaseException, fallback: str | None = None) -> str:
    """The first line of ``str(err)``, for a one-line message; ``fallback`` (default: the
    exception's type name) when the message is empty."""
    text = str(err).strip()
    if text:
        return text.splitlines()[0]
    return type(err).__name__ if fallback is None else fallback


class VaelabError(Exception):
    """Base class: one clear line saying what is wrong and what to do."""

    exit_code = 2


class ConfigError(VaelabError):
    """An unknown key, a wrong type or an impossible value in a config."""


class DataError(VaelabError):
    """Data files missing, truncated, corrupt or with the wrong checksum."""


class CheckpointError(VaelabError):
    """A run directory or checkpoint that cannot be trusted or resumed."""


class DiskFullError(VaelabError):
    """No space left on the device while a file was written (nothing half-written stays)."""


class TrainingDiverged(VaelabError):
    """A non-finite loss or gradient that the NaN guard could not recover from."""

    exit_code = 3


def env_choice(name: str, choices: tuple[str, ...], what: str) -> str:
    """The value of environment variable ``name`` (case and spaces ignored; unset or empty:
    ``choices[0]``), or a ConfigError naming the choices."""
    value = os.environ.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not a {what}; use one of {', '.join(choices)}")
    return value
