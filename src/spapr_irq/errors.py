"""Typed errors. Each carries the exact user-facing text; hints are QEMU's extra lines; a note is
the model's own word on top (never part of QEMU's text).

Hierarchy::

    SpaprIrqError
     +-- InputError          bad input: an option, host, guest or stream that cannot be parsed
     |    +-- ConfigError     a machine option QEMU refuses while parsing it
     |    +-- HostError       an unknown host preset or a malformed custom host
     |    +-- GuestError      an unknown guest profile
     +-- MachineError        the machine refused to run (init, CAS, reset): QEMU would exit
     +-- KvmError            a modeled KVM ioctl failed, with its errno (internal to the backends)
     +-- StateError          an API called in a state that does not allow it
"""

from __future__ import annotations

import errno as _errno

#: Linux strerror() texts, fixed here so messages do not depend on the machine running the model.
STRERROR: dict[int, str] = {
    _errno.EPERM: "Operation not permitted",
    _errno.ENOENT: "No such file or directory",
    _errno.EIO: "Input/output error",
    _errno.ENXIO: "No such device or address",
    _errno.E2BIG: "Argument list too long",
    _errno.EBADF: "Bad file descriptor",
    _errno.ENOMEM: "Cannot allocate memory",
    _errno.EFAULT: "Bad address",
    _errno.EBUSY: "Device or resource busy",
    _errno.EEXIST: "File exists",
    _errno.ENODEV: "No such device",
    _errno.EINVAL: "Invalid argument",
    _errno.ENOSPC: "No space left on device",
}


def strerror(code: int) -> str:
    """The Linux text for errno `code`."""
    return STRERROR.get(code, f"Unknown error {code}")


class SpaprIrqError(Exception):
    """Base of every error this model raises on purpose."""

    def __init__(self, message: str, hints: tuple[str, ...] | list[str] = (),
                 note: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hints = tuple(hints)
        #: What the model adds to QEMU's text (why, and what would work); None when nothing.
        self.note = note

    def __str__(self) -> str:
        return self.message

    @property
    def text(self) -> str:
        """The message followed by its hint lines, as QEMU prints them."""
        return "\n".join((self.message, *self.hints))


class InputError(SpaprIrqError):
    """Input that cannot be understood; nothing was changed."""


class ConfigError(InputError):
    """A machine option that QEMU refuses while parsing the command line."""


class HostError(InputError):
    """An unknown host preset or a malformed custom host description."""


class GuestError(InputError):
    """An unknown guest profile."""


class MachineError(SpaprIrqError):
    """The machine cannot run with this configuration on this host; QEMU would exit.

    `stage` says where it stopped: "init", "cas", "reset", "migration" or "hotplug".
    """

    def __init__(self, message: str, hints=(), stage: str = "init") -> None:
        super().__init__(message, hints)
        self.stage = stage


class KvmError(SpaprIrqError):
    """A modeled KVM ioctl returned -errno."""

    def __init__(self, call: str, errno: int) -> None:
        super().__init__(f"{call}: {strerror(errno)}")
        self.call = call
        self.errno = errno


class StateError(SpaprIrqError):
    """An operation that the object's current state does not allow."""
