#!/usr/bin/env bash
# scripts/install-test-deps.sh
#
# Installs the Debian packages the guest integration tests need (QEMU, busybox-static, kmod,
# compressors, gcc for the static guest test program), then builds the test guests with
# tests/guest/build-guest.sh into .work/guest (repo-relative, git-ignored):
#   .work/guest/bookworm/{vmlinux,initramfs.cpio.gz}   Debian 12 kernel (6.1)  - required
#   .work/guest/trixie/{vmlinux,initramfs.cpio.gz}     Debian 13 kernel (6.12) - see below
#   .work/guest/sid/{vmlinux,initramfs.cpio.gz}        Debian sid kernel (7.x)
#   .work/guest/<suite>-dotnet/...                      the same guests plus the NativeAOT .NET agent
#                                                       (tests/guest/build-dotnet-guest.sh; needs dotnet, gcc)
#   .work/guest/{trixie,sid}-vsocksuite/                the same kernels plus the kernel's own vsock
#       test suite (vsock_test, vsock_perf) built from Debian's linux-source-<ver> package, and
#       virtio_net for its TCP control channel (tests/guest/build-vsock-suite.sh)
#
# As root: `apt-get update` + `apt-get install -y --no-install-recommends ...` (skipped when
# everything is already installed). Not root: prints the exact apt-get line to run and installs
# nothing; the guests are still built when the tools happen to be there already.
#
# Failures: bookworm is always a hard error. trixie: when its kernel could not be fetched
# (build-guest.sh exit 4: mirror unreachable, package gone) it is a hard error only in CI
# (CI=true) and a warning elsewhere; any other trixie build error is a hard error (a bug).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES=(
  qemu-system-x86 busybox-static cpio kmod gzip xz-utils zstd gcc libc6-dev linux-libc-dev
  binutils debian-archive-keyring ca-certificates tshark systemd make
)
APT_LINE="apt-get install -y --no-install-recommends ${PACKAGES[*]}"

log() { echo "[install-test-deps] $*"; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "all packages already installed: ${PACKAGES[*]}"
elif [[ $(id -u) != 0 ]]; then
  log "not root: not installing. Missing: ${missing[*]}. Run as root:"
  echo "apt-get update && $APT_LINE"
  exit 0
else
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  $APT_LINE
fi

OUT=$ROOT/.work/guest
rc=0
log "building the bookworm guest (Debian 12, Linux 6.1) into $OUT"
if ! bash "$ROOT/tests/guest/build-guest.sh" "$OUT" bookworm; then
  log "ERROR: the bookworm guest could not be built (see above)"
  exit 1
fi

# Newer guests: trixie (Linux 6.12, header and payload in one descriptor) and sid (Linux 7.x,
# payload spread over several descriptors). A kernel that could not be fetched is an error in CI
# only; any other build failure is a bug, so always an error.
build_newer() {
  local suite=$1 what=$2 trc
  log "building the $suite guest ($what) into $OUT"
  set +e
  bash "$ROOT/tests/guest/build-guest.sh" "$OUT" "$suite"
  trc=$?
  set -e
  case $trc in
    0) log "$suite guest ready" ;;
    4)
      if [[ ${CI:-} == true ]]; then
        log "ERROR: the $suite kernel could not be fetched from the Debian mirror, and this is CI (CI=true): failing"
        rc=1
      else
        log "WARNING: the $suite kernel could not be fetched from the Debian mirror; tests on $what will be skipped (not CI, so not an error)"
      fi
      ;;
    *)
      log "ERROR: the $suite kernel was fetched but the guest build failed (exit $trc): see above"
      rc=1
      ;;
  esac
}
build_newer trixie "Debian 13, Linux 6.12"
build_newer sid "Debian sid, Linux 7.x"

# The kernel's own vsock suite for the trixie and sid guests (KernelVsockSuiteTests). Same error
# rules: a source package that could not be fetched fails CI only; a build failure always fails.
build_suite() {
  local suite=$1 src
  [[ -s $OUT/$suite/vmlinux ]] || return 0
  log "building the vsock suite variant of the $suite guest into $OUT/$suite-vsocksuite"
  set +e
  bash "$ROOT/tests/guest/build-vsock-suite.sh" "$OUT" "$suite"
  src=$?
  set -e
  case $src in
    0) log "$suite-vsocksuite ready" ;;
    4)
      if [[ ${CI:-} == true ]]; then
        log "ERROR: the $suite kernel source package could not be fetched, and this is CI (CI=true): failing"
        rc=1
      else
        log "WARNING: the $suite kernel source package could not be fetched; the kernel suite tests will be skipped"
      fi
      ;;
    *)
      log "ERROR: the vsock suite for $suite failed to build (exit $src): see above"
      rc=1
      ;;
  esac
}
build_suite trixie
build_suite sid

# The .NET guest agent (tests/guest/vsock-agent, NativeAOT) added to every guest built above:
# .work/guest/<suite>-dotnet (RealGuest/DotNetGuestTests). A failure is always an error.
log "publishing the .NET guest agent (NativeAOT) and building the <suite>-dotnet guests"
if ! bash "$ROOT/tests/guest/build-dotnet-guest.sh" "$OUT"; then
  log "ERROR: the .NET guest agent could not be built or added to the guests (see above)"
  rc=1
fi

for s in bookworm trixie sid trixie-vsocksuite sid-vsocksuite bookworm-dotnet trixie-dotnet sid-dotnet; do
  [[ -s $OUT/$s/vmlinux && -s $OUT/$s/initramfs.cpio.gz ]] &&
    log "$s: $(cat "$OUT/$s/kernel-version") -> $OUT/$s/{vmlinux,initramfs.cpio.gz}"
done
exit $rc
