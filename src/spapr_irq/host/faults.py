"""Fault injection that tells the truth: which errno each KVM call can fail with on its own, where
in Linux it fails, and what the failure leaves behind.

Only failures the model's state cannot decide are injected: an allocation (ENOMEM), the firmware
(OPAL: EIO, ENXIO) or the VP space (ENOSPC). Every other errno a call returns -- EEXIST, EBUSY,
EINVAL, ENOENT, EPERM, EBADF, ENODEV, ENXIO for a missing attribute -- follows from the state, and
the model returns it by itself. A fault is only ever delivered to a call that, in the state it
meets, can fail that way; the device then fails at the point Linux does, keeping what Linux keeps.
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

#: call -> errno -> (where Linux fails, what stays behind). Source: arch/powerpc/kvm and
#: virt/kvm/kvm_main.c as read for spec/linux.md; the device decides, per call, which apply now.
INJECTABLE: dict[str, dict[int, tuple[str, str]]] = {
    "create_device": {
        E.ENOMEM: ("kvm_ioctl_create_device: kzalloc; kvmppc_xics_create / kvmppc_xive_get_device: "
                   "kzalloc; kvmppc_xive_create before 5.5: the VP block",
                   "nothing, except that a XICS-on-XIVE create failing at its VP block keeps the VM's "
                   "XIVE slot taken until 5.5 (5.4.3, 5.3.16)"),
        E.ENXIO: ("kvmppc_xive_native_create, 5.2 to 5.4: xive_native_alloc_vp_block",
                  "the VM's XIVE slot taken until 5.5 (5.4.3, 5.3.16): every later create is EEXIST"),
    },
    "set_attr": {
        E.ENOMEM: ("xics_set_source: kvmppc_xics_create_ics; xive_set_source and "
                   "kvmppc_xive_native_set_source: kvmppc_xive_create_src_block; xive_set_source: "
                   "xive_native_alloc_irq when the block exists",
                   "nothing; after the block, the block (the source is still not valid)"),
        E.ENXIO: ("kvmppc_xive_native_set_source: xive_native_alloc_irq; "
                  "kvmppc_xive_native_set_source_config: xive_native_configure_irq",
                  "the source block (the source not valid); the source config as it was"),
        E.EIO: ("kvmppc_xive_native_set_queue_config: OPAL queue configuration",
                "the queue stays as it was"),
    },
    "get_attr": {
        E.EIO: ("kvmppc_xive_native_get_queue_config: xive_native_get_queue_state", "nothing"),
    },
    "mmap": {
        E.ENOMEM: ("do_mmap", "nothing"),
    },
    "enable_cap": {
        E.ENOMEM: ("kvmppc_xics_create_icp / kvmppc_xive_connect_vcpu: kzalloc of the vCPU state",
                   "from 5.5 on a XIVE host, the VP block (a later NR_SERVERS is EBUSY)"),
        E.ENOSPC: ("kvmppc_xive_compute_vp_id (5.5+): xive_native_alloc_vp_block", "nothing"),
        E.EIO: ("kvmppc_xive_connect_vcpu / kvmppc_xive_native_connect_vcpu: OPAL VP and IPI setup",
                "from 5.5, the VP block (a later NR_SERVERS is EBUSY)"),
    },
    "get_one_reg": {
        E.EIO: ("kvmppc_xive_native_get_vp: xive_native_get_vp_state", "nothing"),
    },
    "define_rtas_token": {
        E.ENOMEM: ("rtas_token_define: kzalloc", "nothing"),
    },
    "create_vcpu": {
        E.ENOMEM: ("kvm_vm_ioctl_create_vcpu / kvmppc_core_vcpu_create_hv: allocations", "nothing"),
    },
}

#: Calls Linux answers without an allocation or firmware call of its own, so nothing to inject.
NEVER_FAIL_ALONE = ("check_extension", "has_attr", "set_one_reg", "irq_line", "enable_vm_cap",
                    "close", "munmap")


@dataclass
class _Fault:
    errno: int
    call: str | None  # None: any call that can fail this way
    nth: int  # 1-based, among the calls that could fail this way, counted from when it was armed
    seen: int = 0


@dataclass
class FaultPlan:
    """KVM calls to fail. ``fail(errno.ENOMEM, nth=3)`` fails the third call from now on that can
    run out of memory; ``fail(errno.EIO, call="enable_cap")`` the next vCPU connect that reaches
    the firmware. Each fault fires once; an errno no call could fail with by itself is refused."""

    faults: list[_Fault] = field(default_factory=list)
    fired: list[tuple[str, int]] = field(default_factory=list)  # (call, errno) of faults that fired

    def fail(self, errno: int = E.EIO, *, call: str | None = None, nth: int = 1) -> None:
        if not isinstance(nth, int) or nth < 1:
            raise ValueError("nth counts from 1")
        if call is not None and call not in INJECTABLE and call not in NEVER_FAIL_ALONE:
            raise ValueError(f"unknown KVM call {call!r}")
        allowed = INJECTABLE.get(call, {}) if call else {e for t in INJECTABLE.values() for e in t}
        if errno not in allowed:
            where = call or "any KVM call"
            can = ", ".join(E.errorcode[e] for e in sorted(allowed)) or "nothing"
            raise ValueError(f"{where} cannot fail with {E.errorcode.get(errno, errno)} on its own "
                             f"(it can fail with: {can}); other errnos follow from the state")
        self.faults.append(_Fault(errno=errno, call=call, nth=nth))

    def clear(self) -> None:
        self.faults.clear()

    def check(self, call: str, possible) -> int:
        """0, or the errno the call `call` fails with now; `possible` are the errnos it could
        meet in its current state. If two faults are due on one call the first armed wins."""
        if not self.faults or not possible:
            return 0
        due = []
        for fault in self.faults:
            if fault.call in (None, call) and fault.errno in possible:
                fault.seen += 1
                if fault.seen == fault.nth:
                    due.append(fault)
        for fault in due:
            self.faults.remove(fault)
        if not due:
            return 0
        self.fired.append((call, due[0].errno))
        return due[0].errno

    @property
    def armed(self) -> bool:
        return bool(self.faults)
