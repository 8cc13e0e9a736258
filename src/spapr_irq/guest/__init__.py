"""Linux-like pseries guests: their CAS answers (``profiles``) and their XICS and XIVE interrupt
drivers (``linux_xics``, ``linux_xive``)."""
