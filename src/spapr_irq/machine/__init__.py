"""The pseries machine: init, CAS, reset and run state (``machine``), IRQ numbers (``irq``) and
what the guest reaches (``dispatch``)."""
