"""spapr-irq: an executable model of the pseries interrupt controllers and how QEMU picks one."""

from .config import MachineConfig, parse_options
from .errors import (ConfigError, GuestError, HostError, InputError, KvmError, MachineError,
                     SpaprIrqError, StateError)
from .guest import GUESTS, get_guest
from .host import PRESETS, Host, parse_host
from .kvm import FaultPlan
from .machine import Machine

__all__ = [
    "ConfigError", "FaultPlan", "GUESTS", "GuestError", "Host", "HostError", "InputError",
    "KvmError", "Machine", "MachineConfig", "MachineError", "PRESETS", "SpaprIrqError",
    "StateError", "get_guest", "parse_host", "parse_options",
]
