"""Constants of the PAPR platform and of QEMU's pseries IRQ number space.

Everything here is a fact of the platform (LoPAPR, Linux's hvcall.h, QEMU's spapr headers), kept as
data so that every other module speaks the same numbers. Nothing here has behaviour.
"""

from __future__ import annotations

# --- Hypercall return codes (Linux arch/powerpc/include/asm/hvcall.h) -----------------------------
H_SUCCESS = 0
H_BUSY = 1
H_HARDWARE = -1
H_FUNCTION = -2
H_PRIVILEGE = -3
H_PARAMETER = -4
H_P2 = -55
H_P3 = -56
H_P4 = -57
H_P5 = -58
H_STATE = -75

# --- Hypercall numbers ------------------------------------------------------------------------------
HCALLS: dict[str, int] = {
    # XICS presentation (registered by the sPAPR ICS)
    "H_EOI": 0x64,
    "H_CPPR": 0x68,
    "H_IPI": 0x6C,
    "H_IPOLL": 0x70,
    "H_XIRR": 0x74,
    "H_XIRR_X": 0x2FC,
    # XIVE exploitation (registered by the sPAPR XIVE)
    "H_INT_GET_SOURCE_INFO": 0x3A8,
    "H_INT_SET_SOURCE_CONFIG": 0x3AC,
    "H_INT_GET_SOURCE_CONFIG": 0x3B0,
    "H_INT_GET_QUEUE_INFO": 0x3B4,
    "H_INT_SET_QUEUE_CONFIG": 0x3B8,
    "H_INT_GET_QUEUE_CONFIG": 0x3BC,
    "H_INT_SET_OS_REPORTING_LINE": 0x3C0,
    "H_INT_GET_OS_REPORTING_LINE": 0x3C4,
    "H_INT_ESB": 0x3C8,
    "H_INT_SYNC": 0x3CC,
    "H_INT_RESET": 0x3D0,
    # Firmware-private calls QEMU gives SLOF
    "H_RTAS": 0xF000,
    "H_CAS": 0xF002,
}
HCALL_NAMES: dict[int, str] = {number: name for name, number in HCALLS.items()}

XICS_HCALLS = ("H_CPPR", "H_IPI", "H_XIRR", "H_XIRR_X", "H_EOI", "H_IPOLL")
XIVE_HCALLS = (
    "H_INT_GET_SOURCE_INFO",
    "H_INT_SET_SOURCE_CONFIG",
    "H_INT_GET_SOURCE_CONFIG",
    "H_INT_GET_QUEUE_INFO",
    "H_INT_SET_QUEUE_CONFIG",
    "H_INT_GET_QUEUE_CONFIG",
    "H_INT_SET_OS_REPORTING_LINE",
    "H_INT_GET_OS_REPORTING_LINE",
    "H_INT_ESB",
    "H_INT_SYNC",
    "H_INT_RESET",
)

# --- RTAS -------------------------------------------------------------------------------------------
RTAS_TOKENS: dict[str, int] = {
    "ibm,set-xive": 0x200A,
    "ibm,get-xive": 0x200B,
    "ibm,int-off": 0x200C,
    "ibm,int-on": 0x200D,
}
RTAS_NAMES: dict[int, str] = {token: name for name, token in RTAS_TOKENS.items()}
#: The return words each call gives (its status included): ibm,get-xive answers server and
#: priority too (PAPR 7.3.10).
RTAS_NRET: dict[str, int] = {"ibm,set-xive": 1, "ibm,get-xive": 3, "ibm,int-off": 1,
                             "ibm,int-on": 1}
XICS_RTAS_CALLS = ("ibm,set-xive", "ibm,get-xive", "ibm,int-off", "ibm,int-on")

RTAS_OUT_SUCCESS = 0
RTAS_OUT_HW_ERROR = -1
RTAS_OUT_PARAM_ERROR = -3

# --- Option vector 5 (CAS) --------------------------------------------------------------------------
#: PAPR byte number of the interrupt-controller field; in a bytes object ov5[0] is byte 1.
OV5_INTC_BYTE = 23
OV5_MMU_BYTE = 24
OV5_XIVE_LEGACY = 0x00  #: XICS only (platform) / XICS requested (guest)
OV5_XIVE_EXPLOIT = 0x40  #: XIVE only (platform) / XIVE requested (guest)
OV5_XIVE_BOTH = 0x80  #: either, guest's choice (platform); invalid from a guest
OV5_XIVE_MASK = 0xC0
OV5_MMU_BOTH = 0x80  #: OV5 byte 24: hash and radix (guest may not ask for both)
OV5_HP_EVT_BYTE, OV5_HP_EVT = 6, 0x04  #: OV_BIT(6, 5): hot-plug events on their own source


def ov5_byte(ov5: bytes, byte: int) -> int:
    """PAPR byte `byte` (1-based) of an option vector 5 given as bytes (ov5[0] is byte 1)."""
    index = byte - 1
    return ov5[index] if 0 <= index < len(ov5) else 0


def ov5_with(byte: int, value: int, length: int = 26) -> bytes:
    """An option vector 5 of `length` bytes, all zero but PAPR byte `byte` set to `value`."""
    vector = bytearray(length)
    vector[byte - 1] = value
    return bytes(vector)


# --- IRQ number space (QEMU include/hw/ppc/spapr_irq.h) ---------------------------------------------
SPAPR_IRQ_IPI = 0x0
SPAPR_IRQ_NR_IPIS = 0x1000
SPAPR_XIRQ_BASE = 0x1000
XICS_IRQ_BASE = SPAPR_XIRQ_BASE
SPAPR_IRQ_EPOW = 0x1000
SPAPR_IRQ_HOTPLUG = 0x1001
SPAPR_IRQ_VIO = 0x1100
SPAPR_IRQ_PCI_LSI = 0x1200
SPAPR_IRQ_MSI = 0x1300
SPAPR_NR_XIRQS = 0x1000
SPAPR_NR_MSIS = SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS - SPAPR_IRQ_MSI  # 0xD00
ICS_NR_IRQS = 0x1000
ICS_NR_IRQS_LEGACY = 0x400
XIVE_NR_IRQS = SPAPR_NR_XIRQS + SPAPR_XIRQ_BASE  # 0x2000

# --- Device tree ------------------------------------------------------------------------------------
PHANDLE_INTC = 0x1111

# --- XIVE geometry (QEMU hw/intc/spapr_xive.c defaults) ---------------------------------------------
SPAPR_XIVE_VC_BASE = 0x0006010000000000
SPAPR_XIVE_TM_BASE = 0x0006030203180000
SPAPR_XIVE_NVT_BASE = 0x400
SPAPR_XIVE_HV_PRIO = 7
XIVE_TM_PAGE_SIZE = 1 << 16
XIVE_ESB_SHIFT = 17  #: 2 pages of 64K per source
