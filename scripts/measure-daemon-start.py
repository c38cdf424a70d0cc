#!/usr/bin/env python3
"""Start-to-ready time and idle RSS of a vhost-user-vsock build (issue 9's "warm from the first byte" figures).

    scripts/measure-daemon-start.py [--runs N] -- COMMAND...     e.g. -- artifacts/vhost-user-vsock/vhost-user-vsock
                                                                  or -- dotnet src/vhost-user-vsock/bin/Release/net10.0/vhost-user-vsock.dll

Each run starts the daemon on fresh sockets in a temporary directory with NOTIFY_SOCKET set, and measures the
time from spawn to READY=1 (sent only once the vhost-user socket and the host-side socket accept), then, one
second later, the idle resident set (VmRSS), then stops it with SIGTERM. Prints one line per run and the median.
"""
import os, signal, socket, statistics, subprocess, sys, tempfile, time

def main():
    args = sys.argv[1:]
    runs = 3
    if args[:1] == ["--runs"]:
        runs, args = int(args[1]), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    ready_ms, rss_mib = [], []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="vuvstart-") as d:
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(os.path.join(d, "notify"))
            notify.settimeout(60)
            env = dict(os.environ, NOTIFY_SOCKET=os.path.join(d, "notify"))
            cmd = args + ["--socket", os.path.join(d, "vhost.sock"), "--uds-path", os.path.join(d, "vm.vsock"), "--log-level", "warning"]
            start = time.monotonic()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while True:
                    msg = notify.recv(4096).decode()
                    if msg.startswith("READY=1"):
                        break
                ready = (time.monotonic() - start) * 1000
                time.sleep(1)
                with open(f"/proc/{proc.pid}/status") as status:
                    rss = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) / 1024
            finally:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(30)
            ready_ms.append(ready)
            rss_mib.append(rss)
            print(f"run {i + 1}: ready after {ready:.0f} ms, idle RSS {rss:.1f} MiB, exit {code}")
    load = os.getloadavg()
    print(f"median: ready after {statistics.median(ready_ms):.0f} ms, idle RSS {statistics.median(rss_mib):.1f} MiB "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")

if __name__ == "__main__":
    main()
