"""The migration stream, laid out as QEMU's savevm format (migration/savevm.c, vmstate.c).

A stream is the magic and version, the configuration section (the machine type), then one full
section per device instance (type byte, section id, name, instance id, version, fields,
subsections, footer), the EOF byte, and a JSON description of the sections (QEMU's vmdesc). All
numbers are big-endian. Reading is driven by the destination's own description of each section,
as QEMU's is: array lengths come from the destination, ``*_EQUAL`` fields must match it, and what
goes wrong is reported with QEMU's texts (:class:`LoadError`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

QEMU_VM_FILE_MAGIC = 0x5145564D
QEMU_VM_FILE_VERSION = 3
QEMU_VM_EOF = 0x00
QEMU_VM_SECTION_FULL = 0x04
QEMU_VM_SUBSECTION = 0x05
QEMU_VM_VMDESCRIPTION = 0x06
QEMU_VM_CONFIGURATION = 0x07
QEMU_VM_SECTION_FOOTER = 0x7E

EINVAL = "Invalid argument"
EIO = "Input/output error"
ENOTSUP = "Operation not supported"


class LoadError(Exception):
    """A stream the destination refuses; `lines` are what QEMU prints, the last one
    ``load of migration failed: <strerror>``."""

    def __init__(self, *lines: str, errno_text: str = EINVAL) -> None:
        self.lines = (*lines, f"load of migration failed: {errno_text}")
        super().__init__("\n".join(self.lines))


# --- Field kinds -------------------------------------------------------------------------------------------
# A field is (name, kind, count). Kinds: "u8" | "u32" | "u64" (count of them: an array when > 1);
# "u32_equal" (must equal count, as VMSTATE_UINT32_EQUAL); "buffer" (count bytes); "vbuffer" (a
# u32 length, then the bytes); "records:FMT" (count structs, e.g. ">IBBBB"); "list:FMT" (a u32
# count, then the structs); "pages" (a u32 count, then (u64 page number, PAGE bytes) each, count
# being the page size).
_FORMATS = {"u8": ">B", "u32": ">I", "u64": ">Q", "u32_equal": ">I"}


@dataclass
class Section:
    """One device instance's state: its vmstate name, instance id, version, field values
    (lists for arrays, bytes for buffers) and subsections by name."""

    name: str
    instance: int
    version: int
    fields: dict[str, object]
    subsections: dict[str, dict[str, object]] = field(default_factory=dict)


#: What the reader of a section needs: its fields in order, and its known subsections' fields.
Schema = tuple[tuple[tuple[str, str, int], ...], dict[str, tuple[tuple[str, str, int], ...]]]


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def put(self, fmt: str, value: int) -> None:
        self.out += struct.pack(fmt, value)

    def put_str8(self, text: str) -> None:
        data = text.encode()
        self.put(">B", len(data))
        self.out += data

    def put_fields(self, fields, values: dict) -> None:
        for name, kind, count in fields:
            value = values[name]
            if kind == "buffer":
                if len(value) != count:
                    raise ValueError(f"{name}: {len(value)} bytes, not {count}")
                self.out += value
            elif kind == "vbuffer":
                self.put(">I", len(value))
                self.out += value
            elif kind.startswith(("records:", "list:")):
                fmt = kind.split(":", 1)[1]
                if kind.startswith("list:"):
                    self.put(">I", len(value))
                elif len(value) != count:
                    raise ValueError(f"{name}: {len(value)} records, not {count}")
                pack = struct.Struct(fmt).pack
                self.out += b"".join([pack(*record) for record in value])
            elif kind == "pages":
                self.put(">I", len(value))
                for number, data in sorted(value.items()):
                    if len(data) != count:
                        raise ValueError(f"{name}: a page of {len(data)} bytes, not {count}")
                    self.put(">Q", number)
                    self.out += data
            elif count == 1 or kind == "u32_equal":
                self.put(_FORMATS[kind], value)
            else:
                if len(value) != count:
                    raise ValueError(f"{name}: {len(value)} entries, not {count}")
                self.out += struct.pack(f">{count}{_FORMATS[kind][1]}", *value)


def encode(machine_type: str, sections: list[Section], schemas: dict[str, Schema]) -> bytes:
    """The stream for `sections`, each written with its schema (the source's own sizes)."""
    w = _Writer()
    w.put(">I", QEMU_VM_FILE_MAGIC)
    w.put(">I", QEMU_VM_FILE_VERSION)
    w.put(">B", QEMU_VM_CONFIGURATION)
    name = machine_type.encode()
    w.put(">I", len(name))
    w.out += name
    description = []
    for section_id, section in enumerate(sections):
        fields, subsections = schemas[section.name]
        w.put(">B", QEMU_VM_SECTION_FULL)
        w.put(">I", section_id)
        w.put_str8(section.name)
        w.put(">I", section.instance)
        w.put(">I", section.version)
        w.put_fields(fields, section.fields)
        for sub_name, values in section.subsections.items():
            w.put(">B", QEMU_VM_SUBSECTION)
            w.put_str8(sub_name)
            w.put(">I", 1)
            w.put_fields(subsections[sub_name], values)
        w.put(">B", QEMU_VM_SECTION_FOOTER)
        w.put(">I", section_id)
        description.append({"name": section.name, "instance_id": section.instance,
                            "version": section.version,
                            "fields": [{"name": n, "type": k, "size": c} for n, k, c in fields],
                            "subsections": list(section.subsections)})
    w.put(">B", QEMU_VM_EOF)
    vmdesc = json.dumps({"devices": description}, separators=(",", ":")).encode()
    w.put(">B", QEMU_VM_VMDESCRIPTION)
    w.put(">I", len(vmdesc))
    w.out += vmdesc
    return bytes(w.out)


class _Short(Exception):
    """The stream ended inside a read."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Short()
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def get(self, fmt: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def get_str8(self) -> str:
        return self.take(self.get(">B")).decode("latin-1")


def _read_fields(r: _Reader, vmsd: str, section: tuple[str, int], fields) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, kind, count in fields:
        try:
            if kind == "buffer":
                values[name] = r.take(count)
            elif kind == "vbuffer":
                values[name] = r.take(r.get(">I"))
            elif kind.startswith(("records:", "list:")):
                fmt = kind.split(":", 1)[1]
                number = r.get(">I") if kind.startswith("list:") else count
                size = struct.calcsize(fmt)
                values[name] = list(struct.iter_unpack(fmt, r.take(size * number)))
            elif kind == "pages":
                pages = {}
                for _ in range(r.get(">I")):
                    number = r.get(">Q")
                    pages[number] = r.take(count)
                values[name] = pages
            elif kind == "u32_equal":
                got = r.get(">I")
                if got != count:
                    raise LoadError(f"{got} != {count}", f"Failed to load {vmsd}:{name}",
                                    f"error while loading state for instance {section[1]:#x} of "
                                    f"device '{section[0]}'")
                values[name] = got
            elif count == 1:
                values[name] = r.get(_FORMATS[kind])
            else:
                fmt = _FORMATS[kind]
                size = struct.calcsize(fmt)
                values[name] = list(struct.unpack(f">{count}{fmt[1]}", r.take(size * count)))
        except _Short:
            raise LoadError(f"Failed to load {vmsd}:{name}",
                            f"error while loading state for instance {section[1]:#x} of device "
                            f"'{section[0]}'", errno_text=EIO) from None
    return values


def decode(data: bytes, machine_type: str, schemas: dict[tuple[str, int], tuple[int, Schema]]
           ) -> list[Section]:
    """Read a whole stream against the destination's sections (name, instance) -> (version,
    schema), without changing anything; raise LoadError as QEMU would refuse it."""
    r = _Reader(bytes(data))
    try:
        if r.get(">I") != QEMU_VM_FILE_MAGIC:
            raise LoadError("Not a migration stream")
        if r.get(">I") != QEMU_VM_FILE_VERSION:
            raise LoadError("Unsupported migration stream version", errno_text=ENOTSUP)
        if r.get(">B") != QEMU_VM_CONFIGURATION:
            raise LoadError("Configuration section missing")
        received = r.take(r.get(">I")).decode("latin-1")
    except _Short:
        raise LoadError(errno_text=EIO) from None
    if received != machine_type:
        raise LoadError(f"Machine type received is '{received}' and local is '{machine_type}'")
    sections: list[Section] = []
    while True:
        try:
            kind = r.get(">B")
        except _Short:
            raise LoadError(errno_text=EIO) from None
        if kind == QEMU_VM_EOF:
            return sections
        if kind != QEMU_VM_SECTION_FULL:
            raise LoadError(f"Unknown savevm section type {kind}")
        try:
            section_id = r.get(">I")
            name = r.get_str8()
            instance = r.get(">I")
            version = r.get(">I")
        except _Short:
            raise LoadError(errno_text=EIO) from None
        known = schemas.get((name, instance))
        if known is None:
            raise LoadError(f"Unknown savevm section or instance '{name}' {instance}. Make sure "
                            "that your current VM setup matches your saved VM setup, including "
                            "any hotplugged devices")
        our_version, (fields, subsection_fields) = known
        if version > our_version:
            raise LoadError(f"savevm: unsupported version {version} for '{name}' v{our_version}")
        values = _read_fields(r, name, (name, instance), fields)
        subsections: dict[str, dict[str, object]] = {}
        try:
            while r.data[r.pos:r.pos + 1] == bytes([QEMU_VM_SUBSECTION]):
                r.take(1)
                sub = r.get_str8()
                r.get(">I")
                if sub not in subsection_fields:
                    raise LoadError(f"error while loading state for instance {instance:#x} of "
                                    f"device '{name}'", errno_text="No such file or directory")
                subsections[sub] = _read_fields(r, sub, (name, instance), subsection_fields[sub])
            footer = r.get(">B")
            footer_id = r.get(">I")
        except _Short:
            raise LoadError(errno_text=EIO) from None
        if footer != QEMU_VM_SECTION_FOOTER or footer_id != section_id:
            raise LoadError(f"Missing section footer for {name}")
        sections.append(Section(name, instance, version, values, subsections))
