"""The checker: every configuration x host x guest x event sequence, explored breadth-first and held
to DESIGN.md's guarantees G1-G5 (``spapr-irq check``, ``simulate``, ``compare``)."""
