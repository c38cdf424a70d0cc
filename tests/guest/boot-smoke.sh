#!/usr/bin/env bash
# boot-smoke.sh OUTDIR SUITE [--selftest]
#
# Boots the guest built by build-guest.sh (OUTDIR/SUITE/{vmlinux,initramfs.cpio.gz}) under QEMU
# (TCG) WITHOUT a vsock device, runs `vsocktest cid` in it (which fails cleanly: no device) and
# checks that the GUEST-READY, RESULT and GUEST-DONE markers reach the serial log.
#
# --selftest additionally loads vsock_loopback in the guest and runs every vsocktest
# subcommand against CID 1 (VMADDR_CID_LOCAL) inside the guest, to check vsocktest itself
# without any host-side device.
#
# Prints the boot time (QEMU start -> GUEST-READY) and the total run time; the serial log is
# kept in OUTDIR/SUITE/boot-smoke.log. Exit 0 when all markers (and self tests) are fine.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 OUTDIR SUITE [--selftest]" >&2; exit 2; }
DIR=$1/$2
SUITE=$2
SELFTEST=0
[[ ${3:-} == --selftest ]] && SELFTEST=1
KERNEL=$DIR/vmlinux
INITRD=$DIR/initramfs.cpio.gz
for f in "$KERNEL" "$INITRD"; do
  [[ -s $f ]] || { echo "missing $f: run tests/guest/build-guest.sh $1 $SUITE" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || {
  echo "qemu-system-x86_64 missing: apt-get install -y --no-install-recommends qemu-system-x86" >&2; exit 3; }

LOG=$DIR/boot-smoke.log
TIMEOUT_S=${BOOT_SMOKE_TIMEOUT:-180}

if [[ $SELFTEST == 1 ]]; then
  # name command; '&' = background. Servers announce LISTENING; clients wait for it.
  CMDS=$(cat <<'EOF'
cid vsocktest cid
&srv1 vsocktest echo-server 5001 1
echo-client wait-output srv1 ^LISTENING 10 && vsocktest echo-client 1 5001 3M
&srv2 vsocktest recv-server 5002 4194304
send wait-output srv2 ^LISTENING 10 && vsocktest send 1 5002 4M
&srv3 vsocktest server-send 5003 2M
recv wait-output srv3 ^LISTENING 10 && vsocktest recv 1 5003 2097152
&srv4 vsocktest seq-echo-server 5004 1
seq-client wait-output srv4 ^LISTENING 10 && vsocktest seq-client 1 5004 1 2 100 4096 4097 65536 70000 1 200000 3
&srv5 vsocktest halfclose-server 5005
halfclose-client wait-output srv5 ^LISTENING 10 && vsocktest halfclose-client 1 5005 100000
connect-refused vsocktest connect-refused 1 5999
&srv6 vsocktest echo-server 5006 8
many-clients wait-output srv6 ^LISTENING 10 && vsocktest many-clients 1 5006 8 300000
EOF
)
  EXTRA="vsocktest.loopback=1"
else
  CMDS="cid vsocktest cid"
  EXTRA=""
fi
B64=$(printf '%s\n' "$CMDS" | base64 -w0)
APPEND="console=ttyS0 panic=-1 quiet vsocktest.timeout=60 vsocktest.cmds=$B64 $EXTRA"
if [[ ${#APPEND} -gt 2000 ]]; then
  B64=$(printf '%s\n' "$CMDS" | gzip -9n | base64 -w0)
  APPEND="console=ttyS0 panic=-1 quiet vsocktest.timeout=60 vsocktest.cmds=$B64 $EXTRA"
fi

rm -f "$LOG"
: >"$LOG"
t0=$(date +%s.%N)
# the QEMU command from shared/spec/guest.md, minus the vhost-user -chardev/-device lines
timeout -k 5 "$TIMEOUT_S" qemu-system-x86_64 -accel tcg -cpu qemu64 -smp 1 -m 256M \
  -object memory-backend-memfd,id=mem,size=256M,share=on -machine q35,memory-backend=mem \
  -nodefaults -nographic -no-reboot -serial "file:$LOG" -monitor none \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" &
qpid=$!
t_ready=""
while kill -0 "$qpid" 2>/dev/null; do
  if [[ -z $t_ready ]] && grep -q '^GUEST-READY' "$LOG" 2>/dev/null; then
    t_ready=$(date +%s.%N)
  fi
  sleep 0.05
done
set +e
wait "$qpid"
qrc=$?
set -e
t1=$(date +%s.%N)
[[ -z $t_ready ]] && grep -q '^GUEST-READY' "$LOG" && t_ready=$t1

tr -d '\r' <"$LOG" >"$LOG.tmp" && mv "$LOG.tmp" "$LOG"
echo "---- serial log ($LOG) ----"
cat "$LOG"
echo "---------------------------"

fail=0
check() { if grep -q "$1" "$LOG"; then echo "ok: $2"; else echo "FAILED: $2"; fail=1; fi; }
check '^GUEST-READY cid=' "GUEST-READY marker"
check '^RESULT cid ' "RESULT marker for 'vsocktest cid'"
check '^GUEST-DONE$' "GUEST-DONE marker"
if grep -q '^GUEST-WARN' "$LOG"; then echo "FAILED: GUEST-WARN lines"; fail=1; fi
[[ $qrc == 0 ]] || { echo "FAILED: qemu exit code $qrc (124 = timeout after ${TIMEOUT_S}s)"; fail=1; }
if [[ $SELFTEST == 1 ]]; then
  while read -r _ name rc rest; do
    [[ $name == cid ]] && continue
    if [[ $rc == 0 ]]; then echo "ok: selftest $name: $rest"; else echo "FAILED: selftest $name rc=$rc: $rest"; fail=1; fi
  done < <(grep '^RESULT ' "$LOG")
  n=$(grep -c '^RESULT ' "$LOG" || true)
  [[ $n == 14 ]] || { echo "FAILED: expected 14 RESULT lines, got $n"; fail=1; }
fi
ready_s=$( [[ -n $t_ready ]] && awk -v a="$t_ready" -v b="$t0" 'BEGIN{printf "%.2f", a-b}' || echo "n/a")
total_s=$(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
echo "boot-smoke $SUITE ($(cat "$DIR/kernel-version" 2>/dev/null || echo '?')): GUEST-READY after ${ready_s}s, total ${total_s}s, qemu exit $qrc"
if [[ $fail == 0 ]]; then echo "boot-smoke $SUITE: PASS"; else echo "boot-smoke $SUITE: FAIL"; fi
exit $fail
