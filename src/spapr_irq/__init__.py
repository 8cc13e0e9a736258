"""spapr-irq: an executable model of the pseries interrupt controllers and how QEMU picks one."""

from .config import MachineConfig, parse_options
from .errors import (ConfigError, GuestError, HostError, InputError, KvmError, MachineError,
                     SpaprIrqError, StateError)
from .guest.profiles import GUESTS, get_guest
from .host.host import PRESETS, Host, parse_host
from .host.kvm import FaultPlan
from .devices import Event, Workload
from .guest.driver import Handled
from .machine.machine import Machine

__all__ = [
    "ConfigError", "Event", "FaultPlan", "GUESTS", "GuestError", "Handled", "Host", "HostError",
    "InputError", "KvmError", "Machine", "MachineConfig", "MachineError", "PRESETS",
    "SpaprIrqError", "StateError", "Workload", "get_guest", "parse_host", "parse_options",
]
