#!/usr/bin/env python3
"""Apps at scale: memory, start-up time and token rate of the release server holding 1,000,
100,000 and 1,000,000 apps (BENCHMARKS.md, Apps at scale).

For each count it writes a JSON Lines file of that many apps (scopes drawn from a small pool,
as a fleet's are), imports it into a new data directory with `tessera apps import` (the
offline bulk path: the stopped server's own registry, every check a create makes), starts the
server once so that it creates its root app, then starts it again and measures:

  start-up   process start until GET /healthz answers
  RSS        VmRSS of the server after start-up, and again after the token load; B/app is
             what each app adds over the smallest count
  token/s    wrk -t1 -c32, client_credentials for one of the imported apps: every server
             stays up and their runs take turns (--rounds of --seconds each); the median

One table at the end; the last line is the token rate at the largest count over the smallest,
both from this run, since the machine may be shared.

  scripts/apps-at-scale.py [BINARY, default target/release/tessera] [--counts 1000,100000,1000000]
                           [--seconds 5] [--rounds 3]

Data directories go under target/ (on disk, not in a /tmp that may be memory) and are removed
afterwards. Installs wrk when missing (Debian). Python 3.11 standard library only.
"""

import argparse
import http.client
import os
import random
import secrets
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCOPE_POOL = [f"{area}:{verb}" for area in
              ("orders", "billing", "fleet", "inventory", "reports", "users", "audit", "media")
              for verb in ("read", "write")]
BENCH_CLIENT = "bench-app"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_apps(path, count, bench_secret):
    rng = random.Random(count)
    with open(path, "w") as out:
        out.write('{"name":"bench","scopes":["orders:read"],'
                  f'"clientId":"{BENCH_CLIENT}","secret":"{bench_secret}"}}\n')
        for i in range(1, count):
            scopes = rng.sample(SCOPE_POOL, rng.randint(1, 3))
            out.write('{"name":"app-%d","scopes":[%s]}\n'
                      % (i, ",".join(f'"{s}"' for s in scopes)))


def healthz(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, binary, data, root_secret):
        self.port = free_port()
        env = dict(os.environ, TESSERA_ROOT_CLIENT_ID="bench-root",
                   TESSERA_ROOT_CLIENT_SECRET=root_secret, RUST_LOG="warn")
        self.log = open(data / "server.log", "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(data / "store")],
            env=env, stdout=self.log, stderr=self.log)
        while not healthz(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): see {data}/server.log")
            if time.monotonic() - self.started > 300:
                raise RuntimeError("the server did not answer /healthz within 300 s")
            time.sleep(0.01)
        self.startup = time.monotonic() - self.started

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def token_rate(port, data, secret, seconds):
    import base64
    basic = base64.b64encode(f"{BENCH_CLIENT}:{secret}".encode()).decode()
    lua = data / "token.lua"
    lua.write_text(f"""wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=orders:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic {basic}"
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("NON2XX %d\\n", errors))
end
""")
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(lua),
                          f"http://127.0.0.1:{port}/oauth2/v1/token"],
                         check=True, capture_output=True, text=True).stdout
    if "NON2XX 0" not in out:
        raise RuntimeError(f"token requests failed:\n{out}")
    return next(float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec"))


def start(binary, count):
    """A data directory holding `count` imported apps, and its server, started and measured."""
    (ROOT / "target").mkdir(exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="apps-at-scale.", dir=ROOT / "target"))
    try:
        return start_in(binary, count, data)
    except BaseException:
        shutil.rmtree(data, ignore_errors=True)
        raise


def start_in(binary, count, data):
    bench_secret = secrets.token_urlsafe(32)
    root_secret = secrets.token_urlsafe(32)
    apps = data / "apps.jsonl"
    write_apps(apps, count, bench_secret)
    began = time.monotonic()
    subprocess.run([binary, "apps", "import", str(apps), "--secrets-out", str(data / "secrets.jsonl"),
                    "--data-dir", str(data / "store")],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
    imported = time.monotonic() - began
    apps.unlink()
    (data / "secrets.jsonl").unlink()
    Server(binary, data, root_secret).stop()  # creates the root app
    server = Server(binary, data, root_secret)
    store_mib = sum(f.stat().st_size for f in (data / "store").rglob("*") if f.is_file()) / 2**20
    row = dict(count=count, imported=imported, startup=server.startup,
               rss_start=rss_mib(server.proc.pid), store=store_mib, rates=[])
    return data, server, bench_secret, row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", nargs="?", default=str(ROOT / "target/release/tessera"))
    parser.add_argument("--counts", default="1000,100000,1000000")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        subprocess.run("apt-get update -qq && apt-get install -y -qq wrk", shell=True, check=True,
                       stdout=subprocess.DEVNULL)
    binary = str(Path(args.binary).resolve())
    running = []
    try:
        for count in (int(c) for c in args.counts.split(",")):
            running.append(start(binary, count))
            row = running[-1][3]
            print(f"{count} apps: imported in {row['imported']:.1f} s, started in {row['startup']:.2f} s",
                  file=sys.stderr)
        # Every server stays up and the token runs take turns, so that whatever else the
        # machine does meanwhile falls on each count alike; the median of the rounds counts.
        for _ in range(args.rounds):
            for data, server, secret, row in running:
                row["rates"].append(token_rate(server.port, data, secret, args.seconds))
        for _, server, _, row in running:
            row["rss_load"] = rss_mib(server.proc.pid)
            row["rate"] = statistics.median(row["rates"])
    finally:
        for data, server, _, _ in running:
            server.stop()
            shutil.rmtree(data, ignore_errors=True)
    rows = [row for _, _, _, row in running]
    print(f"{'apps':>9}  {'import s':>8}  {'store MiB':>9}  {'start-up s':>10}  {'RSS MiB':>7}"
          f"  {'RSS loaded':>10}  {'B/app':>6}  {'token/s':>8}")
    first = rows[0]
    for r in rows:
        # What each app adds, over the smallest count: the server's own RSS cancels out.
        extra = r["count"] - first["count"]
        per_app = f"{(r['rss_start'] - first['rss_start']) * 2**20 / extra:.0f}" if extra else "-"
        print(f"{r['count']:>9}  {r['imported']:>8.1f}  {r['store']:>9.0f}  {r['startup']:>10.2f}"
              f"  {r['rss_start']:>7.0f}  {r['rss_load']:>10.0f}  {per_app:>6}  {r['rate']:>8.0f}")
    if len(rows) > 1:
        print(f"token rate at {rows[-1]['count']} apps / at {rows[0]['count']}: "
              f"{rows[-1]['rate'] / rows[0]['rate']:.2f}x")


if __name__ == "__main__":
    main()
