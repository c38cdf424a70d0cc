#!/usr/bin/env bash
# build-dotnet-guest.sh OUTDIR
#
# Adds the .NET guest agent (tests/guest/vsock-agent: an ASP.NET Core minimal API + gRPC service on
# vsock, and vsock clients, published with NativeAOT) to the test guests that build-guest.sh made:
#   OUTDIR/dotnet/vsock-agent            the NativeAOT binary (linux-x64)
#   OUTDIR/dotnet/overlay.cpio.gz        /bin/vsock-agent + the host libraries it loads (ldd: libc, libm,
#                                        the loader; dlopen'ed: libssl.so.3, libcrypto.so.3 for SHA-256)
#   OUTDIR/<suite>-dotnet/{vmlinux,initramfs.cpio.gz,kernel-version}
#                                        for every OUTDIR/<suite> present: the same kernel, and the
#                                        suite's initramfs with the overlay appended (the kernel unpacks
#                                        concatenated archives in order), so /init and its markers are as
#                                        described in build-guest.sh
# Needs: dotnet (the repository's SDK), gcc (NativeAOT links with it), cpio, gzip, the Debian package
# libssl3 (the libraries are copied from the host). Idempotent: the agent is republished only when its
# sources or the Vsock.Net sources changed; the images are rebuilt when an input is newer.
# Exit codes: 0 ok, 1 build error, 2 usage, 3 host tools missing.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
DOTNET_OUT=$OUTDIR/dotnet
log() { echo "[build-dotnet-guest] $*" >&2; }
die() { echo "[build-dotnet-guest] ERROR: $*" >&2; exit 1; }

for t in dotnet gcc cpio gzip ldd sha256sum; do
  command -v "$t" >/dev/null 2>&1 || { log "missing host tool: $t (scripts/install-test-deps.sh installs what is needed)"; exit 3; }
done
LIBDIR=/usr/lib/x86_64-linux-gnu
for l in libssl.so.3 libcrypto.so.3; do
  [[ -e $LIBDIR/$l ]] || { log "missing $LIBDIR/$l: apt-get install -y libssl3"; exit 3; }
done

# ---- 1. publish the agent (NativeAOT) when its inputs changed ---------------------------------
mkdir -p "$DOTNET_OUT"
stamp=$( (cd "$ROOT" && find tests/guest/vsock-agent src/Vsock.Net src/Vsock.Net.AspNetCore Directory.Build.props Directory.Packages.props \
  -type f \( -name '*.cs' -o -name '*.csproj' -o -name '*.proto' -o -name '*.props' \) -not -path '*/obj/*' -not -path '*/bin/*' \
  | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1)
AGENT=$DOTNET_OUT/vsock-agent
if [[ ! -x $AGENT || $(cat "$DOTNET_OUT/agent.stamp" 2>/dev/null) != "$stamp" ]]; then
  log "dotnet publish tests/guest/vsock-agent (NativeAOT, linux-x64)"
  rm -rf "$DOTNET_OUT/publish"
  dotnet publish "$ROOT/tests/guest/vsock-agent/vsock-agent.csproj" -c Release -r linux-x64 -o "$DOTNET_OUT/publish" -nologo >&2 \
    || die "dotnet publish of the guest agent failed"
  cp "$DOTNET_OUT/publish/vsock-agent" "$AGENT.tmp"
  mv "$AGENT.tmp" "$AGENT"
  echo "$stamp" >"$DOTNET_OUT/agent.stamp"
fi

# ---- 2. the overlay: the agent and the libraries it needs, at their host paths -----------------
STAGE=$DOTNET_OUT/overlay
rm -rf "$STAGE"
mkdir -p "$STAGE/bin"
cp "$AGENT" "$STAGE/bin/vsock-agent"
copy_lib() { # copy_lib PATH: the file (symlinks resolved) at PATH in the overlay
  local p=$1
  mkdir -p "$STAGE$(dirname "$p")"
  cp -L "$p" "$STAGE$p"
}
libs() { # libs FILE: the absolute paths ldd names for FILE
  ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'
}
declare -A seen=()
for f in "$AGENT" "$LIBDIR/libssl.so.3" "$LIBDIR/libcrypto.so.3"; do
  [[ $f == "$AGENT" ]] || { copy_lib "$f"; seen[$f]=1; }
  while IFS= read -r l; do
    [[ -n $l && -z ${seen[$l]:-} ]] || continue
    seen[$l]=1
    copy_lib "$l"
  done < <(libs "$f")
done
# the loader also at /lib64 (the path in the ELF interpreter field) whatever ldd called it
[[ -e $STAGE/lib64/ld-linux-x86-64.so.2 ]] || copy_lib /lib64/ld-linux-x86-64.so.2
OVERLAY=$DOTNET_OUT/overlay.cpio.gz
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) >"$OVERLAY.tmp"
mv "$OVERLAY.tmp" "$OVERLAY"
log "overlay: $(cd "$STAGE" && find . -type f | LC_ALL=C sort | tr '\n' ' ')($(stat -c %s "$OVERLAY") bytes)"

# ---- 3. <suite>-dotnet images --------------------------------------------------------------------
built=0
for dir in "$OUTDIR"/*/; do
  suite=$(basename "$dir")
  [[ $suite == dotnet || $suite == cache || $suite == *-dotnet ]] && continue
  [[ -s $dir/vmlinux && -s $dir/initramfs.cpio.gz ]] || continue
  out=$OUTDIR/$suite-dotnet
  mkdir -p "$out"
  ln -f "$dir/vmlinux" "$out/vmlinux" 2>/dev/null || cp "$dir/vmlinux" "$out/vmlinux"
  cat "$dir/initramfs.cpio.gz" "$OVERLAY" >"$out/initramfs.cpio.gz.tmp"
  mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
  cp "$dir/kernel-version" "$out/kernel-version" 2>/dev/null || true
  log "$suite-dotnet: $(cat "$out/kernel-version" 2>/dev/null || echo '?') + vsock-agent -> $out"
  built=$((built + 1))
done
[[ $built -gt 0 ]] || die "no guest under $OUTDIR to add the agent to (run build-guest.sh first)"
