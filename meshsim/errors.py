"""Errors a user can act on.

A `MeshsimError` carries one line that names the problem and the fix. The CLI prints it to stderr and exits
with code 2 without a traceback; any other exception is a bug and keeps its traceback.
"""


class MeshsimError(Exception):
    """Base class: an error caused by input or circumstances the user controls."""

    exit_code = 2

    def __str__(self) -> str:
        # Always a single line, whatever the message was built from.
        return " ".join(super().__str__().split())


class ConfigError(MeshsimError):
    """A config file, override or command-line value is unknown, of the wrong type or impossible."""


class MeshError(MeshsimError):
    """A mesh cannot be read or is unusable (empty, NaN, inverted, out-of-range indices, mixed cells)."""


class DataFormatError(MeshsimError):
    """A trajectory/rollout file is missing, unreadable, of another format or version, or fails validation."""


class CheckpointError(MeshsimError):
    """A checkpoint is missing, corrupt, of another model or version, or carries code (pickle payloads)."""


class SimulationError(MeshsimError):
    """A simulation blew up: NaN, an inverted element or a CFL violation, named with its step and element."""


class RolloutDivergedError(MeshsimError):
    """A learned rollout left the range of finite, plausible values; names the step."""


class OutputError(MeshsimError):
    """An output path cannot be written (missing folder, no permission, would overwrite without --force)."""
