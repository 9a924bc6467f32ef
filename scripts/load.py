#!/usr/bin/env python3
"""Load test: the release server on loopback, every scenario in one run, reported once.

For each scenario it runs wrk and reads the server process's own CPU time (utime + stime in
/proc) around the run, so it prints requests/s, p50/p99 and **server CPU per request**. The
raw Ed25519 signature is timed in the same run (criterion, `benches/token.rs`), which gives
the floor of a token request: healthz CPU (HTTP and the kernel) plus one signature, with
healthz taken both at full load and at the token run's own rate (a request costs less CPU on
a busier server). Ratios hold on a noisy shared machine where absolute rates do not
(BENCHMARKS.md).

    scripts/load.py [--seconds 10] [--conns 64] [--rounds 3] [--bin BINARY] [--json FILE]

Scenarios: GET /healthz; GET the JWKS; client_credentials for an access token only; the same
for an app that also gets a durable refresh token (group committed); refresh-token redemption
(each answer's refresh token is that connection's next request); password logins alone
(Argon2id); access tokens while logins flood the server. TESSERA_STORE, when set, puts the
server on PostgreSQL (scripts/load-store.sh). Installs wrk when missing (Debian). Traffic
stays on 127.0.0.1; each run is bounded.
"""

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRK = os.path.join(ROOT, "scripts", "wrk")
TICK = os.sysconf("SC_CLK_TCK")

# The token request's floor ratio and tail (issue 14).
FLOOR_TARGET = 1.15
P99_TARGET_MS = 3.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, body=None, headers=None, method=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def cpu_seconds(pid):
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / TICK


def raw_sign_us():
    """One raw ed25519-dalek signature of a token-sized message, by criterion's median."""
    subprocess.run(
        ["cargo", "bench", "--quiet", "--bench", "token", "--", "--warm-up-time", "1",
         "--measurement-time", "3", "--noplot", "baseline_raw_ed25519_sign"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    path = os.path.join(target, "criterion", "token", "baseline_raw_ed25519_sign", "new",
                        "estimates.json")
    return json.load(open(path))["median"]["point_estimate"] / 1000


class Server:
    def __init__(self, binary, data):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = ("load-root", secrets.token_urlsafe(32))
        env = dict(os.environ, TESSERA_ROOT_CLIENT_ID=self.root[0],
                   TESSERA_ROOT_CLIENT_SECRET=self.root[1], RUST_LOG="warn")
        self.log = open(os.path.join(data, "server.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             os.path.join(data, "data")], env=env, stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"the server exited; see {self.log.name}")
                time.sleep(0.05)
        sys.exit("the server did not answer /healthz")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def token(self, auth, body="grant_type=client_credentials"):
        return call(self.url + "/oauth2/v1/token", body.encode(), {"Authorization": auth})

    def app(self, admin, body):
        headers = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}
        app = call(self.url + "/api/v1/apps", json.dumps(body).encode(), headers)["app"]
        return basic(app["clientId"], app["secret"])


def wrk(args, path, threads, conns, seconds, script=None, env=None):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", os.path.join(WRK, script)]
    return subprocess.Popen(cmd + [args.url + path], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, WRK_THREADS=str(threads), **(env or {})))


def millis(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse(name, out, strict=True):
    """wrk's figures; with `strict`, any answer but a 2xx ends the run."""
    errors = re.search(r"NON2XX (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if strict and ((errors and errors.group(1) != "0") or non2xx):
        sys.exit(f"{name}: answers other than 2xx\n{out}")
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": millis(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": millis(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
    }


def measured(server, name, run, strict=True):
    """Runs `run` (which returns the wrk process to measure) with the server's CPU read around it."""
    before = cpu_seconds(server.proc.pid)
    out = run().communicate()[0]
    spent = cpu_seconds(server.proc.pid) - before
    result = parse(name, out, strict)
    result["cpu_us"] = spent * 1e6 / max(result["requests"], 1)
    return result


def healthz_at(server, args, rate):
    """Server CPU per /healthz at about `rate` requests/s. A request costs less CPU the more
    of them one wakeup finds waiting, so a floor for the token endpoint is the healthz cost at
    the token's own rate: taken with fewer connections until the rate passes it, then read
    off the line between the two runs either side."""
    seconds = max(2, args.seconds // 2)
    points = []
    for conns in (1, 2, 4, 8, 16, 32):
        r = measured(server, "healthz", lambda: wrk(args, "/healthz", 1, conns, seconds))
        points.append((r["rps"], r["cpu_us"]))
        if r["rps"] >= rate:
            break
    points.sort()
    below = [p for p in points if p[0] <= rate] or points[:1]
    above = [p for p in points if p[0] >= rate] or points[-1:]
    (r0, c0), (r1, c1) = below[-1], above[0]
    return c0 if r1 == r0 else c0 + (c1 - c0) * (rate - r0) / (r1 - r0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--bin", help="a built server (default: build this tree's release)")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternated healthz/token runs the floor ratio takes medians of")
    p.add_argument("--json", help="also write the figures here, for scripts/load-table.py")
    args = p.parse_args()
    if not shutil.which("wrk"):
        subprocess.run("apt-get update -qq && apt-get install -y -qq wrk", shell=True,
                       check=True, stdout=subprocess.DEVNULL)
    binary = args.bin
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "tessera")
    sign_us = raw_sign_us()

    data = tempfile.mkdtemp(prefix="tessera-load.")
    server = Server(binary, data)
    try:
        args.url = server.url
        admin = server.token(basic(*server.root))["access_token"]
        token_auth = server.app(admin, {"name": "load", "scopes": ["read_app", "orders:read"]})
        refresh_auth = server.app(admin, {
            "name": "load-refresh", "scopes": ["orders:read"],
            "grantTypes": ["client_credentials", "refresh_token"]})
        # Refresh tokens to start the redemption chains: one per connection and some to spare.
        tokens = os.path.join(data, "refresh-tokens.txt")
        with open(tokens, "w") as f:
            for _ in range(args.conns * 2):
                f.write(server.token(refresh_auth)["refresh_token"] + "\n")
        login = {"username": "loadtester", "password": "load test password"}
        call(server.url + "/consumer/register", json.dumps(dict(login, email="load@example.com")).encode(),
             {"Content-Type": "application/json"})

        form = "grant_type=client_credentials&scope=orders:read"
        t, c, s = 1, args.conns, args.seconds
        token_env = {"WRK_BODY": form, "WRK_AUTH": token_auth}
        login_env = {"WRK_BODY": json.dumps(login)}
        runs = {}
        # Logins wait behind tokens on purpose (Argon2id at the lowest priority), so one that
        # outlasts wrk's timeout is reported, not fatal.
        for name, label, make in [
            ("healthz", "GET  /healthz", lambda: wrk(args, "/healthz", t, c, s)),
            ("jwks", "GET  /.well-known/jwks.json", lambda: wrk(args, "/.well-known/jwks.json", t, c, s)),
            ("token", "POST token: access token only",
             lambda: wrk(args, "/oauth2/v1/token", t, c, s, "post-form.lua", token_env)),
            ("cc-refresh", "POST token: + refresh token (durable)",
             lambda: wrk(args, "/oauth2/v1/token", t, c, s, "post-form.lua",
                         {"WRK_BODY": form, "WRK_AUTH": refresh_auth})),
            ("redeem", "POST token: refresh redemption (durable)",
             lambda: wrk(args, "/oauth2/v1/token", t, c, s, "redeem.lua", {"WRK_TOKENS": tokens})),
            ("logins-alone", "POST /consumer/login alone (c8)",
             lambda: wrk(args, "/consumer/login", 1, 8, s, "post-json.lua", login_env)),
        ]:
            strict = not name.startswith("logins")
            runs[name] = dict(measured(server, name, make, strict), label=label)
        # The floor pair again, alternated: the ratio of medians of adjacent runs holds up
        # better than one pair on a machine whose neighbours come and go.
        floors = [(runs["healthz"]["cpu_us"], runs["token"]["cpu_us"])]
        matched = [healthz_at(server, args, runs["token"]["rps"])]
        for _ in range(args.rounds - 1):
            h = measured(server, "healthz", lambda: wrk(args, "/healthz", t, c, s))
            tk = measured(server, "token", lambda: wrk(args, "/oauth2/v1/token", t, c, s,
                                                      "post-form.lua", token_env))
            floors.append((h["cpu_us"], tk["cpu_us"]))
            matched.append(healthz_at(server, args, tk["rps"]))
        # Logins (Argon2id) hammering the server while tokens are issued: the token rate must hold.
        flood = wrk(args, "/consumer/login", 1, 8, s, "post-json.lua", login_env)
        runs["token-with-logins"] = dict(
            measured(server, "token-with-logins",
                     lambda: wrk(args, "/oauth2/v1/token", t, c, s, "post-form.lua", token_env)),
            label="POST token: access only, during logins")
        logins_during = parse("logins", flood.communicate()[0], strict=False)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)

    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} cores, "
          f"wrk -t1 -c{args.conns}, {args.seconds}s each")
    print(f"{'scenario':<42} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'server CPU µs/req':>18}")
    for r in runs.values():
        print(f"{r['label']:<42} {r['rps']:>9.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
              f"{r['cpu_us']:>18.1f}")
    print(f"{'POST /consumer/login during tokens':<42} {logins_during['rps']:>9.0f}")
    print(f"raw Ed25519 signature (criterion median):  {sign_us:.1f} µs")
    h, tk = runs["healthz"], runs["token"]
    healthz_cpu = statistics.median(f[0] for f in floors)
    token_cpu = statistics.median(f[1] for f in floors)
    floor = token_cpu / (healthz_cpu + sign_us)
    pairs = ", ".join(f"{t:.1f}/{h:.1f}" for h, t in floors)
    print(f"token / healthz CPU µs, {len(floors)} alternated runs: {pairs}")
    print(f"token CPU / (healthz CPU + raw sign), medians: {floor:.2f}   (target <= {FLOOR_TARGET})")
    at_rate = statistics.median(matched)
    floor_at_rate = token_cpu / (at_rate + sign_us)
    print(f"  the same with healthz at the token's rate ({', '.join(f'{m:.1f}' for m in matched)} µs):"
          f" {floor_at_rate:.2f}")
    print(f"token p99 at {args.conns} connections:            {tk['p99_ms']:.2f} ms "
          f"(target < {P99_TARGET_MS} ms)")
    print(f"ratio access-token / healthz rate:         {tk['rps'] / h['rps']:.2f}")
    print(f"ratio with refresh / access-only:          {runs['cc-refresh']['rps'] / tk['rps']:.2f}   (target >= 0.5)")
    print(f"ratio refresh redemption / access-only:    {runs['redeem']['rps'] / tk['rps']:.2f}   (target >= 0.4)")
    print(f"ratio access-only during logins / alone:   {runs['token-with-logins']['rps'] / tk['rps']:.2f}   (target >= 0.8)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "raw_sign_us": sign_us, "floors": floors,
                       "floor_ratio": floor, "healthz_at_token_rate": matched,
                       "floor_ratio_at_token_rate": floor_at_rate}, f, indent=1)


if __name__ == "__main__":
    main()
