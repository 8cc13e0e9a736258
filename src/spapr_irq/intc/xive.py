"""QEMU's sPAPR XIVE (hw/intc/spapr_xive.c on hw/intc/xive.c): the source ESB pages and the TIMA
as MMIO, the eleven H_INT_* hcalls, the device-tree node, vmstate and `info pic`; in-kernel through
:class:`~spapr_irq.intc.xive_kvm.XiveKvm`.
"""

from __future__ import annotations

from .. import papr
from ..arch.xive import (EAS_END_BLOCK_MASK, EAS_END_BLOCK_SHIFT, EAS_END_DATA_MASK,
                         EAS_END_INDEX_MASK, EAS_END_INDEX_SHIFT, EAS_MASKED, EAS_VALID,
                         END_W0_ENQUEUE, END_W0_QSIZE_MASK, END_W0_QSIZE_SHIFT, END_W0_UCOND_NOTIFY,
                         END_W0_VALID, END_W1_GENERATION, END_W1_PAGE_OFF_MASK,
                         END_W6_NVT_INDEX_MASK, END_W7_F0_PRIORITY_SHIFT, XiveRouter, XiveTCTX,
                         end_qaddr, end_reset_value, nvt_cam_line)
from ..host.uapi import (KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_GRP_SOURCE_SYNC, KVM_DEV_XIVE_RESET,
                         KVM_REG_PPC_VP_STATE)
from .base import MINUS_ONE, ClaimError, ConnectError, GuestContext, InterruptController
from .xive_kvm import XiveKvm

# sPAPR XIVE hcall flags (PPC bit numbering: bit 63 = 0x1)
SPAPR_XIVE_SRC_H_INT_ESB = 0x8
SPAPR_XIVE_SRC_LSI = 0x4
SPAPR_XIVE_SRC_TRIGGER = 0x2
SPAPR_XIVE_SRC_STORE_EOI = 0x1
SPAPR_XIVE_SRC_SET_EISN = 0x2
SPAPR_XIVE_SRC_MASK = 0x1
SPAPR_XIVE_END_ALWAYS_NOTIFY = 0x1
SPAPR_XIVE_END_DEBUG = 0x1
SPAPR_XIVE_ESB_STORE = 0x1


class XiveController(XiveKvm, InterruptController):
    """The sPAPR XIVE; in-kernel through KVM_DEV_TYPE_XIVE with ESB and TIMA pages mapped."""

    name, label = "xive", "XIVE"
    hcalls = papr.XIVE_HCALLS
    def __init__(self, nr_irqs: int, nr_ends: int, max_cpus: int, memory) -> None:
        super().__init__()
        self.state = XiveRouter(nr_irqs, nr_ends, memory)
        self.memory = memory
        self.mmio_enabled = False
        self.mappings: list[int] = []  # KVM mmap page offsets in place
        self.change_handler = False  # VM run-state handler registered
        self.max_cpus = max_cpus
        self.vc_base = papr.SPAPR_XIVE_VC_BASE
        self.tm_base = papr.SPAPR_XIVE_TM_BASE
        self.hv_prio = papr.SPAPR_XIVE_HV_PRIO
        self.reports: list[str] = []  # QEMU's error_report lines from the hcalls

    @property
    def tctxs(self) -> dict[int, XiveTCTX]:
        return self.state.tctxs

    @property
    def nr_irqs(self) -> int:
        return self.state.nr_irqs

    @property
    def nr_ends(self) -> int:
        return self.state.nr_ends

    @property
    def end_base(self) -> int:
        return self.vc_base + (self.nr_irqs << papr.XIVE_ESB_SHIFT)

    # -- IRQ numbers --------------------------------------------------------------------------------------
    def valid_irq(self, irq: int) -> bool:
        return 0 <= irq < self.nr_irqs

    def claim(self, irq: int, lsi: bool, kernel_irqchip: bool = False) -> None:
        """spapr_xive_claim_irq: VALID|MASKED ORed into the EAS (a target and EISN left by a free
        survive), the LSI bit set (never cleared); under KVM the source is reset in the kernel,
        and a failure fails the claim without undoing it, as in QEMU."""
        if self.state.eas_valid(irq):
            raise ClaimError(f"IRQ {irq} is not free")
        self.state.claim(irq, lsi)
        if self.in_kernel:
            self._reset_source(irq)

    def free(self, irq: int) -> None:
        if self.valid_irq(irq):
            self.state.free(irq)

    def is_claimed(self, irq: int) -> bool:
        return self.valid_irq(irq) and self.state.eas_valid(irq)

    def claimed_irqs(self) -> list[int]:
        return self.state.valid_lisns()

    # -- presenters ---------------------------------------------------------------------------------------
    def cpu_intc_create(self, vcpu_id: int) -> None:
        """xive_tctx_create: a thread context, connected to the KVM device when in-kernel."""
        self.state.tctxs[vcpu_id] = XiveTCTX(vcpu_id)
        if self.in_kernel:
            try:
                self._connect_vcpu(vcpu_id)
            except ConnectError:
                del self.state.tctxs[vcpu_id]
                raise

    def cpu_intc_reset(self, vcpu_id: int) -> None:
        """TCTX reset, then the OS CAM line of NVT 0x400 + vcpu_id (QEMU 4.2+)."""
        tctx = self.tctxs[vcpu_id]
        tctx.reset()
        tctx.set_os_cam(nvt_cam_line(0, papr.SPAPR_XIVE_NVT_BASE + vcpu_id))

    def cpu_intc_destroy(self, vcpu_id: int) -> None:
        """xive_tctx_destroy. A vCPU connected to the KVM device stays connected: QEMU parks its
        fd and keeps it in kvm_enabled_cpus, so a re-plug skips the connect."""
        self.state.tctxs.pop(vcpu_id, None)

    # -- reset --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.state.reset_tables()
        self.state.source.reset()

    # -- activation ---------------------------------------------------------------------------------------
    def activate(self) -> None:
        """Enable the source ESB and TIMA MMIO regions (the END ESB region stays off)."""
        self.mmio_enabled = True

    def deactivate(self) -> None:
        self.mmio_enabled = False
        if self.in_kernel:
            self.disconnect_kvm()

    def hcall_handler(self, name: str):
        return getattr(self, "h_" + name[2:].lower(), None)

    def _refused(self, ctx: GuestContext, flags: int, allowed: int = 0,
                 lisn: int | None = None) -> tuple[int] | None:
        """What every XIVE hcall checks first, in QEMU's order: XIVE negotiated at CAS (else
        H_FUNCTION), no flag outside `allowed` (else H_PARAMETER), then the LISN when the hcall
        names one. The return code to answer with, or None to go on."""
        if not ctx.xive_negotiated:
            return (papr.H_FUNCTION,)
        if flags & ~allowed:
            return (papr.H_PARAMETER,)
        if lisn is not None:
            error = self._lisn_error(lisn)
            if error:
                return (error,)
        return None

    def _lisn_error(self, lisn: int) -> int | None:
        if lisn >= self.nr_irqs:
            self.reports.append(f"XIVE: Unknown LISN {lisn:#x}")
            return papr.H_P2
        if not self.state.eas_valid(lisn):
            self.reports.append(f"XIVE: Invalid LISN {lisn:#x}")
            return papr.H_P2
        return None

    def _reserved(self, priority: int) -> bool:
        """spapr_xive_priority_is_reserved, which takes the priority as a uint8_t."""
        return priority & 0xFF >= self.hv_prio

    def _target_end(self, ctx: GuestContext, target: int, priority: int) -> int | None:
        """spapr_xive_target_to_end: END index (target << 3) + priority for a present vCPU,
        the target taken as a uint32_t and the priority as a uint8_t."""
        target &= 0xFFFFFFFF
        if target not in self.tctxs:
            return None
        return (target << 3) + (priority & 0xFF)

    def _end_of(self, ctx: GuestContext, target: int, priority: int, bad_priority: int,
                 bad_target: int) -> tuple[int, int]:
        """(0, END index) for (target, priority), or the hcall's error: `bad_priority` (the
        H_Pn of the priority argument, with QEMU's report) for a reserved priority, then
        `bad_target` for a target that is not a present vCPU."""
        if self._reserved(priority):
            self.reports.append(f"XIVE: priority {priority} is reserved")
            return bad_priority, 0
        end_idx = self._target_end(ctx, target, priority)
        return (bad_target, 0) if end_idx is None else (0, end_idx)

    def h_int_get_source_info(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn = args[0], args[1]
        refused = self._refused(ctx, flags, lisn=lisn)
        if refused:
            return refused
        out_flags = 0
        if self.state.source.store_eoi:
            out_flags |= SPAPR_XIVE_SRC_STORE_EOI
        if lisn in self.state.source.lsi:  # H_INT_ESB, so KVM can re-trigger a level
            out_flags |= SPAPR_XIVE_SRC_H_INT_ESB | SPAPR_XIVE_SRC_LSI
        trigger = self.vc_base + (lisn << papr.XIVE_ESB_SHIFT)
        mgmt = trigger + (1 << (papr.XIVE_ESB_SHIFT - 1))
        esb = out_flags & SPAPR_XIVE_SRC_H_INT_ESB
        return (papr.H_SUCCESS, out_flags, MINUS_ONE if esb else mgmt,
                MINUS_ONE if esb else trigger, papr.XIVE_ESB_SHIFT - 1)

    def h_int_set_source_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn, target, priority, eisn = args[:5]
        refused = self._refused(ctx, flags, SPAPR_XIVE_SRC_SET_EISN | SPAPR_XIVE_SRC_MASK, lisn=lisn)
        if refused:
            return refused
        eas = self.state.eas(lisn)
        if priority == 0xFF:  # resets the EAS; QEMU skips the KVM update here
            self.state.eat[lisn] = EAS_VALID | EAS_MASKED
            return (papr.H_SUCCESS,)
        new = eas | EAS_MASKED if flags & SPAPR_XIVE_SRC_MASK else eas & ~EAS_MASKED
        rc, end_idx = self._end_of(ctx, target, priority, papr.H_P4, papr.H_P3)
        if rc:
            return (rc,)
        new &= ~((EAS_END_BLOCK_MASK << EAS_END_BLOCK_SHIFT) | (EAS_END_INDEX_MASK << EAS_END_INDEX_SHIFT))
        new |= (end_idx & EAS_END_INDEX_MASK) << EAS_END_INDEX_SHIFT
        if flags & SPAPR_XIVE_SRC_SET_EISN:
            new = (new & ~EAS_END_DATA_MASK) | (eisn & EAS_END_DATA_MASK)
        if self.in_kernel:
            failure = self._kvm_set_source_config(lisn, new)
            if failure:
                return (papr.H_HARDWARE,)
        self.state.eat[lisn] = new
        return (papr.H_SUCCESS,)

    def h_int_get_source_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn = args[0], args[1]
        refused = self._refused(ctx, flags, lisn=lisn)
        if refused:
            return refused
        eas = self.state.eas(lisn)
        end = self.state.end((eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK)
        nvt_idx = end[6] & END_W6_NVT_INDEX_MASK
        target = (nvt_idx - papr.SPAPR_XIVE_NVT_BASE) & 0xFFFFFFFF
        priority = 0xFF if eas & EAS_MASKED else (end[7] >> END_W7_F0_PRIORITY_SHIFT) & 0xFF
        return (papr.H_SUCCESS, target, priority, eas & EAS_END_DATA_MASK)

    def h_int_get_queue_info(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, target, priority = args[0], args[1], args[2]
        refused = self._refused(ctx, flags)
        if refused:
            return refused
        rc, end_idx = self._end_of(ctx, target, priority, papr.H_P3, papr.H_P2)
        if rc:
            return (rc,)
        end = self.state.end(end_idx)
        qsize = ((end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12 if end[0] & END_W0_ENQUEUE else 0
        return (papr.H_SUCCESS, self.end_base + (1 << (papr.XIVE_ESB_SHIFT + 1)) * end_idx, qsize)

    def h_int_set_queue_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, target, priority, qpage, qsize = args[:5]
        refused = self._refused(ctx, flags, SPAPR_XIVE_END_ALWAYS_NOTIFY)
        if refused:
            return refused
        rc, end_idx = self._end_of(ctx, target, priority, papr.H_P3, papr.H_P2)
        if rc:
            return (rc,)
        end = list(self.state.end(end_idx))
        if qsize in (12, 16, 21, 24):
            if qpage & ((1 << qsize) - 1):
                self.reports.append(f"XIVE: EQ @{qpage:#x} is not naturally aligned with "
                                    f"{1 << qsize:x}")
                return (papr.H_P4,)
            if not self.memory.contains(qpage, 1 << qsize):
                self.reports.append(f"XIVE: failed to map EQ @{qpage:#x}")
                return (papr.H_P4,)
            end[2] = (qpage >> 32) & 0x0FFFFFFF
            end[3] = qpage & 0xFFFFFFFF
            end[0] |= END_W0_ENQUEUE
            end[0] = (end[0] & ~(END_W0_QSIZE_MASK << END_W0_QSIZE_SHIFT)) | ((qsize - 12) << END_W0_QSIZE_SHIFT)
            end[6] = nvt_cam_line(0, papr.SPAPR_XIVE_NVT_BASE + (end_idx >> 3))  # the vCPU's NVT
            end[7] = (priority & 0xFF) << END_W7_F0_PRIORITY_SHIFT
            if flags & SPAPR_XIVE_END_ALWAYS_NOTIFY:
                end[0] |= END_W0_UCOND_NOTIFY
            else:
                end[0] &= ~END_W0_UCOND_NOTIFY
            end[1] = END_W1_GENERATION  # generation 1, page offset 0, ESn 00
            end[0] |= END_W0_VALID
        elif qsize == 0:
            end = end_reset_value()  # reset the queue and disable queueing
        else:
            self.reports.append(f"XIVE: invalid EQ size {qsize:x}")
            return (papr.H_P5,)
        if self.in_kernel:
            failure = self._kvm_set_queue_config(end_idx, end)
            if failure:
                return (papr.H_HARDWARE,)
        self.state.endt[end_idx] = end
        return (papr.H_SUCCESS,)

    def h_int_get_queue_config(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, target, priority = args[0], args[1], args[2]
        refused = self._refused(ctx, flags, SPAPR_XIVE_END_DEBUG)
        if refused:
            return refused
        rc, end_idx = self._end_of(ctx, target, priority, papr.H_P3, papr.H_P2)
        if rc:
            return (rc,)
        end = self.state.end(end_idx)
        out_flags = SPAPR_XIVE_END_ALWAYS_NOTIFY if end[0] & END_W0_UCOND_NOTIFY else 0
        if end[0] & END_W0_ENQUEUE:
            qaddr, qsize = end_qaddr(end), ((end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12
        else:
            qaddr = qsize = 0
        if self.in_kernel:
            failure = self._kvm_get_queue_config(end_idx, end)
            if failure:
                return (papr.H_HARDWARE,)
        offset = 0
        if flags & SPAPR_XIVE_END_DEBUG:
            out_flags |= (1 if end[1] & END_W1_GENERATION else 0) << 62  # QEMU's bit placement
            offset = end[1] & END_W1_PAGE_OFF_MASK
        return (papr.H_SUCCESS, out_flags, qaddr, qsize, offset)

    def h_int_set_os_reporting_line(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        return (papr.H_FUNCTION,)  # not supported by QEMU, negotiated or not

    def h_int_get_os_reporting_line(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        return (papr.H_FUNCTION,)

    def h_int_esb(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn, offset, data = args[:4]
        refused = self._refused(ctx, flags, SPAPR_XIVE_ESB_STORE, lisn=lisn)
        if refused:
            return refused
        if offset > (1 << papr.XIVE_ESB_SHIFT):
            return (papr.H_P3,)
        store = bool(flags & SPAPR_XIVE_ESB_STORE)
        if self.in_kernel:
            return (papr.H_SUCCESS, self._kvm_esb_rw(lisn, offset, data, store))
        addr = self.vc_base + (lisn << papr.XIVE_ESB_SHIFT) + (1 << (papr.XIVE_ESB_SHIFT - 1)) + offset
        if not self.esb_contains(addr):
            self.reports.append(f"XIVE: failed to access ESB @{addr:#x}")
            return (papr.H_HARDWARE,)
        if store:
            self.esb_write(addr - self.vc_base, data, 8)
            return (papr.H_SUCCESS, MINUS_ONE)
        return (papr.H_SUCCESS, self.esb_read(addr - self.vc_base, 8))

    def h_int_sync(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        flags, lisn = args[0], args[1]
        refused = self._refused(ctx, flags, lisn=lisn)
        if refused:
            return refused
        if self.in_kernel and self._kvm_attr(KVM_DEV_XIVE_GRP_SOURCE_SYNC, lisn, None):
            return (papr.H_HARDWARE,)
        return (papr.H_SUCCESS,)

    def h_int_reset(self, ctx: GuestContext, vcpu: int, args) -> tuple[int, ...]:
        refused = self._refused(ctx, args[0])
        if refused:
            return refused
        # device_cold_reset() of the sPAPR XIVE: it has no reset method (its tables are reset by a
        # qemu_register_reset handler) and no bus, so QEMU's EAT, ENDT and PQs stay as they are.
        if self.in_kernel and self._kvm_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_RESET, None):
            return (papr.H_HARDWARE,)
        return (papr.H_SUCCESS,)

    # -- MMIO: the ESB pages at vc_base and the TIMA at tm_base ------------------------------------------
    def esb_contains(self, addr: int) -> bool:
        return self.vc_base <= addr < self.vc_base + (self.nr_irqs << papr.XIVE_ESB_SHIFT)

    def esb_read(self, offset: int, size: int) -> int:
        """A load at `offset` into the source ESB region: the kernel's pages when in-kernel;
        QEMU's emulated region takes 8-byte accesses only (7.2), any other size is a decode
        error that reads 0 and touches nothing."""
        srcno = offset >> papr.XIVE_ESB_SHIFT
        trigger_page = not (offset >> (papr.XIVE_ESB_SHIFT - 1)) & 1
        if self.fd is not None:  # in_kernel, on the hot path
            return self._kvm_esb(srcno, trigger_page, offset & 0xFFF, None, size)
        if size != 8:
            return 0
        value = self.state.esb_load(srcno, trigger_page, offset & 0xFFF)
        return value & ((1 << (8 * size)) - 1)

    def esb_write(self, offset: int, value: int, size: int) -> None:
        srcno = offset >> papr.XIVE_ESB_SHIFT
        trigger_page = not (offset >> (papr.XIVE_ESB_SHIFT - 1)) & 1
        if self.fd is not None:  # in_kernel, on the hot path
            self._kvm_esb(srcno, trigger_page, offset & 0xFFF, value, size)
            return
        if size == 8:  # any other size is dropped by the memory core
            self.state.esb_store(srcno, trigger_page, offset & 0xFFF)

    def tima_read(self, vcpu: int, offset: int, size: int) -> int:
        if self.fd is not None:
            return self._kvm_tima(vcpu, offset, None, size)
        value, error = self.state.tctxs[vcpu].tm_read(offset, size)
        if error:
            self.state.errors.append(error)
        return value

    def tima_write(self, vcpu: int, offset: int, value: int, size: int) -> None:
        if self.fd is not None:
            self._kvm_tima(vcpu, offset, value, size)
            return
        error = self.state.tctxs[vcpu].tm_write(offset, value, size)
        if error:
            self.state.errors.append(error)

    def set_irq(self, irq: int, level: int) -> None:
        """xive_source_set_irq, or under KVM a trigger store on the kernel's ESB page (after
        recording the LSI level in QEMU's copy), as QEMU 5.0+ does."""
        if self.fd is not None:  # in_kernel, on the hot path
            source = self.state.source
            if irq in source.lsi:
                source._set_asserted(irq, bool(level))
            elif not level:
                return
            self._kvm_esb(irq, True, 0, 0, 8)
            return
        self.state.set_irq(irq, level)

    def output(self, vcpu: int) -> bool:
        if self.fd is not None:  # in_kernel, on the hot path
            return self._kvm_output(vcpu)
        return self.tctxs[vcpu].output

    def pre_save(self) -> dict:
        """spapr-xive, xive-source and xive-tctx vmstate, with QEMU's copy synchronized from KVM
        (the VM is stopped, so PQs are those the run-state handler saved). A vCPU state KVM
        cannot give fails the save (ConnectError)."""
        self.synchronize_state(running=False, strict=True)
        return {
            "eat": dict(self.state.eat),
            "endt": {idx: list(end) for idx, end in self.state.endt.items()},
            "source": bytes(self.state.source.status),
            "tctx": {vcpu: bytes(t.regs) for vcpu, t in self.tctxs.items()},
        }

    def post_load(self, state: dict) -> None:
        """Load the vmstate; in KVM restore queues first, then each valid source (reset and
        config), then the vCPU contexts (kvmppc_xive_post_load)."""
        if set(state["tctx"]) != set(self.tctxs) or len(state["source"]) != self.nr_irqs:
            raise ConnectError("XIVE state does not match this machine's sources and vCPUs")
        self.load_state(state)
        self.push_loaded_state()

    # -- migration (vmstate spapr-xive, xive-source, xive-tctx) ---------------------------------------------
    def save_state(self) -> dict:
        """The whole EAT and ENDT, the source status bytes and every vCPU's rings, with QEMU's
        copy synchronized from KVM (the VM is stopped)."""
        state = self.pre_save()
        eat = [0] * self.nr_irqs
        for lisn, eas in state["eat"].items():
            eat[lisn] = eas
        endt = [end_reset_value()] * self.nr_ends
        for idx, end in state["endt"].items():
            endt[idx] = end
        state["eat"], state["endt"] = eat, endt
        return state

    def load_state(self, state: dict) -> None:
        """Set QEMU's copy from a migration stream (EAT and ENDT dense or sparse); vCPUs the
        stream does not name keep their reset state. Nothing reaches KVM until
        push_loaded_state()."""
        eat, endt = state["eat"], state["endt"]
        if isinstance(eat, list):
            eat = {lisn: eas for lisn, eas in enumerate(eat) if eas}
        if isinstance(endt, list):
            reset = end_reset_value()
            endt = {idx: end for idx, end in enumerate(endt) if list(end) != reset}
        self.state.eat = dict(eat)
        self.state.endt = {idx: list(end) for idx, end in endt.items()}
        self.state.source.status[:] = state["source"]
        for vcpu, regs in state["tctx"].items():
            if vcpu not in self.tctxs:
                continue
            self.tctxs[vcpu].regs[:] = regs
            tctx = self.tctxs[vcpu]
            tctx.output = bool(regs[0x10] & 0x80)

    def push_loaded_state(self) -> None:
        """kvmppc_xive_post_load when in-kernel: the queues first, then every valid source
        (reset, then its EAS), then each vCPU's thread context."""
        if not self.in_kernel:
            return
        for end_idx, end in sorted(self.state.endt.items()):
            if end[0] & END_W0_VALID and self._kvm_set_queue_config(end_idx, end):
                raise ConnectError(self.reports[-1])  # post_load fails: the load fails
        for lisn in self.state.valid_lisns():  # the EAT: every valid entry, masked or not
            self._reset_source(lisn)
            if self._kvm_set_source_config(lisn, self.state.eas(lisn)):
                raise ConnectError(self.reports[-1])
        for vcpu, tctx in self.tctxs.items():
            self.kvm.set_one_reg(vcpu, KVM_REG_PPC_VP_STATE, int.from_bytes(tctx.regs[0x10:0x18], "big"))

    def dt_node(self, nr_servers: int) -> tuple[str, dict]:
        page = papr.XIVE_TM_PAGE_SIZE
        user, os_ring = self.tm_base + 3 * page, self.tm_base + 2 * page
        return f"interrupt-controller@{user:x}", {
            "device_type": "power-ivpe",
            "reg": [user, page, os_ring, page],
            "compatible": "ibm,power-ivpe",
            "ibm,xive-eq-sizes": [16],
            "ibm,xive-lisn-ranges": [0, nr_servers],
            "interrupt-controller": True,
            "#interrupt-cells": 2,
            "linux,phandle": papr.PHANDLE_INTC,
            "phandle": papr.PHANDLE_INTC,
        }

    def root_props(self) -> dict:
        hv_prio = papr.SPAPR_XIVE_HV_PRIO
        return {"ibm,plat-res-int-priorities": [hv_prio, 0xFF - hv_prio]}

    # -- info pic -----------------------------------------------------------------------------------------
    def print_info(self, cpus: list[tuple[int, int]]) -> list[str]:
        """hw/intc/xive.c xive_tctx_pic_print_info for each CPU (all four rings, numbered by CPU
        index), then hw/intc/spapr_xive.c spapr_xive_pic_print_info: each valid LISN with its PQ,
        asserted flag, mask and EISN, and for an unmasked one the END's target and queue window."""
        lines = []
        for cpu_index, vcpu_id in cpus:
            tctx = self.tctxs.get(vcpu_id)
            if tctx is None:
                continue
            lines.append(f"CPU[{cpu_index:04x}]:   QW   NSR CPPR IPB LSMFB ACK# INC AGE PIPR  W2")
            for ring, name in enumerate(("USER", "OS", "POOL", "PHYS")):
                r = tctx.regs[ring * 16:ring * 16 + 16]
                lines.append(f"CPU[{cpu_index:04x}]: {name:>4}    {r[0]:02x}   {r[1]:02x}  {r[2]:02x}"
                             f"    {r[3]:02x}   {r[4]:02x}  {r[5]:02x}  {r[6]:02x}   {r[7]:02x}"
                             f"  {int.from_bytes(r[8:12], 'big'):08x}")
        lines.append("  LISN         PQ    EISN     CPU/PRIO EQ")
        source = self.state.source
        for lisn in self.state.valid_lisns():
            eas = self.state.eas(lisn)
            pq = source.pq(lisn)
            line = (f"  {lisn:08x} {'LSI' if lisn in source.lsi else 'MSI'} "
                    f"{'P' if pq & 2 else '-'}{'Q' if pq & 1 else '-'}"
                    f"{'A' if source.asserted(lisn) else ' '} {'M' if eas & EAS_MASKED else ' '} "
                    f"{eas & EAS_END_DATA_MASK:08x} ")
            if not eas & EAS_MASKED:
                end_idx = (eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK
                if end_idx < self.nr_ends and self.state.end(end_idx)[0] & END_W0_VALID:
                    line += self._end_info(self.state.end(end_idx))
            lines.append(line)
        return lines

    def _end_info(self, end: list[int], width: int = 6) -> str:
        """spapr_xive_end_pic_print_info and the queue window of xive_end_queue_pic_print_info:
        the ``width`` entries ending one past the queue index, the last marked ``^``."""
        qaddr = end_qaddr(end)
        qindex = end[1] & END_W1_PAGE_OFF_MASK
        qentries = 1 << (((end[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 10)
        target = ((end[6] & END_W6_NVT_INDEX_MASK) - papr.SPAPR_XIVE_NVT_BASE) & 0xFFFFFFFF
        if target >= 1 << 31:
            target -= 1 << 32  # printed with %d
        priority = (end[7] >> END_W7_F0_PRIORITY_SHIFT) & 0xFF
        text = (f"{target:3d}/{priority} {qindex: 6d}/{qentries:5d} @{qaddr:x} "
                f"^{1 if end[1] & END_W1_GENERATION else 0} [ ")
        index = (qindex - (width - 1)) & (qentries - 1)
        for i in range(width):
            addr = qaddr + (index << 2)
            if not self.memory.contains(addr, 4):
                return text  # QEMU logs "XIVE: failed to read EQ" and stops the line there
            text += f"{'^' if i == width - 1 else ''}{self.memory.read_u32(addr):08x} "
            index = (index + 1) & (qentries - 1)
        return text + "]"
