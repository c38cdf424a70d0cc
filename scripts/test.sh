#!/usr/bin/env bash
# Runs every test of the solution, the real-guest tests included.
#
# As root (CI, a fresh Debian machine) it first installs what the tests need with apt-get
# (QEMU, busybox, a compiler for the guest test program) and builds the guest images from
# Debian packages into .work/guest; as another user it prints the apt-get line instead, and
# the real-guest tests skip with a message naming what is missing (in CI they fail).
#
# The last line it prints is the sum over all test projects: "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .work

if [ -x scripts/install-test-deps.sh ] || [ -f scripts/install-test-deps.sh ]; then
  bash scripts/install-test-deps.sh || { echo "install-test-deps.sh failed" >&2; exit 1; }
fi

log=.work/test.log
timeout --kill-after=30s "${TEST_TIMEOUT:-75m}" \
  dotnet test VirtioVsock.slnx -c Release "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Sum the per-assembly summaries: "Passed!  - Failed: 0, Passed: 16, Skipped: 0, Total: 16, ..."
read -r passed failed skipped < <(
  grep -E '^(Passed|Failed)! +- Failed: ' "$log" |
    sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+), Skipped: *([0-9]+).*/\2 \1 \3/' |
    awk '{p+=$1; f+=$2; s+=$3} END {printf "%d %d %d\n", p, f, s}')

if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # The build or the test host failed before reporting: count it as a failure.
  failed=1
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$rc"
