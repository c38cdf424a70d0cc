#!/usr/bin/env bash
# scripts/demo.sh [bookworm|trixie|sid]
#
# See the vhost-user-vsock daemon carry real guest traffic, in well under a minute:
#   1. builds the daemon (Release) and the demo's host peer (scripts/demo-peer.cs),
#   2. starts the daemon with a vhost-user socket and a hybrid-vsock Unix socket in a temp folder,
#   3. boots a small Debian guest (QEMU, TCG, 1 vCPU) whose vhost-user-vsock-pci device is the daemon,
#   4. the guest (tests/guest/vsocktest) talks to the host peer over AF_VSOCK:
#        - an echo: guest connects to host port 5000, the peer echoes 64 KiB back,
#        - 64 MiB guest -> host (guest port 5001 -> <uds>_5001), with MiB/s and CRC-32 on both ends,
#        - 64 MiB host -> guest (peer CONNECTs to guest port 5002 via <uds>), MiB/s and CRC-32,
#   5. cleans everything up (QEMU, the peer, the daemon, the temp folder).
#
# The guest comes from .work/guest/<suite> (built by scripts/install-test-deps.sh, which this
# script runs when the guest or QEMU is missing; as non-root it prints the apt-get line instead).
# bookworm = Debian 12, Linux 6.1 (default); trixie = Debian 13, Linux 6.12; sid = Linux 7.x.
# Environment: DEMO_BYTES (default 67108864), DEMO_ACCEL (default tcg; kvm if you have it),
# DEMO_LOG_LEVEL (daemon --log-level, default information), DEMO_RAW=1 (the guest skips its pattern
# check and CRC-32, vsocktest -N: raw throughput, the figure to compare with other backends).
# DEMO_RUNS=N boots the guest N times against the same running daemon and ends with the median
# MiB/s of each direction (how docs/real-guest.md's table was made).
# Exit code 0 when every step passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE=${1:-bookworm}
BYTES=${DEMO_BYTES:-67108864}
ACCEL=${DEMO_ACCEL:-tcg}
GUEST=$ROOT/.work/guest/$SUITE
OUT=$ROOT/.work/demo

if [[ -t 1 ]]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
say() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
die() { echo "demo: $*" >&2; exit 1; }
START=$(date +%s.%N)
elapsed() { awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }'; }

# ---- 1. guest image and QEMU ---------------------------------------------------------------
if [[ ! -s $GUEST/vmlinux || ! -s $GUEST/initramfs.cpio.gz ]] || ! command -v qemu-system-x86_64 >/dev/null; then
  say "guest image or QEMU missing: preparing them"
  case $SUITE in
    bookworm|trixie) bash "$ROOT/scripts/install-test-deps.sh" ;;
    *) bash "$ROOT/tests/guest/build-guest.sh" "$ROOT/.work/guest" "$SUITE" ;;
  esac
  [[ -s $GUEST/vmlinux && -s $GUEST/initramfs.cpio.gz ]] || die "no $SUITE guest in $GUEST (see above)"
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (Debian package qemu-system-x86)"
fi

# ---- 2. build ------------------------------------------------------------------------------
say "building the daemon (Release) and the demo's host peer"
dotnet build "$ROOT/src/vhost-user-vsock" -c Release -o "$OUT/daemon" -nologo -v quiet -clp:NoSummary >/dev/null \
  || { dotnet build "$ROOT/src/vhost-user-vsock" -c Release -o "$OUT/daemon" -nologo -v quiet; die "daemon build failed"; }
dotnet build "$ROOT/scripts/demo-peer.cs" -c Release -o "$OUT/peer" -nologo -v quiet -clp:NoSummary >/dev/null \
  || { dotnet build "$ROOT/scripts/demo-peer.cs" -c Release -o "$OUT/peer" -nologo -v quiet; die "demo peer build failed"; }
echo "built in $(elapsed): $OUT/daemon/vhost-user-vsock.dll"

# ---- 3. the daemon -------------------------------------------------------------------------
T=$(mktemp -d /tmp/vsock-demo.XXXXXX)
DAEMON_PID= PEER_PID= QEMU_PID=
cleanup() {
  local rc=$?
  for pid in $QEMU_PID $PEER_PID; do kill "$pid" 2>/dev/null || true; done
  if [[ -n $DAEMON_PID ]]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true   # graceful stop: sockets removed
    for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT INT TERM

VHOST_SOCK=$T/vhost-user.sock
UDS=$T/vsock.sock
say "starting the daemon"
echo "vhost-user-vsock --guest-cid 3 --socket $VHOST_SOCK --uds-path $UDS"
dotnet "$OUT/daemon/vhost-user-vsock.dll" --guest-cid 3 --socket "$VHOST_SOCK" --uds-path "$UDS" \
  --log-level "${DEMO_LOG_LEVEL:-information}" 2>"$T/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 150); do
  [[ -S $VHOST_SOCK && -S $UDS ]] && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$T/daemon.log"; die "the daemon exited"; }
  sleep 0.1
done
[[ -S $VHOST_SOCK && -S $UDS ]] || { cat "$T/daemon.log"; die "the daemon's sockets did not appear"; }
sed 's/^/  daemon: /' "$T/daemon.log"

# ---- 4. the host peer and the guest (DEMO_RUNS times) -------------------------------------
RUNS=${DEMO_RUNS:-1}
RAW=; [[ ${DEMO_RAW:-0} == 1 ]] && RAW="-N "
# the guest's /init runs these (tests/guest/build-guest.sh: NAME COMMAND per line, base64 on the kernel command line)
CMDS=$(printf '%s\n' \
  "echo vsocktest echo-client 2 5000 65536" \
  "g2h vsocktest ${RAW}-t 20 send 2 5001 $BYTES" \
  "h2g vsocktest ${RAW}-a 30 -t 20 recv-server 5002 $BYTES" | base64 -w0)
QEMU=(qemu-system-x86_64 -accel "$ACCEL" -cpu qemu64 -smp 1 -m 256M
  -object memory-backend-memfd,id=mem,size=256M,share=on -machine q35,memory-backend=mem
  -nodefaults -nographic -no-reboot -serial "file:$T/serial.log" -monitor none
  -kernel "$GUEST/vmlinux" -initrd "$GUEST/initramfs.cpio.gz"
  -append "console=ttyS0 panic=-1 quiet vsocktest.timeout=60 vsocktest.deadline=70 vsocktest.cmds=$CMDS"
  -chardev "socket,id=vsock0,path=$VHOST_SOCK" -device vhost-user-vsock-pci,chardev=vsock0)
: >"$T/throughput"
for run in $(seq "$RUNS"); do
  : >"$T/serial.log"
  dotnet "$OUT/peer/demo-peer.dll" --uds "$UDS" --serial "$T/serial.log" --bytes "$BYTES" --timeout 75 >"$T/peer.out" &
  PEER_PID=$!
  say "booting the $SUITE guest ($(cat "$GUEST/kernel-version" 2>/dev/null || echo '?'), $ACCEL, 1 vCPU) against the daemon${RAW:+ (raw: no checks in the guest)}$([[ $RUNS -gt 1 ]] && echo ": run $run of $RUNS")"
  if [[ $run == 1 ]]; then
    for a in "${QEMU[@]}"; do [[ $a == *' '* ]] && printf '"%s" ' "$a" || printf '%s ' "$a"; done |
      sed -E 's/vsocktest\.cmds=[A-Za-z0-9+\/=]+/vsocktest.cmds=<base64 of the commands>/; s/ -/ \\\n  -/g'
    echo
  fi
  timeout --kill-after=5 90 "${QEMU[@]}" >"$T/qemu.log" 2>&1 &
  QEMU_PID=$!
  tail -f --pid="$PEER_PID" "$T/peer.out" 2>/dev/null | grep --line-buffered -v '^THROUGHPUT ' || true

  set +e
  wait "$PEER_PID"
  PEER_RC=$?
  PEER_PID=
  wait "$QEMU_PID"
  QEMU_RC=$?
  QEMU_PID=
  set -e
  grep '^THROUGHPUT ' "$T/peer.out" >>"$T/throughput" || true

  if [[ $PEER_RC -ne 0 ]]; then
    say "daemon log"
    sed 's/^/  /' "$T/daemon.log" | tail -n 20
    say "FAILED (peer exit $PEER_RC, QEMU exit $QEMU_RC) after $(elapsed); guest console:"
    grep -a -E '^(GUEST-|OUT |RESULT |KMSG )' "$T/serial.log" | sed 's/^/  /' || true
    [[ -s $T/qemu.log ]] && sed 's/^/  qemu: /' "$T/qemu.log"
    exit 1
  fi
done

say "daemon log"
sed 's/^/  /' "$T/daemon.log" | tail -n 20
if [[ $RUNS -gt 1 ]]; then
  say "median of $RUNS runs, $((BYTES >> 20)) MiB each ($SUITE, $(cat "$GUEST/kernel-version" 2>/dev/null), ${RAW:+raw, }load average $(cut -d' ' -f1-3 /proc/loadavg))"
  stats() { sort -n | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); printf "%6.1f MiB/s (%.1f .. %.1f)", v[m], v[1], v[NR] }'; }
  for dir in 'guest->host' 'host->guest'; do
    printf '  %-13s guest %s   host %s\n' "$dir" \
      "$(awk -v d="$dir" '$2 == d { print $4 }' "$T/throughput" | stats)" \
      "$(awk -v d="$dir" '$2 == d { print $3 }' "$T/throughput" | stats)"
  done
fi
say "demo passed in $(elapsed): echo, $((BYTES >> 20)) MiB guest->host and host->guest through the daemon"
