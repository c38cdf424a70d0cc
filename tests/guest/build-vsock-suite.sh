#!/usr/bin/env bash
# build-vsock-suite.sh OUTDIR SUITE
#
# Builds the "vsocksuite" variant of a guest built by build-guest.sh: the same kernel and
# initramfs plus the Linux kernel's own vsock test suite (tools/testing/vsock: vsock_test,
# vsock_perf) and virtio_net for the suite's TCP control channel:
#   OUTDIR/<suite>-vsocksuite/vmlinux            symlink to ../<suite>/vmlinux
#   OUTDIR/<suite>-vsocksuite/initramfs.cpio.gz  the base initramfs + suite + virtio_net
#   OUTDIR/<suite>-vsocksuite/kernel-version     same as the base guest
#   OUTDIR/<suite>-vsocksuite/vsock_test.list    `vsock_test --list` (ID<TAB>name)
#   OUTDIR/<suite>-vsocksuite/build-info.txt     source package, options the suite supports
# The suite's sources come from Debian's linux-source-<major.minor> package of the same suite
# (the version matching the guest kernel), fetched with the private apt state build-guest.sh set up
# in OUTDIR/cache/<suite>/apt. Only the uapi headers (`make headers`) and tools/testing/vsock are
# built (gcc -static). Work files: OUTDIR/cache/<suite>/suite/.
# Run build-guest.sh OUTDIR SUITE first (it stages OUTDIR/cache/<suite>/initramfs).
#
# Exit codes: 0 ok, 1 build error, 2 usage, 3 host tools missing, 4 the source package could not
# be fetched.
#
# ---------------------------------------------------------------------------------------------
# WHAT THE VARIANT ADDS TO THE GUEST (see build-guest.sh for /init and its markers)
#   /etc/rc.local      run by /init before GUEST-READY: lo up, eth0 = 10.0.2.15/24 when present
#                      (QEMU user networking: the host's loopback is 10.0.2.2)
#   vsock_test, vsock_perf   the kernel's suite
#   gate KEY           asks the host test (TCP 10.0.2.2:<vsocktest.gate>) to say when the other
#                      guest is ready: sends "KEY\n", succeeds when the reply is "go"
#   vsock-suite server|client REPS TIMEOUT PEER_CID CONTROL_PORT ID...
#                      runs each suite test ID alone (--pick where supported, else --skip of all
#                      others), REPS times over, each under `timeout -s KILL TIMEOUT`. Prints
#                      "BEGIN <rep> <id>" before and "END <rep> <id> <exit> <centiseconds>" after
#                      each; the client first runs `gate "suite <rep> <id>"` and connects its
#                      control channel to 10.0.2.2:CONTROL_PORT; the server listens on
#                      CONTROL_PORT in the guest.
#   perf-send CID PORT BYTES
#                      vsock_perf --sender, retrying only while connect() is refused (the
#                      receiver prints nothing before it listens), at most 30 s
# ---------------------------------------------------------------------------------------------
set -euo pipefail

usage() { echo "usage: $0 OUTDIR SUITE" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
OUTDIR=$(cd "$1" && pwd)
SUITE=$2
[[ $SUITE =~ ^[a-z][a-z0-9-]*$ ]] || usage
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "[build-vsock-suite $SUITE] $*" >&2; }
die() { echo "[build-vsock-suite $SUITE] ERROR: $*" >&2; exit 1; }
die_fetch() { echo "[build-vsock-suite $SUITE] ERROR (source not fetched): $*" >&2; exit 4; }

for t in make gcc xz tar dpkg-deb modprobe cpio gzip; do
  command -v "$t" >/dev/null 2>&1 || {
    echo "[build-vsock-suite $SUITE] missing host tool $t; run scripts/install-test-deps.sh as root" >&2
    exit 3
  }
done

BASE=$OUTDIR/$SUITE
CACHE=$OUTDIR/cache/$SUITE
WORK=$CACHE/suite
OUT=$OUTDIR/$SUITE-vsocksuite
[[ -s $BASE/vmlinux && -s $BASE/kernel-version && -d $CACHE/initramfs && -s $CACHE/modules.list ]] \
  || die "the $SUITE guest is not built: run tests/guest/build-guest.sh $OUTDIR $SUITE first"
KVER=$(cat "$BASE/kernel-version")
# 6.12.118+deb13-amd64 -> 6.12 ; 7.2.13+deb14-amd64 -> 7.2
MM=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$KVER")
UPSTREAM=$(sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/' <<<"$KVER")
PKG=linux-source-$MM
mkdir -p "$WORK" "$OUT"

# ---- 1. the source package (private apt state of build-guest.sh) ------------------------------
APT=$CACHE/apt
APT_OPTS=()
if [[ -s $APT/sources.list ]]; then
  APT_OPTS=(
    -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Dir::State::status=/dev/null"
    -o "Acquire::Languages=none"
  )
else
  log "no private apt state in $APT: the guest is the host's suite, using the host's apt configuration"
fi
[[ $(id -u) == 0 ]] && APT_OPTS+=(-o "APT::Sandbox::User=root")
DEBS=$WORK/debs
if [[ ! -e $DEBS/.done ]]; then
  rm -rf "$DEBS" "$WORK/src"
  mkdir -p "$DEBS"
  info=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$PKG" 2>/dev/null) || {
    log "apt-get update${APT_OPTS[0]:+ (private lists in $APT)}"
    apt-get "${APT_OPTS[@]}" -q update >&2 || die_fetch "apt-get update failed"
    info=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$PKG" 2>/dev/null) \
      || die_fetch "apt-cache cannot find $PKG for suite $SUITE"
  }
  ver=$(sed -n 's/^Version: //p' <<<"$info" | head -n1)
  # the source must be the guest kernel's own version (6.12.118-1 for 6.12.118+deb13)
  [[ $ver == "$UPSTREAM"-* ]] \
    || log "WARNING: $PKG is $ver but the guest kernel is $KVER (GUEST_REFRESH=1 build-guest.sh picks up the newer kernel)"
  log "apt-get download $PKG=$ver"
  (cd "$DEBS" && apt-get "${APT_OPTS[@]}" -q download "$PKG=$ver" >&2) || die_fetch "apt-get download $PKG=$ver failed"
  echo "$PKG=$ver" >"$DEBS/package.txt"
  touch "$DEBS/.done"
fi

# ---- 2. extract what the suite needs (uapi headers, their generators, tools/) ----------------
SRC=$WORK/src/linux-source-$MM
if [[ ! -e $WORK/src/.done ]]; then
  rm -rf "$WORK/src"
  mkdir -p "$WORK/src"
  log "extracting tools/testing/vsock and the uapi header sources from $PKG"
  dpkg-deb --fsys-tarfile "$DEBS"/*.deb | tar -xO "./usr/src/linux-source-$MM.tar.xz" | xz -dc |
    tar -x -C "$WORK/src" --wildcards \
      "linux-source-$MM/Makefile" "linux-source-$MM/Kbuild" "linux-source-$MM/Kconfig" \
      "linux-source-$MM/scripts" "linux-source-$MM/usr" "linux-source-$MM/include/uapi" \
      "linux-source-$MM/include/asm-generic" "linux-source-$MM/arch/x86/Makefile*" "linux-source-$MM/arch/x86/tools" \
      "linux-source-$MM/arch/x86/include/uapi" "linux-source-$MM/arch/x86/include/asm/Kbuild" \
      "linux-source-$MM/arch/x86/entry/syscalls" "linux-source-$MM/tools/include" \
      "linux-source-$MM/tools/scripts" "linux-source-$MM/tools/build" "linux-source-$MM/tools/testing/vsock"
  [[ -d $SRC/tools/testing/vsock ]] || die "no tools/testing/vsock in $PKG"
  touch "$WORK/src/.done"
fi

# ---- 3. uapi headers (usr/include, what the suite's Makefile includes) and the suite --------
if [[ ! -e $SRC/usr/include/linux/vm_sockets.h ]]; then
  log "make headers"
  make -s -C "$SRC" ARCH=x86 headers >&2 || die "make headers failed"
fi
VS=$SRC/tools/testing/vsock
if [[ ! -x $VS/vsock_test || ! -x $VS/vsock_perf ]]; then
  log "make vsock_test vsock_perf (static)"
  # getaddrinfo is only given numeric addresses, so static glibc needs no NSS module
  make -s -C "$VS" CC="gcc -static" vsock_test vsock_perf 2>&1 | grep -v "getaddrinfo' in statically linked" >&2 || true
  [[ -x $VS/vsock_test && -x $VS/vsock_perf ]] || die "the suite did not build"
fi
# --list only prints the test table (no socket is opened) and exits 1
"$VS/vsock_test" --list >"$OUT/vsock_test.list.new" || true
grep -q $'^0\t' "$OUT/vsock_test.list.new" || die "vsock_test --list printed no tests"
mv "$OUT/vsock_test.list.new" "$OUT/vsock_test.list"
grep -q -- '"pick"' "$VS/vsock_test.c" && PICK=1 || PICK=0

# ---- 4. initramfs: the base staging tree + suite + virtio_net ---------------------------------
STAGE=$WORK/initramfs
rm -rf "$STAGE"
cp -a "$CACHE/initramfs" "$STAGE"
cp "$VS/vsock_test" "$VS/vsock_perf" "$STAGE/bin/"
MODBASE=$CACHE/root
[[ -d $MODBASE/usr/lib/modules/$KVER ]] && MODBASE=$MODBASE/usr
modprobe -d "$MODBASE" -S "$KVER" --show-depends virtio_net | while read -r kind path _; do
  case $kind in
    builtin) ;;
    insmod)
      name=$(basename "$path"); name=${name%%.ko*}
      case $path in
        *.ko) cp "$path" "$STAGE/lib/modules/$name.ko" ;;
        *.ko.xz) xz -dc "$path" >"$STAGE/lib/modules/$name.ko" ;;
        *.ko.zst) zstd -qdc "$path" >"$STAGE/lib/modules/$name.ko" ;;
        *.ko.gz) gzip -dc "$path" >"$STAGE/lib/modules/$name.ko" ;;
        *) die "unknown module file type: $path" ;;
      esac
      grep -qx "$name" "$STAGE/etc/modules.load" || echo "$name" >>"$STAGE/etc/modules.load"
      ;;
  esac
done
echo "$PICK" >"$STAGE/etc/vsock_test.pick"
"$VS/vsock_test" --list 2>/dev/null | awk -F'\t' 'NR > 1 { print $1 }' >"$STAGE/etc/vsock_test.ids" || true

cat >"$STAGE/etc/rc.local" <<'EOF'
#!/bin/sh
# network for the vsock suite's TCP control channel (QEMU user networking)
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up || echo "GUEST-WARN eth0 setup failed"
fi
EOF
cat >"$STAGE/bin/gate" <<'EOF'
#!/bin/sh
# gate KEY: ask the host test when to go (see build-vsock-suite.sh)
port=$(for w in $(cat /proc/cmdline); do case "$w" in vsocktest.gate=*) echo "${w#*=}" ;; esac; done)
[ -n "$port" ] || { echo "gate: no vsocktest.gate= on the kernel command line"; exit 2; }
reply=$(echo "$*" | nc 10.0.2.2 "$port")
[ "$reply" = go ] && exit 0
echo "gate: host said '${reply}' to '$*'"
exit 3
EOF
cat >"$STAGE/bin/vsock-suite" <<'EOF'
#!/bin/sh
# vsock-suite server|client REPS TIMEOUT PEER_CID CONTROL_PORT ID... (see build-vsock-suite.sh)
mode=$1; reps=$2; limit=$3; peer=$4; cport=$5
shift 5
ids=$*
cs() { tr -d . </proc/uptime | cut -d' ' -f1; }
r=1
while [ "$r" -le "$reps" ]; do
  for id in $ids; do
    sel=""
    if [ "$(cat /etc/vsock_test.pick)" = 1 ]; then
      sel="--pick=$id"
    else
      for o in $(cat /etc/vsock_test.ids); do [ "$o" = "$id" ] || sel="$sel --skip=$o"; done
    fi
    if [ "$mode" = client ]; then
      gate "suite $r $id" || { echo "END $r $id 254 0"; continue; }
      ctl="--control-host=10.0.2.2 --control-port=$cport"
    else
      ctl="--control-port=$cport"
    fi
    echo "BEGIN $r $id"
    t0=$(cs)
    timeout -s KILL "$limit" vsock_test --mode="$mode" $ctl --peer-cid="$peer" $sel 2>&1
    rc=$?
    echo "END $r $id $rc $(( $(cs) - t0 ))"
  done
  r=$((r + 1))
done
EOF
cat >"$STAGE/bin/perf-send" <<'EOF'
#!/bin/sh
# perf-send CID PORT BYTES: vsock_perf --sender, retried only while the connect is refused
i=0
while :; do
  out=$(vsock_perf --sender "$1" --port "$2" --bytes "$3" 2>&1); rc=$?
  case "$out" in
    *"connect: Connection reset"*|*"connect: Connection refused"*)
      i=$((i + 1))
      [ "$i" -lt 150 ] || { echo "$out"; echo "perf-send: connect refused for 30 s"; exit 1; }
      usleep 200000 ;;
    *) echo "$out"; exit "$rc" ;;
  esac
done
EOF
chmod 755 "$STAGE/etc/rc.local" "$STAGE/bin/gate" "$STAGE/bin/vsock-suite" "$STAGE/bin/perf-send"

INITRAMFS=$OUT/initramfs.cpio.gz
hash=$(cd "$STAGE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [[ -s $INITRAMFS && $(cat "$OUT/initramfs.hash" 2>/dev/null) == "$hash" ]]; then
  log "initramfs up to date ($INITRAMFS)"
else
  (cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$INITRAMFS.tmp"
  mv "$INITRAMFS.tmp" "$INITRAMFS"
  echo "$hash" >"$OUT/initramfs.hash"
  log "initramfs $(stat -c %s "$INITRAMFS") bytes"
fi
ln -sfn "../$SUITE/vmlinux" "$OUT/vmlinux"
cp "$BASE/kernel-version" "$OUT/kernel-version"
{
  echo "suite: $SUITE-vsocksuite"
  echo "kernel: $KVER"
  echo "source: $(cat "$DEBS/package.txt")"
  echo "tests: $(($(wc -l <"$OUT/vsock_test.list") - 1)) (vsock_test --pick supported: $PICK)"
  echo "modules loaded (in order): $(tr '\n' ' ' <"$STAGE/etc/modules.load")"
} >"$OUT/build-info.txt"
cat "$OUT/build-info.txt" >&2
echo "$OUT"
