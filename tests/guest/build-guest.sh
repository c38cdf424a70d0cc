#!/usr/bin/env bash
# build-guest.sh OUTDIR [SUITE]
#
# Builds a tiny Linux guest for the vsock integration tests, only from Debian packages:
#   OUTDIR/<suite>/vmlinux             uncompressed kernel (boots via PVH: qemu -kernel vmlinux)
#   OUTDIR/<suite>/initramfs.cpio.gz   busybox-static + vsocktest + the virtio/vsock modules
#   OUTDIR/<suite>/kernel-version      e.g. 6.1.0-57-amd64
#   OUTDIR/<suite>/build-info.txt      packages, module load order, how it was built
# Work files go to OUTDIR/cache/<suite>/ (downloaded .debs, extracted tree, private apt state).
#
# SUITE: bookworm (default; Debian 12, Linux 6.1: what linux-image-amd64 points to on Debian 12),
#        trixie (Debian 13, Linux 6.12), and, untested by CI, sid / <suite>-backports (7.x,
#        where linux-image-* is a meta package over linux-binary-* and linux-modules-*).
# The host's own suite uses the host's apt configuration; any other suite uses a private
# sources list and private state/cache dirs under OUTDIR/cache/<suite>/apt, so the host's apt
# configuration and caches are never touched. GUEST_DEBIAN_MIRROR overrides the mirror
# (default http://deb.debian.org/debian).
#
# Exit codes: 0 ok, 1 build error, 2 usage, 3 host tools missing (the apt-get line to run is
# printed), 4 the kernel packages could not be fetched (apt-get update/apt-cache/download failed).
#
# Idempotent and cached: every step skips work whose output exists. GUEST_REFRESH=1 re-resolves
# and re-downloads the kernel (to pick up a newer Debian kernel). The initramfs is rebuilt only
# when its content (init, vsocktest, modules, busybox) changed.
#
# ---------------------------------------------------------------------------------------------
# GUEST KERNEL COMMAND LINE (read by /init from /proc/cmdline)
#   vsocktest.cmds=<base64>    the commands to run (base64 of the text below, optionally gzipped
#                              before base64: gzip data is detected by its magic)
#   vsocktest.timeout=<s>      per-command timeout, default 120 (busybox timeout -s KILL)
#   vsocktest.deadline=<s>     the whole guest powers off after this many seconds, default 600
#   vsocktest.loopback=1       also load vsock_loopback (CID 1) for in-guest self tests
#   vsocktest.dmesg=1          print the whole kernel log (KMSG lines) before GUEST-DONE;
#                              otherwise only warnings and worse are printed
#
# COMMAND TEXT: one command per line; empty lines and lines starting with '#' are ignored.
#   NAME COMMAND...            run `sh -c 'COMMAND...'` in the foreground, wait for it
#   &NAME COMMAND...           run it in the background; its RESULT comes when it ends; /init waits
#                              for all background commands before GUEST-DONE
#   NAME: [A-Za-z0-9_.-]+, unique. COMMAND is a busybox sh command line; `vsocktest` and
#   `wait-output NAME REGEX [SECONDS]` (waits until command NAME printed a line matching REGEX,
#   e.g. `wait-output srv ^LISTENING 10`) are on PATH.
#
# SERIAL CONSOLE MARKERS (each at the start of its own line)
#   GUEST-READY cid=<cid|none> kernel=<uname -r> vsock-device=<0|1> uptime=<s>
#                              modules loaded; cid from IOCTL_VM_SOCKETS_GET_LOCAL_CID (vsocktest
#                              cid); none when no virtio-vsock device/transport; vsock-device=1 when
#                              a virtio device with id 0x0013 is on the virtio bus
#   OUT <name> <line>          every output line of a command (stdout and stderr), as it comes
#   RESULT <name> <exit-code> <details>
#                              when a command ends; details = its last non-empty output line
#                              ('-' if none); for vsocktest that is its OK/FAIL summary line;
#                              exit code 137 = killed by vsocktest.timeout
#   GUEST-WARN <text>          something in /init went wrong (module load, bad cmds, ...)
#   KMSG <line>                kernel log lines (see vsocktest.dmesg)
#   GUEST-DONE                 all commands finished; then `poweroff -f`
#   GUEST-TIMEOUT              vsocktest.deadline expired; then `poweroff -f`
# ---------------------------------------------------------------------------------------------
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [bookworm|trixie|sid|<suite>-backports]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
OUTDIR=$1
SUITE=${2:-bookworm}
[[ $SUITE =~ ^[a-z][a-z0-9-]*$ ]] || usage
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIRROR=${GUEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "[build-guest $SUITE] $*" >&2; }
die() { echo "[build-guest $SUITE] ERROR: $*" >&2; exit 1; }
die_fetch() { echo "[build-guest $SUITE] ERROR (kernel not fetched): $*" >&2; exit 4; }

# ---- host tools ------------------------------------------------------------------------------
# tool -> Debian package
declare -A TOOLPKG=(
  [apt-get]=apt [dpkg]=dpkg [dpkg-deb]=dpkg [depmod]=kmod [modprobe]=kmod [cpio]=cpio
  [gzip]=gzip [xz]=xz-utils [zstd]=zstd [gcc]=gcc [readelf]=binutils [od]=coreutils
  [sha256sum]=coreutils
)
missing_pkgs=()
for t in "${!TOOLPKG[@]}"; do
  command -v "$t" >/dev/null 2>&1 || missing_pkgs+=("${TOOLPKG[$t]}")
done
BUSYBOX=${GUEST_BUSYBOX:-/bin/busybox}
if [[ ! -x $BUSYBOX ]]; then
  missing_pkgs+=(busybox-static)
elif command -v readelf >/dev/null 2>&1 && readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  # the dynamic 'busybox' package is installed instead of busybox-static (they conflict)
  missing_pkgs+=(busybox-static)
fi
[[ -e /usr/include/linux/vm_sockets.h ]] || missing_pkgs+=(linux-libc-dev)
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || missing_pkgs+=(libc6-dev)
[[ -e $KEYRING ]] || missing_pkgs+=(debian-archive-keyring)
if [[ ${#missing_pkgs[@]} -gt 0 ]]; then
  mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
  echo "[build-guest $SUITE] missing host tools; install them with:" >&2
  echo "apt-get install -y --no-install-recommends ${missing_pkgs[*]}" >&2
  echo "(or run scripts/install-test-deps.sh, which installs everything the guest tests need)" >&2
  exit 3
fi

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
OUT=$OUTDIR/$SUITE
CACHE=$OUTDIR/cache/$SUITE
mkdir -p "$OUT" "$CACHE"

# ---- apt: host config for the host's suite, a private one for any other ----------------------
HOST_CODENAME=$( (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true)
# as root, apt drops to the _apt user for downloads, which cannot write into our folders
SANDBOX_OPTS=()
[[ $(id -u) == 0 ]] && SANDBOX_OPTS=(-o "APT::Sandbox::User=root")
APT_OPTS=()
setup_private_apt() {
  local a=$CACHE/apt
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
  local list=$a/sources.list
  {
    echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main"
    case $SUITE in
      sid|unstable|experimental|*-backports) ;;
      *) echo "deb [signed-by=$KEYRING] ${MIRROR%/debian}/debian-security $SUITE-security main" ;;
    esac
  } >"$list.new"
  mv "$list.new" "$list"
  APT_OPTS=(
    -o "Dir::Etc::SourceList=$list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o "Dir::State::status=/dev/null"
    -o "Acquire::Languages=none"
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false"
    "${SANDBOX_OPTS[@]+"${SANDBOX_OPTS[@]}"}"
  )
  PRIVATE_APT=$a
}
PRIVATE_APT=
if [[ $SUITE == "$HOST_CODENAME" ]] && apt-cache show --no-all-versions linux-image-amd64 >/dev/null 2>&1; then
  log "using the host's apt configuration (host suite $HOST_CODENAME)"
  APT_OPTS=("${SANDBOX_OPTS[@]+"${SANDBOX_OPTS[@]}"}")
else
  setup_private_apt
fi

# ---- 1. resolve and download the kernel packages ---------------------------------------------
DEBS=$CACHE/debs
if [[ ! -e $DEBS/.done || ${GUEST_REFRESH:-0} == 1 ]]; then
  rm -rf "$DEBS" "$CACHE/root"
  mkdir -p "$DEBS"
  if [[ -n $PRIVATE_APT ]]; then
    log "apt-get update (private lists in $PRIVATE_APT)"
    apt-get "${APT_OPTS[@]}" -q update >&2 \
      || die_fetch "apt-get update for suite $SUITE failed (no network to the Debian mirror?)"
  fi
  # Follow Depends from the meta package linux-image-amd64: 6.x -> linux-image-<ver>-amd64;
  # 7.x -> linux-image-<ver> (meta) -> linux-binary-<ver> (bzImage) + linux-modules-<ver> +
  # linux-base-<ver> (modules.builtin, modules.order).
  queue=(linux-image-amd64)
  declare -A seen=()
  pkgs=()
  depth=0
  while [[ ${#queue[@]} -gt 0 && $depth -lt 4 ]]; do
    next=()
    for p in "${queue[@]}"; do
      [[ -n ${seen[$p]:-} ]] && continue
      seen[$p]=1
      info=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$p" 2>/dev/null) \
        || die_fetch "apt-cache cannot find $p for suite $SUITE (run apt-get update?)"
      ver=$(sed -n 's/^Version: //p' <<<"$info" | head -n1)
      log "package $p $ver"
      [[ $p == linux-image-amd64 ]] || pkgs+=("$p=$ver")
      deps=$(sed -n 's/^Depends: //p' <<<"$info" | head -n1)
      while IFS= read -r d; do
        d=${d%%|*}; d=${d%%(*}; d=${d// /}; d=${d%%:*}
        [[ $d =~ ^linux-(image|binary|modules|base)- ]] && next+=("$d")
      done < <(tr ',' '\n' <<<"$deps")
    done
    queue=("${next[@]+"${next[@]}"}")
    depth=$((depth + 1))
  done
  [[ ${#pkgs[@]} -gt 0 ]] || die "linux-image-amd64 of $SUITE depends on no linux-image/binary/modules package"
  log "apt-get download ${pkgs[*]}"
  (cd "$DEBS" && apt-get "${APT_OPTS[@]}" -q download "${pkgs[@]}" >&2) \
    || die_fetch "apt-get download ${pkgs[*]} failed"
  printf '%s\n' "${pkgs[@]}" >"$DEBS/packages.txt"
  touch "$DEBS/.done"
fi

# ---- 2. extract ------------------------------------------------------------------------------
ROOT=$CACHE/root
if [[ ! -e $ROOT/.done ]]; then
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  for deb in "$DEBS"/*.deb; do
    log "dpkg -x $(basename "$deb")"
    dpkg -x "$deb" "$ROOT"
  done
  touch "$ROOT/.done"
fi
# the bzImage: /boot/vmlinuz-<ver> (6.x), or /usr/lib/modules/<ver>/vmlinuz (7.x linux-binary-*)
shopt -s nullglob
images=("$ROOT"/boot/vmlinuz-* "$ROOT"/usr/lib/modules/*/vmlinuz "$ROOT"/lib/modules/*/vmlinuz)
shopt -u nullglob
[[ ${#images[@]} -eq 1 ]] || die "expected exactly one kernel image (boot/vmlinuz-* or lib/modules/*/vmlinuz) in the packages, found ${#images[@]}: ${images[*]-}"
BZIMAGE=${images[0]}
case $BZIMAGE in
  */boot/vmlinuz-*) KVER=${BZIMAGE##*/vmlinuz-} ;;
  *) KVER=$(basename "$(dirname "$BZIMAGE")") ;;
esac
if [[ -d $ROOT/usr/lib/modules/$KVER ]]; then MODBASE=$ROOT/usr   # merged /usr (6.12+)
elif [[ -d $ROOT/lib/modules/$KVER ]]; then MODBASE=$ROOT
else die "no lib/modules/$KVER in the packages"; fi
MODDIR=$MODBASE/lib/modules/$KVER
log "kernel $KVER"

# ---- 3. depmod and module order --------------------------------------------------------------
if [[ ! -e $MODDIR/modules.dep.bin ]]; then
  log "depmod -b $MODBASE $KVER"
  depmod -b "$MODBASE" "$KVER"
fi
# virtio_pci first (the PCI transport), then the vsock stack; modprobe prints
# "insmod PATH" for loadable modules and "builtin NAME" for built-in ones.
MODLIST=$CACHE/modules.list
{
  for m in virtio_pci vmw_vsock_virtio_transport vsock_loopback; do
    modprobe -d "$MODBASE" -S "$KVER" --show-depends "$m" \
      || die "modprobe --show-depends $m failed for $KVER"
  done
} | awk '!seen[$0]++' >"$MODLIST.new"
mv "$MODLIST.new" "$MODLIST"
grep -q vmw_vsock_virtio_transport "$MODLIST" || die "vmw_vsock_virtio_transport not found in $KVER"

# ---- 4. uncompressed vmlinux (PVH boot) --------------------------------------------------------
elf_ok() { # complete ELF64 file? (magic, and the section header table inside the file)
  local f=$1 size shoff shnum shentsize
  [[ -s $f && $(head -c4 "$f" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] || return 1
  size=$(stat -c %s "$f")
  shoff=$(od -An -t u8 -j 40 -N 8 "$f" | tr -d ' ')
  shentsize=$(od -An -t u2 -j 58 -N 2 "$f" | tr -d ' ')
  shnum=$(od -An -t u2 -j 60 -N 2 "$f" | tr -d ' ')
  ((shoff + shnum * shentsize <= size))
}
VMLINUX=$OUT/vmlinux
if [[ ! -s $VMLINUX || $(cat "$OUT/kernel-version" 2>/dev/null) != "$KVER" ]]; then
  rm -f "$VMLINUX"
  found=
  # the kernel tree's scripts/extract-vmlinux method: find each compression magic in the
  # bzImage, decompress from there, keep the first result that is a complete ELF file
  for spec in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
    tool=${spec%%:*}; magic=${spec#*:}
    command -v "$tool" >/dev/null || continue
    while IFS= read -r pos; do
      [[ -n $pos ]] || continue
      tail -c +$((pos + 1)) "$BZIMAGE" | "$tool" -dc >"$VMLINUX.tmp" 2>/dev/null || true
      if elf_ok "$VMLINUX.tmp"; then
        log "vmlinux: $tool payload at offset $pos of $(basename "$BZIMAGE") ($(stat -c %s "$VMLINUX.tmp") bytes)"
        found=$tool
        break
      fi
    done < <(LC_ALL=C grep -obUaP "$magic" "$BZIMAGE" | cut -d: -f1)
    [[ -n $found ]] && break
  done
  [[ -n $found ]] || { rm -f "$VMLINUX.tmp"; die "no XZ/ZSTD/GZIP payload that decompresses to ELF in $BZIMAGE"; }
  if ! readelf -n "$VMLINUX.tmp" 2>/dev/null | grep -q 'Xen'; then
    log "WARNING: $KVER vmlinux has no Xen/PVH ELF note; QEMU could not boot it via PVH. Using the bzImage instead (slower boot)."
    cp "$BZIMAGE" "$VMLINUX.tmp"
  fi
  mv "$VMLINUX.tmp" "$VMLINUX"
  echo "$KVER" >"$OUT/kernel-version"
fi

# ---- 5. the guest test program ----------------------------------------------------------------
VSOCKTEST=$CACHE/vsocktest
if [[ ! -x $VSOCKTEST || $HERE/vsocktest.c -nt $VSOCKTEST ]]; then
  log "gcc -static -O2 vsocktest.c"
  gcc -static -O2 -Wall -Wextra -o "$VSOCKTEST.tmp" "$HERE/vsocktest.c"
  mv "$VSOCKTEST.tmp" "$VSOCKTEST"
fi

# ---- 6. initramfs staging tree ----------------------------------------------------------------
STAGE=$CACHE/initramfs
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,etc,lib/modules}
cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$STAGE/bin/$applet"
done
cp "$VSOCKTEST" "$STAGE/bin/vsocktest"

# modules: decompressed to plain .ko (busybox insmod), load order in /etc/modules.load
: >"$STAGE/etc/modules.load"
: >"$STAGE/etc/modules.builtin"
while read -r kind path _; do
  case $kind in
    builtin) echo "$path" >>"$STAGE/etc/modules.builtin" ;;
    insmod)
      name=$(basename "$path"); name=${name%%.ko*}
      case $path in
        *.ko) cp "$path" "$STAGE/lib/modules/$name.ko" ;;
        *.ko.xz) xz -dc "$path" >"$STAGE/lib/modules/$name.ko" ;;
        *.ko.zst) zstd -qdc "$path" >"$STAGE/lib/modules/$name.ko" ;;
        *.ko.gz) gzip -dc "$path" >"$STAGE/lib/modules/$name.ko" ;;
        *) die "unknown module file type: $path" ;;
      esac
      # vsock_loopback is loaded only on request (vsocktest.loopback=1)
      [[ $name == vsock_loopback ]] || echo "$name" >>"$STAGE/etc/modules.load"
      ;;
    *) die "unexpected modprobe output: $kind $path" ;;
  esac
done <"$MODLIST"
echo "$KVER" >"$STAGE/etc/kernel-version"

cat >"$STAGE/bin/wait-output" <<'EOF'
#!/bin/sh
# wait-output NAME REGEX [SECONDS]: wait until guest command NAME printed a line matching REGEX
name=$1; re=$2; secs=${3:-30}
[ -n "$name" ] && [ -n "$re" ] || { echo "usage: wait-output NAME REGEX [SECONDS]"; exit 2; }
i=0
while [ "$i" -lt $((secs * 10)) ]; do
  grep -q -e "$re" "/tmp/out.$name" 2>/dev/null && exit 0
  usleep 100000
  i=$((i + 1))
done
echo "wait-output: timeout waiting for /$re/ from $name"
exit 3
EOF
chmod 755 "$STAGE/bin/wait-output"

cat >"$STAGE/init" <<'EOF'
#!/bin/sh
# /init of the vsock test guest; generated by tests/guest/build-guest.sh (see its header for
# the kernel command line parameters and the serial console markers).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
echo  # the firmware's last line ("Booting from ROM..") has no newline: start markers on a new line

param() { # param NAME: value of NAME=... on the kernel command line (no globbing)
  ( set -f
    for w in $(cat /proc/cmdline); do
      case "$w" in "$1="*) echo "${w#*=}"; exit 0 ;; esac
    done
    exit 1 )
}
finish() {
  if [ "$(param vsocktest.dmesg)" = 1 ]; then
    dmesg | sed 's/^/KMSG /'
  else
    dmesg -r | grep '^<[0-4]>' | sed 's/^/KMSG /'
  fi
  echo "GUEST-DONE"
  sync
  poweroff -f
  echo o >/proc/sysrq-trigger
  sleep 10
}

deadline=$(param vsocktest.deadline || echo 600)
( sleep "$deadline"; echo "GUEST-TIMEOUT after ${deadline}s"; poweroff -f; echo o >/proc/sysrq-trigger ) &

for m in $(cat /etc/modules.load); do
  insmod "/lib/modules/$m.ko" || echo "GUEST-WARN insmod $m failed"
done
if [ "$(param vsocktest.loopback)" = 1 ]; then
  if [ -e /lib/modules/vsock_loopback.ko ]; then
    insmod /lib/modules/vsock_loopback.ko || echo "GUEST-WARN insmod vsock_loopback failed"
  else
    echo "GUEST-WARN vsock_loopback not in this initramfs"
  fi
fi

# image variants (build-vsock-suite.sh) add their own setup here, e.g. networking
[ -x /etc/rc.local ] && /etc/rc.local
dev=0
for d in /sys/bus/virtio/devices/*; do
  [ "$(cat "$d/device" 2>/dev/null)" = 0x0013 ] && dev=1
done
cid=$(vsocktest cid 2>&1 | sed -n 's/^OK cid cid=\([0-9]*\).*/\1/p')
echo "GUEST-READY cid=${cid:-none} kernel=$(uname -r) vsock-device=$dev uptime=$(cut -d' ' -f1 /proc/uptime)"

timeout_s=$(param vsocktest.timeout || echo 120)
run_cmd() { # run_cmd NAME COMMAND
  name=$1
  rm -f "/tmp/out.$name" "/tmp/rc.$name"
  : >"/tmp/out.$name"
  { timeout -s KILL "$timeout_s" sh -c "$2"; echo $? >"/tmp/rc.$name"; } 2>&1 |
    while IFS= read -r line || [ -n "$line" ]; do
      echo "OUT $name $line"
      echo "$line" >>"/tmp/out.$name"
    done
  rc=$(cat "/tmp/rc.$name" 2>/dev/null || echo 255)
  last=$(sed -n '/[^[:space:]]/h; ${x;p}' "/tmp/out.$name")
  echo "RESULT $name $rc ${last:--}"
}

enc=$(param vsocktest.cmds || true)
if [ -n "$enc" ]; then
  if echo "$enc" | base64 -d >/tmp/cmds.raw 2>/dev/null; then
    if [ "$(head -c2 /tmp/cmds.raw | od -An -tx1 | tr -d ' \n')" = 1f8b ]; then
      gunzip -c /tmp/cmds.raw >/tmp/cmds || echo "GUEST-WARN vsocktest.cmds: bad gzip data"
    else
      cp /tmp/cmds.raw /tmp/cmds
    fi
  else
    echo "GUEST-WARN vsocktest.cmds: bad base64"
  fi
  bg=""
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    name=${line%%[ 	]*}
    cmd=${line#"$name"}
    amp=""
    case "$name" in '&'*) amp=1; name=${name#&} ;; esac
    case "$name" in
      ''|*[!A-Za-z0-9_.-]*) echo "GUEST-WARN bad command name in: $line"; continue ;;
    esac
    if [ -n "$amp" ]; then
      run_cmd "$name" "$cmd" &
      bg="$bg $!"
    else
      run_cmd "$name" "$cmd"
    fi
  done </tmp/cmds
  for p in $bg; do wait "$p"; done
fi
finish
EOF
chmod 755 "$STAGE/init"
# /dev/console must exist for the kernel to give /init a console (needs root for mknod);
# without it /init reopens /dev/console from devtmpfs itself.
if [[ $(id -u) == 0 ]]; then
  mknod -m 600 "$STAGE/dev/console" c 5 1
fi

# ---- 7. pack (only when the content changed) -------------------------------------------------
INITRAMFS=$OUT/initramfs.cpio.gz
hash=$(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %a %F %t:%T' | sha256sum | cut -c1-16)
hash=$hash-$(cd "$STAGE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [[ -s $INITRAMFS && $(cat "$OUT/initramfs.hash" 2>/dev/null) == "$hash" ]]; then
  log "initramfs up to date ($INITRAMFS)"
else
  (cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$INITRAMFS.tmp"
  mv "$INITRAMFS.tmp" "$INITRAMFS"
  echo "$hash" >"$OUT/initramfs.hash"
  log "initramfs $(stat -c %s "$INITRAMFS") bytes"
fi

{
  echo "suite: $SUITE"
  echo "kernel: $KVER"
  echo "packages: $(tr '\n' ' ' <"$DEBS/packages.txt")"
  echo "vmlinux: $(stat -c %s "$VMLINUX") bytes"
  echo "initramfs: $(stat -c %s "$INITRAMFS") bytes"
  echo "modules loaded (in order): $(tr '\n' ' ' <"$STAGE/etc/modules.load")"
  echo "built in: $(tr '\n' ' ' <"$STAGE/etc/modules.builtin")"
} >"$OUT/build-info.txt"
cat "$OUT/build-info.txt" >&2
echo "$OUT"
