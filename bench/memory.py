#!/usr/bin/env python3
"""Resident memory and start-up of the service on a store made by `nova-actions generate`.

    python3 bench/memory.py STORE_DIR SERVERS [REQUESTS] [BINARY]

Starts `serve` on STORE_DIR (release build by default), times exec to the ready line, reads the
resident set size (VmRSS) once ready, then after REQUESTS random requests (default 2,000: half
lists of 50, half shows of an action from that list, on random servers of the `generate` shape),
and prints one line. Run it twice on a fresh store to see the first start and a later one.
"""
import json
import os
import random
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADERS = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.84"}


def server_id(n):
    """generate::server_id(n)."""
    return f"be000000-0000-4000-8000-{n:012x}"


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    store, servers = sys.argv[1], int(sys.argv[2])
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    binary = sys.argv[4] if len(sys.argv) > 4 else os.path.join(ROOT, "target/release/nova-actions")
    started = time.monotonic()
    proc = subprocess.Popen([binary, "serve", "--data-dir", store, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    ready = time.monotonic() - started
    if "listening" not in line:
        proc.kill()
        sys.exit(f"no ready line from {binary}: {line!r}")
    base = line.split()[-1]

    def get(path):
        request = urllib.request.Request(base + path, headers=HEADERS)
        with urllib.request.urlopen(request) as answer:
            return answer.read()

    at_ready = rss_mb(proc.pid)
    rng = random.Random(1)
    for _ in range(requests // 2):
        server = server_id(rng.randrange(servers))
        page = json.loads(get(f"/v2.1/servers/{server}/os-instance-actions?limit=50"))
        action = rng.choice(page["instanceActions"])
        get(f"/v2.1/servers/{server}/os-instance-actions/{action['request_id']}")
    after = rss_mb(proc.pid)
    proc.terminate()
    proc.wait()
    print(f"ready {ready:.3f} s; RSS {at_ready} MB when ready, {after} MB after {requests} requests")


if __name__ == "__main__":
    main()
