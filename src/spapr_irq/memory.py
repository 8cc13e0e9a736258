"""Guest memory: sparse 64K pages, big-endian accessors, as the guest sees it."""

from __future__ import annotations

PAGE_SHIFT = 16
PAGE_SIZE = 1 << PAGE_SHIFT


class GuestMemory:
    """`size` bytes of guest RAM; pages come into being on first write and read as zero before."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pages: dict[int, bytearray] = {}

    def contains(self, addr: int, length: int = 1) -> bool:
        return 0 <= addr and length >= 0 and addr + length <= self.size

    def _check(self, addr: int, length: int) -> None:
        if not self.contains(addr, length):
            raise ValueError(f"guest address range {addr:#x}+{length:#x} is outside RAM "
                             f"(size {self.size:#x})")

    def read(self, addr: int, size: int) -> bytes:
        self._check(addr, size)
        out = bytearray()
        while size:
            page, offset = divmod(addr, PAGE_SIZE)
            chunk = min(size, PAGE_SIZE - offset)
            data = self._pages.get(page)
            out += data[offset:offset + chunk] if data else bytes(chunk)
            addr, size = addr + chunk, size - chunk
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        self._check(addr, len(data))
        view = memoryview(bytes(data))
        while view:
            page, offset = divmod(addr, PAGE_SIZE)
            chunk = min(len(view), PAGE_SIZE - offset)
            target = self._pages.setdefault(page, bytearray(PAGE_SIZE))
            target[offset:offset + chunk] = view[:chunk]
            addr, view = addr + chunk, view[chunk:]

    def zero(self, addr: int, length: int) -> None:
        """Clear a range (a guest's memset): whole pages are dropped, since absent pages read 0."""
        self._check(addr, length)
        end = addr + length
        while addr < end:
            page, offset = divmod(addr, PAGE_SIZE)
            chunk = min(end - addr, PAGE_SIZE - offset)
            if chunk == PAGE_SIZE:
                self._pages.pop(page, None)
            elif page in self._pages:
                self._pages[page][offset:offset + chunk] = bytes(chunk)
            addr += chunk

    def read_u32(self, addr: int) -> int:
        """A big-endian 32-bit load at a 4-byte aligned address (event queue entries)."""
        if addr & 3 or not 0 <= addr <= self.size - 4:
            return self.read_be(addr, 4)
        data = self._pages.get(addr >> PAGE_SHIFT)
        if data is None:
            return 0
        offset = addr & (PAGE_SIZE - 1)
        return int.from_bytes(data[offset:offset + 4], "big")

    def write_u32(self, addr: int, value: int) -> None:
        """A big-endian 32-bit store at a 4-byte aligned address (what an END writes)."""
        if addr & 3 or not 0 <= addr <= self.size - 4:
            self.write_be(addr, 4, value)
            return
        data = self._pages.get(addr >> PAGE_SHIFT)
        if data is None:
            data = self._pages[addr >> PAGE_SHIFT] = bytearray(PAGE_SIZE)
        offset = addr & (PAGE_SIZE - 1)
        data[offset:offset + 4] = (value & 0xFFFFFFFF).to_bytes(4, "big")

    def read_be(self, addr: int, size: int) -> int:
        return int.from_bytes(self.read(addr, size), "big")

    def write_be(self, addr: int, size: int, value: int) -> None:
        self.write(addr, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big"))

    def pages(self) -> dict[int, bytes]:
        """Every page that was ever written, by page number (what migration sends)."""
        return {number: bytes(data) for number, data in self._pages.items()}

    def replace_pages(self, pages: dict[int, bytes]) -> None:
        """Make RAM exactly `pages` (an incoming migration); the caller checked the numbers."""
        self._pages = {number: bytearray(data) for number, data in pages.items()}
