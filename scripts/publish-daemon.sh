#!/usr/bin/env bash
# Publishes the daemon in its released form: one NativeAOT executable, warm from the first byte.
#   scripts/publish-daemon.sh [OUTDIR]          -> OUTDIR/vhost-user-vsock (default artifacts/vhost-user-vsock)
#   scripts/publish-daemon.sh --r2r [OUTDIR]    -> framework-dependent ReadyToRun + TieredPGO build, where
#                                                  NativeAOT cannot serve (no ILCompiler package or no linker)
# NativeAOT needs the SDK's ILCompiler package (restored from NuGet like any package) and a C toolchain to link
# (gcc or clang; scripts/install-test-deps.sh installs gcc, which the NativeAOT guest agent uses too).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=aot
if [[ "${1:-}" == "--r2r" ]]; then
    mode=r2r
    shift
fi
out="${1:-artifacts/vhost-user-vsock}"
rid="linux-$(uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')"

if [[ "$mode" == aot ]]; then
    dotnet publish src/vhost-user-vsock -c Release -r "$rid" -p:PublishAot=true -o "$out"
    rm -f "$out"/*.dbg "$out"/*.pdb "$out"/*.xml
    echo "published: $out/vhost-user-vsock (NativeAOT, $(du -h "$out/vhost-user-vsock" | cut -f1))"
else
    dotnet publish src/vhost-user-vsock -c Release -r "$rid" --self-contained false \
        -p:PublishReadyToRun=true -p:TieredPGO=true -o "$out"
    echo "published: $out/vhost-user-vsock (ReadyToRun + TieredPGO, needs the .NET 10 runtime)"
fi
