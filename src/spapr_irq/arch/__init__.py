"""The controllers' architecture: XICS (ICS and ICPs) and XIVE (ESB, EAS, END, TIMA), as plain
state machines that know nothing of KVM or of the machine."""
