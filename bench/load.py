#!/usr/bin/env python3
"""Load benchmark for nova-actions (docs/spec/04-storage-and-performance.md §3). Run through bench/load.sh, which builds the
release binaries and installs wrk. Every figure is a median over BENCH_RUNS runs.

Environment (all optional):
  BENCH_DIR         where stores and logs go            (/tmp/nova-actions-bench)
  BENCH_DURATION    seconds per wrk run                 (5)
  BENCH_RUNS        runs per figure (median reported)   (3)
  BENCH_CONNECTIONS connections for throughput runs     (64)
  BENCH_BIG         actions on the big server           (1000000)
  BENCH_FOOTPRINT   1 = also build the 10,000,000-action store and measure it (slow)
  BENCH_ONLY        comma list of sections: throughput,scaling,writes,import,startup,footprint,nodes,servers
  BENCH_BACKEND     sled (default) or postgres: where the service keeps its store
  BENCH_POSTGRES_URL  a role that may create databases (postgres backend); when unset, a
                    throwaway PostgreSQL 15 is started with scripts/postgres/throwaway.sh
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, "target/release/nova-actions"))  # another build, for A/B runs
BARE = os.path.join(ROOT, "target/release/examples/bare")
WRITE_LOAD = os.path.join(ROOT, "target/release/examples/write_load")
WORK = os.environ.get("BENCH_DIR", "/tmp/nova-actions-bench")
DURATION = int(os.environ.get("BENCH_DURATION", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONNS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
BIG = int(os.environ.get("BENCH_BIG", "1000000"))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
BACKEND = os.environ.get("BENCH_BACKEND", "sled")
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "")
PG_PORT = "55440"
HEADERS = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.84"}
SERVER0 = "be000000-0000-4000-8000-000000000000"  # generate::server_id(0)

results = []
running = []  # services to stop if a section fails half way


def wanted(section):
    return not ONLY or section in ONLY


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def database_url(name):
    """The URL of database `name` on the benchmark's PostgreSQL server."""
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}"


def psql(sql):
    subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", PG_URL, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fresh_database(name):
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")
    return database_url(name)


def store_env(location):
    """Environment and arguments that point the binary at a store (a directory or a URL)."""
    if location.startswith("postgresql://"):
        return {"NOVA_ACTIONS__STORAGE__BACKEND": "postgres", "NOVA_ACTIONS__POSTGRES__URL": location}, []
    return {}, ["--data-dir", location]


def store(name, servers, actions, events):
    """A generated store, built once and reused while its shape is unchanged."""
    if BACKEND == "postgres":
        return pg_store(name, servers, actions, events)
    path = os.path.join(WORK, name)
    marker = os.path.join(path, ".shape")
    shape = f"{servers} {actions} {events}"
    if os.path.exists(marker) and open(marker).read() == shape:
        return path
    shutil.rmtree(path, ignore_errors=True)
    log(f"generating {name}: {servers} servers x {actions} actions x {events} events")
    started = time.time()
    subprocess.run([BIN, "generate", "--servers", str(servers), "--actions", str(actions),
                    "--events", str(events), "--data-dir", path], check=True,
                   stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
    log(f"  {time.time() - started:.1f}s")
    open(marker, "w").write(shape)
    return path


def pg_store(name, servers, actions, events):
    database = "bench_" + name.replace("-", "_")
    marker = os.path.join(WORK, f"pg-{database}.shape")
    shape = f"{servers} {actions} {events}"
    if os.path.exists(marker) and open(marker).read() == shape:
        return database_url(database)
    url = fresh_database(database)
    log(f"generating {database}: {servers} servers x {actions} actions x {events} events")
    started = time.time()
    env, _ = store_env(url)
    subprocess.run([BIN, "generate", "--servers", str(servers), "--actions", str(actions),
                    "--events", str(events)], check=True, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, RUST_LOG="warn", **env))
    psql_on(url, "VACUUM ANALYZE")
    log(f"  {time.time() - started:.1f}s")
    open(marker, "w").write(shape)
    return url


def psql_on(url, sql):
    subprocess.run(["psql", "-qX", url, "-c", sql], check=True, stdout=subprocess.DEVNULL)


def empty_store(name):
    """A new empty store: a directory, or a database."""
    if BACKEND == "postgres":
        return fresh_database("bench_" + name.replace("-", "_"))
    path = os.path.join(WORK, name)
    shutil.rmtree(path, ignore_errors=True)
    return path


def store_size(location):
    if location.startswith("postgresql://"):
        out = subprocess.run(["psql", "-qtAX", location, "-c", "SELECT pg_database_size(current_database())"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())
    return du(location)


class Service:
    def __init__(self, data_dir, port, log_level="info"):
        self.port = port
        self.log = open(os.path.join(WORK, f"serve-{port}.log"), "w")
        self.started = time.time()
        env, args = store_env(data_dir)
        self.proc = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"] + args,
                                     stdout=self.log, stderr=self.log,
                                     env=dict(os.environ, RUST_LOG=log_level, **env))
        running.append(self.proc)
        self.ready_after = wait_ready(port, proc=self.proc)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def rss_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(60)
        self.log.close()


def wait_ready(port, path=None, proc=None):
    """Seconds until the service answers a real API request (not just the socket)."""
    started = time.time()
    url = f"http://127.0.0.1:{port}" + (path or f"/v2.1/servers/{SERVER0}/os-instance-actions?limit=1")
    while time.time() - started < 600:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the service on port {port} exited with {proc.returncode}; see {WORK}/serve-{port}.log")
        try:
            req = urllib.request.Request(url, headers=HEADERS)
            with urllib.request.urlopen(req, timeout=5) as r:
                r.read()
                return time.time() - started
        except urllib.error.HTTPError:
            return time.time() - started  # it answered (an empty store says 404)
        except Exception:
            time.sleep(0.02)
    raise SystemExit(f"service on {port} never answered")


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or HEADERS)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def wrk(url, connections, threads=2, duration=None, headers=None):
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration or DURATION}s", "--latency"]
    for k, v in (headers or HEADERS).items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {"rps": rps, "p50_ms": to_ms(lat.get("50")), "p99_ms": to_ms(lat.get("99")), "errors": errors}


def to_ms(text):
    if text is None:
        return float("nan")
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def median_of(run):
    samples = [run() for _ in range(RUNS)]
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def record(section, name, figures, note=""):
    results.append({"section": section, "name": name, **figures, "note": note})
    shown = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    log(f"  {name}: {shown} {note}")


def newest_action(svc, server=SERVER0):
    body = json.loads(get(svc.url(f"/v2.1/servers/{server}/os-instance-actions?limit=1")))
    return body["instanceActions"][0]


def hour_before(timestamp):
    import datetime
    t = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%f") - datetime.timedelta(hours=1)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def throughput():
    log("throughput: list, filtered list and show on a 10,000-action server, against a bare handler")
    data = store("history-10k", 1, 10_000, 10)
    svc = Service(data, 18774)
    newest = newest_action(svc)
    list_url = svc.url(f"/v2.1/servers/{SERVER0}/os-instance-actions?limit=50")
    since_url = list_url + "&changes-since=" + hour_before(newest["updated_at"])
    show_url = svc.url(f"/v2.1/servers/{SERVER0}/os-instance-actions/{newest['request_id']}")
    sizes = {n: len(get(u)) for n, u in [("list", list_url), ("since", since_url), ("show", show_url)]}
    figures = {
        "list (limit 50)": median_of(lambda: wrk(list_url, CONNS)),
        "list changes-since 1h": median_of(lambda: wrk(since_url, CONNS)),
        "show (10 events)": median_of(lambda: wrk(show_url, CONNS)),
    }
    svc.stop()
    quiet = Service(data, 18774, log_level="warn")
    quiet_list = median_of(lambda: wrk(list_url, CONNS))
    quiet.stop()
    bare = subprocess.Popen([BARE, "127.0.0.1:18080", str(sizes["list"])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(18080, "/", proc=bare)
    ceiling = median_of(lambda: wrk("http://127.0.0.1:18080/", CONNS))
    bare.terminate()
    bare.wait()
    record("throughput", f"bare actix-web, {sizes['list']}-byte body", ceiling)
    for name, f in figures.items():
        record("throughput", name, f, f"ratio to bare {f['rps'] / ceiling['rps']:.2f}")
    record("throughput", "list (limit 50), access log off", quiet_list, f"ratio to bare {quiet_list['rps'] / ceiling['rps']:.2f}")


def scaling():
    log(f"scaling: one page at 100 vs {BIG:,} actions (1 connection)")
    small = store("history-100", 1, 100, 3)
    big = store(f"history-{BIG}", 1, BIG, 3)
    page = lambda svc: svc.url(f"/v2.1/servers/{SERVER0}/os-instance-actions?limit=50")
    svc = Service(small, 18775, log_level="warn")
    at_100 = median_of(lambda: wrk(page(svc), 1, threads=1))
    svc.stop()
    svc = Service(big, 18776, log_level="warn")
    at_big = median_of(lambda: wrk(page(svc), 1, threads=1))
    since = page(svc) + "&changes-since=" + hour_before(newest_action(svc)["updated_at"])
    filtered = median_of(lambda: wrk(since, 1, threads=1))
    svc.stop()
    record("scaling", "page at 100 actions", at_100)
    record("scaling", f"page at {BIG:,} actions", at_big,
           f"p50 ratio {at_big['p50_ms'] / at_100['p50_ms']:.2f}, p99 ratio {at_big['p99_ms'] / at_100['p99_ms']:.2f}")
    record("scaling", f"changes-since 1h page at {BIG:,}", filtered,
           f"p50 ratio to plain page {filtered['p50_ms'] / at_big['p50_ms']:.2f}")


def writes():
    log("durable writes: event start + finish pairs, 32 clients, acknowledged after flush + fdatasync")
    def run():
        path = empty_store("writes")
        svc = Service(path, 18777, log_level="warn")
        out = subprocess.run([WRITE_LOAD, "127.0.0.1:18777", "32", str(DURATION)], capture_output=True, text=True, check=True).stdout
        svc.stop()
        fields = dict(kv.split("=") for kv in out.split())
        return {"writes_per_s": float(fields["writes_per_s"]), "failed": int(fields["failed"])}
    record("writes", "durable writes, 32 clients", median_of(run))


def servers():
    log("servers: server listing, name lookups and show on 100,000 servers (200 projects)")
    from urllib.parse import quote
    data = store("servers-100k", 100_000, 1, 1)
    svc = Service(data, 18781, log_level="warn")
    admin = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.100"}
    target = str(uuid.UUID(int=uuid.UUID(SERVER0).int | 99999))  # generate::server_id(99999), named server-99999
    project = json.loads(get(svc.url(f"/v2.1/servers/{target}"), admin))["server"]["tenant_id"]
    member = {"X-Auth-Token": f"user-x:{project}", "OpenStack-API-Version": "compute 2.100"}
    name = quote("^server-99999$", safe="")
    lookup = (svc.url(f"/v2.1/servers/detail?all_tenants=1&name={name}"), admin)
    urls = {
        "detail page (all_tenants, limit 50)": (svc.url("/v2.1/servers/detail?all_tenants=1&limit=50"), admin),
        "name lookup, project member (^server-99999$)": (svc.url(f"/v2.1/servers/detail?name={name}"), member),
        "show": (svc.url(f"/v2.1/servers/{target}"), admin),
        "name lookup, admin, 1 connection": lookup,
        "name lookup, admin (all_tenants, ^server-99999$)": lookup,
    }
    for label, (url, headers) in urls.items():  # each must answer, and a lookup must find its server
        body = json.loads(get(url, headers))
        if "lookup" in label and [s["id"] for s in body["servers"]] != [target]:
            raise SystemExit(f"{label}: expected only {target}, got {body}")

    def run(url, headers, connections):
        # An admin lookup takes a quarter of a second of scanning; at 64 connections requests queue past
        # wrk's 2 s timeout (counted as errors, left out of the latencies) and the service finishes
        # them after wrk has gone. Requests first wait out that backlog (the scan holds its worker, so
        # meanwhile new connections may be answered 408), so runs do not overlap.
        for _ in range(60):
            try:
                get(url, headers)
                break
            except (urllib.error.URLError, TimeoutError):
                time.sleep(1)
        return wrk(url, connections, headers=headers, threads=1 if connections == 1 else 2)
    figures = {label: median_of(lambda u=url, h=headers, c=(1 if "1 connection" in label else CONNS): run(u, h, c))
               for label, (url, headers) in urls.items()}

    def show_under_scans():
        # Shows from 4 connections while 64 others keep admin name lookups going: long scans take
        # turns (one per core) on the blocking pool, so the shows must stay fast.
        storm = subprocess.Popen(["wrk", "-t1", "-c64", f"-d{DURATION + 4}s"] +
                                 [a for k, v in admin.items() for a in ("-H", f"{k}: {v}")] + [lookup[0]],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        try:
            return wrk(urls["show"][0], 4, threads=1, headers=admin)
        finally:
            storm.wait()
    figures["show, 4 connections, while 64 run admin name lookups"] = median_of(show_under_scans)
    svc.stop()
    for label, f in figures.items():
        record("servers", label, f, "errors are wrk 2 s timeouts" if f["errors"] else "")


def bulk_import():
    log("bulk import: NDJSON (100 servers x 1,000 actions x 3 events) into an empty store")
    source = store("import-source", 100, 1000, 3)
    ndjson = os.path.join(WORK, "import.ndjson")
    if not os.path.exists(ndjson):
        env, args = store_env(source)
        subprocess.run([BIN, "export"] + args + ["-o", ndjson], check=True, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, **env))
    def run():
        target = empty_store("import-target")
        env, args = store_env(target)
        started = time.time()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", BIN, "import"] + args + [ndjson],
                             capture_output=True, text=True, check=True,
                             env=dict(os.environ, RUST_LOG="warn", **env))
        elapsed = time.time() - started
        rss_kb = int(out.stderr.strip().splitlines()[-1])
        disk = store_size(target)
        return {"actions_per_s": 100_000 / elapsed, "max_rss_mb": rss_kb / 1024, "disk_mb": disk / 1e6}
    figures = median_of(run)
    record("import", "bulk import 100,000 actions", figures,
           f"NDJSON {os.path.getsize(ndjson) / 1e6:.0f} MB, store/NDJSON {figures['disk_mb'] * 1e6 / os.path.getsize(ndjson):.2f}")


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def restart_times(data, port):
    """Seconds to the first answer after a clean stop, then after a kill -9 (the store was just
    stopped cleanly)."""
    clean = Service(data, port, log_level="warn")
    after_clean = clean.ready_after
    clean.stop(signal.SIGKILL)
    killed = Service(data, port, log_level="warn")
    after_kill = killed.ready_after
    killed.stop()
    return after_clean, after_kill


def startup():
    log("start-up: first answer after a clean stop and after kill -9 (100 servers x 1,000 actions)")
    data = store("import-source", 100, 1000, 3)
    Service(data, 18778, log_level="warn").stop()
    after_clean, after_kill = restart_times(data, 18778)
    record("startup", "first answer after a clean stop", {"seconds": after_clean})
    record("startup", "first answer after kill -9", {"seconds": after_kill})


def footprint():
    log("footprint: 10,000,000 actions (100,000 servers x 100 actions x 3 events)")
    data = store("footprint-10m", 100_000, 100, 3)
    ndjson_size = 0
    proc = subprocess.Popen([BIN, "export", "--data-dir", data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
        ndjson_size += len(chunk)
    proc.wait()
    svc = Service(data, 18779, log_level="warn")
    first = svc.ready_after
    for n in range(0, 100_000, 997):
        get(svc.url(f"/v2.1/servers/be000000-0000-4000-8000-{n:012x}/os-instance-actions?limit=50"))
    rss = svc.rss_mb()
    svc.stop()
    after_clean, after_kill = restart_times(data, 18779)
    disk = du(data)
    record("footprint", "10M actions", {"disk_gb": disk / 1e9, "ndjson_gb": ndjson_size / 1e9, "rss_serving_mb": rss,
                                         "first_answer_s": first, "after_clean_stop_s": after_clean,
                                         "after_kill_s": after_kill}, f"store/NDJSON {disk / ndjson_size:.2f}")


def nodes():
    log("nodes: the list load against one node, then split across two nodes on one database")
    data = store("history-10k", 1, 10_000, 10)
    path = f"/v2.1/servers/{SERVER0}/os-instance-actions?limit=50"
    one = Service(data, 18781, log_level="warn")
    single = median_of(lambda: wrk(one.url(path), CONNS))
    two = Service(data, 18782, log_level="warn")

    def both():
        half = max(CONNS // 2, 1)
        results_box = {}
        import threading
        def run(name, svc):
            results_box[name] = wrk(svc.url(path), half, threads=1)
        threads = [threading.Thread(target=run, args=(n, s)) for n, s in (("a", one), ("b", two))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        a, b = results_box["a"], results_box["b"]
        return {"rps": a["rps"] + b["rps"], "p50_ms": max(a["p50_ms"], b["p50_ms"]),
                "p99_ms": max(a["p99_ms"], b["p99_ms"]), "errors": a["errors"] + b["errors"]}
    split = median_of(both)
    one.stop()
    two.stop()
    record("nodes", f"list (limit 50), one node, {CONNS} connections", single)
    record("nodes", f"list (limit 50), two nodes, {CONNS // 2} connections each", split,
           f"ratio to one node {split['rps'] / single['rps']:.2f}")


def start_postgres():
    global PG_URL
    if PG_URL:
        return None
    script = os.path.join(ROOT, "scripts/postgres/throwaway.sh")
    PG_URL = subprocess.run(["bash", script, "start", PG_PORT], capture_output=True, text=True,
                            check=True).stdout.strip()
    log(f"throwaway PostgreSQL at {PG_URL}")
    for name in os.listdir(WORK):
        if name.startswith("pg-") and name.endswith(".shape"):
            os.remove(os.path.join(WORK, name))  # its databases went with the last server
    return lambda: subprocess.run(["bash", script, "stop", PG_PORT], check=False)


def main():
    os.makedirs(WORK, exist_ok=True)
    stop_postgres = start_postgres() if BACKEND == "postgres" else None
    try:
        run_sections()
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if stop_postgres:
            stop_postgres()


def run_sections():
    log(f"backend: {BACKEND}")
    sections = [("throughput", throughput), ("scaling", scaling), ("writes", writes), ("import", bulk_import),
                ("startup", startup), ("servers", servers)]
    if BACKEND == "postgres":
        sections.append(("nodes", nodes))
    if os.environ.get("BENCH_FOOTPRINT") == "1" and BACKEND == "sled":
        sections.append(("footprint", footprint))
    for name, run in sections:
        if wanted(name):
            run()
    print("\n| section | figure | values | note |\n|---|---|---|---|")
    for r in results:
        values = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in r.items() if k not in ("section", "name", "note"))
        print(f"| {r['section']} | {r['name']} | {values} | {r['note']} |")
    with open(os.path.join(WORK, f"results-{BACKEND}.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
