"""The KVM ABI numbers a PowerPC host offers (include/uapi/linux/kvm.h and
arch/powerpc/include/uapi/asm/kvm.h), and the kernel limits behind them.

Data, and the layouts of the two XICS state words: every module of the host kernel and of QEMU's
KVM side reads its numbers here and packs or unpacks those words here, so the two sides of the
ABI cannot disagree on a bit.
"""

from __future__ import annotations

from typing import NamedTuple

# --- Capabilities (KVM_CHECK_EXTENSION on the VM fd, KVM_ENABLE_CAP on a vCPU fd) ---------------------
KVM_CAP_PPC_SMT = 64
KVM_CAP_PPC_SMT_POSSIBLE = 147  # Linux 4.13, with KVM_ENABLE_CAP(KVM_CAP_PPC_SMT)
KVM_CAP_PPC_RTAS = 91
KVM_CAP_IRQ_XICS = 92
KVM_CAP_PPC_IRQ_XIVE = 169

# --- Device types (enum kvm_device_type) ----------------------------------------------------------------
KVM_DEV_TYPE_XICS = 3
KVM_DEV_TYPE_XIVE = 9
DEVICE_TYPE_NAMES = {KVM_DEV_TYPE_XICS: "XICS", KVM_DEV_TYPE_XIVE: "XIVE"}

# --- KVM_DEV_TYPE_XICS attribute groups -----------------------------------------------------------------
KVM_DEV_XICS_GRP_SOURCES = 1
KVM_DEV_XICS_GRP_CTRL = 2
KVM_DEV_XICS_NR_SERVERS = 1

#: The 64-bit source state word of KVM_DEV_XICS_GRP_SOURCES.
KVM_XICS_DESTINATION_MASK = 0xFFFFFFFF
KVM_XICS_PRIORITY_SHIFT = 32
KVM_XICS_PRIORITY_MASK = 0xFF
KVM_XICS_LEVEL_SENSITIVE = 1 << 40
KVM_XICS_MASKED = 1 << 41
KVM_XICS_PENDING = 1 << 42
KVM_XICS_PRESENTED = 1 << 43
KVM_XICS_QUEUED = 1 << 44

#: KVM_IRQ_LINE levels (as the 32-bit values the ioctl carries).
KVM_INTERRUPT_SET = 0xFFFFFFFF
KVM_INTERRUPT_UNSET = 0xFFFFFFFE
KVM_INTERRUPT_SET_LEVEL = 0xFFFFFFFD

# --- KVM_DEV_TYPE_XIVE attribute groups -----------------------------------------------------------------
KVM_DEV_XIVE_GRP_CTRL = 1
KVM_DEV_XIVE_RESET = 1
KVM_DEV_XIVE_EQ_SYNC = 2
KVM_DEV_XIVE_NR_SERVERS = 3
KVM_DEV_XIVE_GRP_SOURCE = 2
KVM_DEV_XIVE_GRP_SOURCE_CONFIG = 3
KVM_DEV_XIVE_GRP_EQ_CONFIG = 4
KVM_DEV_XIVE_GRP_SOURCE_SYNC = 5

KVM_XIVE_LEVEL_SENSITIVE = 1 << 0
KVM_XIVE_LEVEL_ASSERTED = 1 << 1

#: The 64-bit word of KVM_DEV_XIVE_GRP_SOURCE_CONFIG.
KVM_XIVE_SOURCE_PRIORITY_MASK = 0x7
KVM_XIVE_SOURCE_SERVER_SHIFT, KVM_XIVE_SOURCE_SERVER_MASK = 3, 0xFFFFFFF8
KVM_XIVE_SOURCE_MASKED_SHIFT = 32
KVM_XIVE_SOURCE_EISN_SHIFT, KVM_XIVE_SOURCE_EISN_MASK = 33, 0xFFFFFFFE00000000

#: The EQ identifier of KVM_DEV_XIVE_GRP_EQ_CONFIG and the flags of struct kvm_ppc_xive_eq.
KVM_XIVE_EQ_PRIORITY_MASK = 0x7
KVM_XIVE_EQ_SERVER_SHIFT = 3
KVM_XIVE_EQ_ALWAYS_NOTIFY = 0x1

#: mmap page offsets of a XIVE device fd.
KVM_XIVE_TIMA_PAGE_OFFSET = 0
KVM_XIVE_ESB_PAGE_OFFSET = 4

# --- ONE_REG registers (by their index: KVM_REG_PPC | size | index) --------------------------------------
KVM_REG_PPC_ICP_STATE = 0x8C  # KVM_REG_PPC | KVM_REG_SIZE_U64 | 0x8c
KVM_REG_PPC_VP_STATE = 0x8D  # KVM_REG_PPC | KVM_REG_SIZE_U128 | 0x8d
ICP_CPPR_SHIFT, ICP_XISR_SHIFT, ICP_MFRR_SHIFT, ICP_PPRI_SHIFT = 56, 32, 24, 16

# --- Kernel limits ------------------------------------------------------------------------------------
KVMPPC_XICS_FIRST_IRQ = 16  # numbers below are reserved (0 none, 2 the IPI)
KVMPPC_XICS_ICS_SHIFT = 10  # 1024 sources per ICS block
KVMPPC_XICS_NR_IRQS = 1 << 20
KVMPPC_XIVE_NR_IRQS = KVMPPC_XICS_NR_IRQS
KVM_MAX_VCPUS = 2048  # NR_CPUS of the distribution kernels (KVM_MAX_VCORES too)
KVM_MAX_VCPU_IDS = KVM_MAX_VCPUS * 8  # MAX_SMT_THREADS * KVM_MAX_VCORES
THREADS_PER_SUBCORE = 8  # POWER8: the SMT mode a VM starts with

#: Arguments an in-kernel RTAS call can carry (struct rtas_args: __be32 args[16]).
RTAS_ARGS_MAX = 16

#: Names the kernel serves as RTAS calls when a token is defined for them (book3s_rtas.c).
KERNEL_RTAS_CALLS = ("ibm,set-xive", "ibm,get-xive", "ibm,int-off", "ibm,int-on")


class XicsSourceWord(NamedTuple):
    """The 64-bit state of one source in KVM_DEV_XICS_GRP_SOURCES: server, priority and flags.
    What each flag means for a given source is the user's business (QEMU, book3s_xics.c and
    book3s_xive.c each fill and read it their own way)."""

    server: int
    priority: int
    lsi: bool = False
    masked: bool = False
    pending: bool = False
    presented: bool = False
    queued: bool = False

    def pack(self) -> int:
        return ((self.server & KVM_XICS_DESTINATION_MASK)
                | (self.priority & KVM_XICS_PRIORITY_MASK) << KVM_XICS_PRIORITY_SHIFT
                | (KVM_XICS_LEVEL_SENSITIVE if self.lsi else 0)
                | (KVM_XICS_MASKED if self.masked else 0)
                | (KVM_XICS_PENDING if self.pending else 0)
                | (KVM_XICS_PRESENTED if self.presented else 0)
                | (KVM_XICS_QUEUED if self.queued else 0))

    @classmethod
    def unpack(cls, value: int) -> "XicsSourceWord":
        return cls(value & KVM_XICS_DESTINATION_MASK,
                   (value >> KVM_XICS_PRIORITY_SHIFT) & KVM_XICS_PRIORITY_MASK,
                   bool(value & KVM_XICS_LEVEL_SENSITIVE), bool(value & KVM_XICS_MASKED),
                   bool(value & KVM_XICS_PENDING), bool(value & KVM_XICS_PRESENTED),
                   bool(value & KVM_XICS_QUEUED))


class IcpStateWord(NamedTuple):
    """KVM_REG_PPC_ICP_STATE: CPPR<<56 | XISR<<32 | MFRR<<24 | PPRI<<16."""

    cppr: int
    xisr: int
    mfrr: int
    ppri: int

    def pack(self) -> int:
        return ((self.cppr & 0xFF) << ICP_CPPR_SHIFT | (self.xisr & 0xFFFFFF) << ICP_XISR_SHIFT
                | (self.mfrr & 0xFF) << ICP_MFRR_SHIFT | (self.ppri & 0xFF) << ICP_PPRI_SHIFT)

    @classmethod
    def unpack(cls, value: int) -> "IcpStateWord":
        return cls((value >> ICP_CPPR_SHIFT) & 0xFF, (value >> ICP_XISR_SHIFT) & 0xFFFFFF,
                   (value >> ICP_MFRR_SHIFT) & 0xFF, (value >> ICP_PPRI_SHIFT) & 0xFF)
