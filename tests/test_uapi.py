"""The two XICS state words of the KVM ABI, packed and unpacked in one place (host.uapi)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from spapr_irq.host.uapi import (KVM_XICS_LEVEL_SENSITIVE, KVM_XICS_MASKED, KVM_XICS_PENDING,
                                 KVM_XICS_PRESENTED, KVM_XICS_QUEUED, IcpStateWord,
                                 XicsSourceWord)


def test_source_word_bits_are_the_uapi_ones():
    assert XicsSourceWord(7, 5).pack() == 7 | 5 << 32
    flags = XicsSourceWord(0, 0, lsi=True, masked=True, pending=True, presented=True, queued=True)
    assert flags.pack() == (KVM_XICS_LEVEL_SENSITIVE | KVM_XICS_MASKED | KVM_XICS_PENDING
                            | KVM_XICS_PRESENTED | KVM_XICS_QUEUED)


@given(st.integers(0, (1 << 45) - 1))
def test_source_word_unpacks_and_packs_back_every_defined_bit(value):
    assert XicsSourceWord.unpack(value).pack() == value


def test_icp_word_places_cppr_xisr_mfrr_and_ppri():
    assert IcpStateWord(0x05, 0x1234, 0xFF, 0x03).pack() == 0x05_001234_FF_03_0000
    assert IcpStateWord.unpack(0x05_001234_FF_03_0000) == (0x05, 0x1234, 0xFF, 0x03)


@given(st.integers(0, (1 << 64) - 1))
def test_icp_word_keeps_only_its_fields(value):
    assert IcpStateWord.unpack(value).pack() == value & ~0xFFFF
