#!/usr/bin/env bash
# Runs every VsockLoad mode ROUNDS times, alternating modes (so drift on a shared machine spreads over
# all of them), against a backend command (default: this repository's Release daemon), and prints the
# result lines followed by the median of each mode's figure.
# Usage: bench/VsockLoad/run-matrix.sh [ROUNDS] [BACKEND_COMMAND_WITH_{socket}_AND_{uds}]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
BACKEND=${2:-"$PWD/src/vhost-user-vsock/bin/Release/net10.0/vhost-user-vsock --guest-cid 3 --socket {socket} --uds-path {uds}"}
# The tool is published NativeAOT, as the daemon is: a JIT-compiled guest driver was itself the bottleneck
# (g2h 4 KiB ran at 0.6x the AOT tool's rate) and its tier-up showed as the daemon's "cold start".
# VSOCKLOAD=path uses another build of the tool.
TOOL=${VSOCKLOAD:-bench/VsockLoad/bin/aot/VsockLoad}
if [ ! -x "$TOOL" ]; then
  rid="linux-$(uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')"
  dotnet publish bench/VsockLoad/VsockLoad.csproj -c Release -r "$rid" -p:PublishAot=true -o bench/VsockLoad/bin/aot >/dev/null
fi
WARM=$((64 << 20))
MODES=(
  "--mode g2h --write-size 65536 --count $((512 << 20)) --warmup $WARM"
  "--mode g2h --write-size 65536 --count $((512 << 20)) --warmup $WARM --event-idx"
  "--mode g2h --write-size 4096 --count $((256 << 20)) --warmup $WARM"
  "--mode h2g --write-size 65536 --count $((512 << 20)) --warmup $WARM"
  "--mode h2g --write-size 4096 --count $((256 << 20)) --warmup $WARM"
  "--mode rr --count 20000 --warmup 2000"
  "--mode conn --count 2000 --write-size 4096 --concurrency 16"
)
OUT=$(mktemp)
for ((round = 1; round <= ROUNDS; round++)); do
  for args in "${MODES[@]}"; do
    # shellcheck disable=SC2086
    line=$("$TOOL" $args --backend "$BACKEND" || true)
    echo "$line" | tee -a "$OUT"
  done
done
echo "---- medians over $ROUNDS rounds ----"
python3 - "$OUT" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if not line.startswith("vsockload"):
        continue
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    kv["mode"] = line.split()[1].split("=", 1)[1]
    runs[(kv["mode"], kv["write"], kv["event_idx"])].append(kv)
for key, rows in runs.items():
    unit = next(k for k in rows[0] if k in ("MiB_per_s", "p50_us", "conn_per_s"))
    def med(field):
        vals = [float(r[field]) for r in rows if field in r and r[field] != "n/a"]
        return statistics.median(vals) if vals else float("nan")
    extra = ""
    if unit == "p50_us":
        extra = f" p99_us={med('p99_us'):.1f} limit_p99_us={med('limit_p99_us'):.1f}"
    if "first64_of_steady" in rows[0]:
        extra += f" first64_of_steady={med('first64_of_steady'):.3f} limit_first64_of_steady={med('limit_first64_of_steady'):.3f}"
    if "cpu_s_per_GiB" in rows[0]:
        extra += (f" cpu_s_per_GiB={med('cpu_s_per_GiB'):.3f} cpu_kernel_s_per_GiB={med('cpu_kernel_s_per_GiB'):.3f}"
                  f" limit_kernel_s_per_GiB={med('limit_kernel_s_per_GiB'):.3f} dev_credit_req_per_GiB={med('dev_credit_req_per_GiB'):.0f}"
                  f" dev_credit_upd_per_GiB={med('dev_credit_upd_per_GiB'):.0f} guest_credit_upd_per_GiB={med('guest_credit_upd_per_GiB'):.0f}")
    viol = sum(int(r["violations"]) for r in rows)
    print(f"{key[0]} write={key[1]} event_idx={key[2]} runs={len(rows)} {unit}={med(unit):.1f} limit={med('limit_' + unit):.1f} "
          f"of_limit={med('of_limit'):.3f}{extra} violations_total={viol}")
PY
rm -f "$OUT"
