# shellcheck shell=bash
# Sourced by build-libs and build-python, which run INSIDE the bullseye build root
# (build/portable/build starts them through in-root) and build, from Debian source packages,
# the libraries the binary bundles into /opt/nsr/<arch>/libs and CPython into
# /opt/nsr/<arch>/python (directories of the cache bound there).
#
# Environment:
#   NSR_ARCH     x86_64 (native) or arm64 (cross-compiled with aarch64-linux-gnu-gcc against
#                bullseye's libc6-dev-arm64-cross: glibc 2.31)
#   NSR_SOURCES  the directory holding one directory per source package (.dsc and files)
#   NSR_JOBS     make -j (default: the number of processors)
# Each library's shared objects are listed with their Debian source package and version in
# /opt/nsr/<arch>/libs/nsr-sources.tsv (python: /opt/nsr/<arch>/python/nsr-sources.tsv).
set -euo pipefail
stage="$(basename "$0")"
arch="${NSR_ARCH:?}"
sources="${NSR_SOURCES:?}"
jobs="${NSR_JOBS:-$(nproc)}"
here="$(dirname "$(realpath "$0")")"
libs="/opt/nsr/$arch/libs"
python="/opt/nsr/$arch/python"
work="/tmp/nsr-build"
say() { echo "$stage[$arch]: $*" >&2; }
die() { say "error: $*"; exit 1; }

case "$arch" in
  x86_64) host="" ; openssl_target=linux-x86_64 ;;
  arm64) host=aarch64-linux-gnu ; openssl_target=linux-aarch64 ;;
  *) die "unknown arch $arch" ;;
esac
if [[ -n $host ]]; then
  export CC="$host-gcc" CXX="$host-g++" AR="$host-ar" RANLIB="$host-ranlib" STRIP="$host-strip"
  configure_host=(--host="$host" --build=x86_64-linux-gnu)
else
  export CC=gcc
  configure_host=()
fi
# glibc 2.28 (RHEL 8's) at most, although the root's is 2.31: every C file is compiled with a
# header that binds the libm functions versioned anew in 2.29 to their older version
# (build/portable/glibc-compat); build-python configures CPython without what has no older
# version. scripts/check-glibc --max 2.28 checks the result.
case "$arch" in
  x86_64) glibc_libdir=/lib/x86_64-linux-gnu ;;
  arm64) glibc_libdir=/usr/aarch64-linux-gnu/lib ;;
esac
mkdir -p "$work"
glibc_compat="$work/glibc-compat.h"
"$here/glibc-compat" "$arch" "$glibc_libdir" > "$glibc_compat" || die "glibc-compat failed"
# -O2 as Debian builds; the file prefix map keeps build paths out of the objects.
export CFLAGS="-O2 -ffile-prefix-map=$work=. -include $glibc_compat"
# Both architectures: ELF segments aligned to 64 KiB, so that the libraries also load on kernels
# with 64 KiB pages (arm64 servers); scripts/check-elf-alignment checks it.
export LDFLAGS="-Wl,-z,max-page-size=0x10000 -Wl,-z,common-page-size=0x1000"

dsc_of() {  # the .dsc of a source package directory
  local found
  found="$(find "$sources" -maxdepth 2 -path "*/$1_*/*.dsc" | sort | tail -n 1)"
  [[ -n $found ]] || die "no source package $1 in $sources"
  echo "$found"
}
field() { awk -v f="$1:" '$1 == f { print $2; exit }' "$2"; }

unpack() {  # unpack a source package with Debian's patches applied (dpkg-source -x)
  local dsc="$1" dest="$2"
  rm -rf "$dest"
  dpkg-source --no-copy -x "$dsc" "$dest" > "$dest.log" 2>&1 \
    || { cat "$dest.log" >&2; die "dpkg-source -x $(basename "$dsc") failed"; }
}

