"""``spapr-irq conform``: boot a real QEMU for each case and compare it with the model.

``cases`` names what to run, ``guest`` builds the initramfs whose /init reports what Linux sees,
``qemu`` drives the real binary over QMP (qemu.qmp) and records what it did, ``compare`` asks the
model the same question and lists the differences.
"""
