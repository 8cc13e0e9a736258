"""sPAPR XIVE architecture state: sources (ESB PQ bits), the EAS table, ENDs and thread contexts.

Plain state with no knowledge of KVM or of the machine (spec/qemu.md 6.1-6.2, 6.6). Routing, event
queues and TIMA operations are issue 4; this module holds what the lifecycle needs: claiming LISNs,
reset values and the OS CAM line of each vCPU.
"""

from __future__ import annotations

# --- EAS (64-bit, PPC bit 0 = MSB) -----------------------------------------------------------------------
EAS_VALID = 1 << 63
EAS_MASKED = 1 << 31  # PPC bit 32
EAS_END_BLOCK_SHIFT = 56  # bits 4-7
EAS_END_INDEX_SHIFT = 32  # bits 8-31
EAS_END_DATA_MASK = 0x7FFFFFFF  # bits 33-63

# --- END word 1 -------------------------------------------------------------------------------------------
END_W1_ESn_Q = 1 << 30  # PPC bit 1
END_W1_ESe_Q = 1 << 28  # PPC bit 3

# --- ESB PQ values and source status --------------------------------------------------------------------
XIVE_ESB_RESET = 0b00
XIVE_ESB_OFF = 0b01
XIVE_ESB_PENDING = 0b10
XIVE_ESB_QUEUED = 0b11
XIVE_STATUS_ASSERTED = 0x4

# --- TIMA rings (byte offsets in the 64-byte thread context) --------------------------------------------
TM_QW0_USER = 0x00
TM_QW1_OS = 0x10
TM_QW2_HV_POOL = 0x20
TM_QW3_HV_PHYS = 0x30
TM_NSR, TM_CPPR, TM_IPB, TM_LSMFB, TM_ACK_CNT, TM_INC, TM_AGE, TM_PIPR = range(8)
TM_WORD2 = 0x8
TM_QW1W2_VO = 1 << 31


def nvt_cam_line(block: int, index: int) -> int:
    """CAM line of an NVT: block in bits 19+ above the 19-bit index."""
    return (block << 19) | index


class XiveSource:
    """`nr_irqs` sources, each a status byte: PQ in bits 0-1, ASSERTED, plus the LSI map."""

    def __init__(self, nr_irqs: int, reset_pq: int = XIVE_ESB_OFF) -> None:
        self.nr_irqs = nr_irqs
        self.reset_pq = reset_pq
        self.status = bytearray([reset_pq]) * nr_irqs
        self.lsi: set[int] = set()

    def set_lsi(self, srcno: int, lsi: bool) -> None:
        if lsi:
            self.lsi.add(srcno)
        else:
            self.lsi.discard(srcno)

    def pq(self, srcno: int) -> int:
        return self.status[srcno] & 0b11

    def reset(self) -> None:
        """Every PQ back to `reset_pq`, levels dropped; the LSI map is configuration and stays."""
        self.status[:] = bytearray([self.reset_pq]) * self.nr_irqs


class XiveTCTX:
    """A vCPU's thread interrupt context: the 64 bytes of the four TIMA rings."""

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.regs = bytearray(64)
        self.reset()

    def reset(self) -> None:
        self.regs[:] = bytes(64)
        self.regs[TM_QW1_OS + TM_LSMFB] = 0xFF
        self.regs[TM_QW1_OS + TM_ACK_CNT] = 0xFF
        self.regs[TM_QW1_OS + TM_AGE] = 0xFF
        self.regs[TM_QW1_OS + TM_PIPR] = 0xFF
        self.regs[TM_QW3_HV_PHYS + TM_PIPR] = 0xFF

    def set_os_cam(self, cam: int) -> None:
        """OS ring word 2 := VO | cam, big-endian (sPAPR does this at every CPU reset)."""
        word = TM_QW1W2_VO | cam
        self.regs[TM_QW1_OS + TM_WORD2:TM_QW1_OS + TM_WORD2 + 4] = word.to_bytes(4, "big")

    @property
    def os_cam(self) -> int:
        word = int.from_bytes(self.regs[TM_QW1_OS + TM_WORD2:TM_QW1_OS + TM_WORD2 + 4], "big")
        return word


class SpaprXiveState:
    """The sPAPR XIVE tables: EAT (one EAS per LISN) and ENDT (8 words per END).

    The EAT is sparse: a LISN absent from `eat` has an all-zero EAS.
    """

    def __init__(self, nr_irqs: int, nr_ends: int) -> None:
        self.nr_irqs = nr_irqs
        self.nr_ends = nr_ends
        self.eat: dict[int, int] = {}
        self.endt = [[0] * 8 for _ in range(nr_ends)]
        self.source = XiveSource(nr_irqs)

    def eas(self, lisn: int) -> int:
        return self.eat.get(lisn, 0)

    def eas_valid(self, lisn: int) -> bool:
        return bool(self.eat.get(lisn, 0) & EAS_VALID)

    def claim(self, lisn: int, lsi: bool) -> None:
        """Make a LISN valid and masked; the caller checked it was free."""
        assert not self.eas_valid(lisn)
        self.eat[lisn] = EAS_VALID | EAS_MASKED
        self.source.set_lsi(lisn, lsi)

    def free(self, lisn: int) -> None:
        """spapr_xive_irq_free clears only the VALID bit."""
        eas = self.eat.get(lisn, 0) & ~EAS_VALID
        if eas:
            self.eat[lisn] = eas
        else:
            self.eat.pop(lisn, None)

    def valid_lisns(self) -> list[int]:
        return sorted(lisn for lisn, eas in self.eat.items() if eas & EAS_VALID)

    def reset(self) -> None:
        """Valid EAS become VALID|MASKED, others 0; every END cleared with ESe/ESn Q set."""
        self.eat = {lisn: EAS_VALID | EAS_MASKED for lisn, eas in self.eat.items() if eas & EAS_VALID}
        for end in self.endt:
            end[:] = [0, END_W1_ESe_Q | END_W1_ESn_Q, 0, 0, 0, 0, 0, 0]
        self.source.reset()
