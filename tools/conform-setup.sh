#!/usr/bin/env bash
# make conform-setup: the real QEMU (Debian's qemu-system-ppc) and a real ppc64le guest in .conform/:
# Debian's linux-image-*-powerpc64le vmlinux and an initramfs around busybox-static (ppc64el),
# fetched with a private apt list directory so the system's own architectures stay untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=.conform
mkdir -p "$OUT"
if ! command -v qemu-system-ppc64 >/dev/null; then
    if [ "$(id -u)" != 0 ]; then echo "conform-setup: qemu-system-ppc is missing and installing it needs root" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-ppc >/dev/null
fi
if [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initrd.gz" ]; then
    echo "conform-setup: $OUT/vmlinux and $OUT/initrd.gz are there"; exit 0
fi
APT="$OUT/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
OPTS=(-oAPT::Architecture=ppc64el -oAPT::Architectures::=ppc64el -oDir::State::Lists="$PWD/$APT/lists"
      -oDir::Cache="$PWD/$APT/cache" -oDebug::NoLocking=1 -qq)
apt-get "${OPTS[@]}" update
KPKG=$(apt-cache "${OPTS[@]}" depends linux-image-powerpc64le | awk '/Depends: linux-image-/ {print $2; exit}')
(cd "$APT/debs" && apt-get "${OPTS[@]}" download "$KPKG" busybox-static 2>/dev/null)
rm -rf "$APT/x" && mkdir -p "$APT/x"
for deb in "$APT"/debs/*.deb; do dpkg-deb -x "$deb" "$APT/x"; done
cp "$APT"/x/boot/vmlinux-* "$OUT/vmlinux"
"$PY" -m spapr_irq.conform.guest "$APT/x/bin/busybox" "$OUT/initrd.gz"
rm -rf "$APT/x" "$APT/debs"
echo "conform-setup: $KPKG and busybox-static in $OUT/ ($(du -sh "$OUT/vmlinux" | cut -f1) kernel)"
