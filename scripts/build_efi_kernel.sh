#!/usr/bin/env bash
# Builds a small EFI-stub x86_64 kernel (Debian's linux-source-6.1, tinyconfig + EFI, mixed
# mode, PVH, Xen PV) under ~/.cache/entrycheck/build, out of the repository and out of CI.
#
# Usage: scripts/build_efi_kernel.sh [--no-xen]
# Prints the build directory on stdout; vmlinux, arch/x86/boot/compressed/vmlinux and
# arch/x86/boot/bzImage are in it. Env: ENTRYCHECK_CACHE (default ~/.cache/entrycheck),
# JOBS (default 2), NICE (default 10), RECONFIGURE=1 (redo the configuration).
set -euo pipefail

CACHE=${ENTRYCHECK_CACHE:-$HOME/.cache/entrycheck}
JOBS=${JOBS:-2}
NICE=${NICE:-10}
XEN=y
[ "${1:-}" = "--no-xen" ] && XEN=n
BUILD_ROOT=$CACHE/build
log() { echo "build_efi_kernel: $*" >&2; }

# 1. Packages: the source and the kernel build's own tools.
pkgs=(linux-source-6.1 bc bison flex libelf-dev libssl-dev make gcc binutils xz-utils
      cpio kmod python3)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "please install: ${missing[*]}"
        exit 2
    fi
    log "apt-get install ${missing[*]}"
    lock=(-o DPkg::Lock::Timeout=900)   # other apt-get runs may hold the lock
    apt-get "${lock[@]}" update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Unpack the source tarball once.
TARBALL=$(ls /usr/src/linux-source-6.1.tar.* | head -n1)
VERSION=$(dpkg-query -W -f='${Version}' linux-source-6.1)
SRC=$BUILD_ROOT/linux-source-6.1-$VERSION
if [ ! -f "$SRC/Makefile" ]; then
    log "unpacking $TARBALL into $BUILD_ROOT"
    mkdir -p "$BUILD_ROOT"
    tmp=$(mktemp -d "$BUILD_ROOT/unpack.XXXXXX")
    tar -C "$tmp" -xf "$TARBALL"
    mv "$tmp"/linux-source-6.1 "$SRC"
    rmdir "$tmp"
fi

# 3. Configure (once; RECONFIGURE=1 redoes it): tinyconfig, then the entry paths
#    entrycheck cares about.
cd "$SRC"
cfg=scripts/config
if [ ! -f .config ] || [ "${RECONFIGURE:-0}" = 1 ]; then
    make -s tinyconfig >/dev/null
    $cfg -e 64BIT -e EFI -e EFI_STUB -e EFI_HANDOVER_PROTOCOL -e EFI_MIXED -e RELOCATABLE \
         -e ACPI -e PRINTK -e TTY -e SERIAL_8250 -e SERIAL_8250_CONSOLE -e BLK_DEV_INITRD \
         -e HYPERVISOR_GUEST -e PARAVIRT -e PVH
    if [ "$XEN" = y ]; then
        $cfg -e XEN -e XEN_PV -e XEN_PVH
    fi
    make -s olddefconfig >/dev/null
fi
for opt in 64BIT EFI EFI_STUB EFI_MIXED RELOCATABLE PVH XEN XEN_PV EFI_HANDOVER_PROTOCOL; do
    log "CONFIG_$opt=$($cfg -s "$opt")"
done

# 4. Build.
start=$(date +%s)
log "nice -n $NICE make -j$JOBS bzImage (in $SRC)"
nice -n "$NICE" make -j"$JOBS" bzImage >"$BUILD_ROOT/build.log" 2>&1 || {
    tail -n 30 "$BUILD_ROOT/build.log" >&2
    exit 1
}
log "built in $(( $(date +%s) - start )) s; log: $BUILD_ROOT/build.log"
for f in vmlinux arch/x86/boot/compressed/vmlinux arch/x86/boot/bzImage; do
    log "$SRC/$f ($(stat -c %s "$f") bytes)"
done
echo "$SRC"
