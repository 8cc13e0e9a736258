"""The sPAPR interrupt controllers as QEMU builds them: XICS and XIVE, each emulated or in-kernel.

``base`` is the interface the machine drives; ``xics`` and ``xive`` are QEMU's xics_spapr.c and
spapr_xive.c, ``xics_kvm`` and ``xive_kvm`` their KVM sides (xics_kvm.c, spapr_xive_kvm.c).
"""
