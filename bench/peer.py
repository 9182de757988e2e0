#!/usr/bin/env python3
"""The bench's "peer" row: Better Auth (bench/peers/better-auth/server.mjs,
its email-OTP plugin on SQLite through better-sqlite3, mail through a pooled
nodemailer transport) measured the way bench.py measures authmail:

- send: POST /api/auth/email-otp/send-verification-otp for a new address on
  every request (bench/lua/send_code.lua with Better Auth's fields, the same
  address pattern), each mailing a code to the same smtp-sink;
- verify: POST /api/auth/sign-in/email-otp with right codes prepared
  beforehand, for accounts that already exist (bench/lua/login_code.lua, its
  code field named "otp"): the rows are written straight into the peer's SQLite file,
  in the form the plugin stores them (identifier "sign-in-otp-<email>", value
  "<otp>:<attempts>", storeOTP "plain", its default).

bench.py calls peer_run() once per run; `python3 bench/peer.py` runs the peer
alone (BENCH_RUNS, BENCH_DURATION as for bench.py).
"""

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import bench

PEER_DIR = os.path.join(bench.HERE, "peers", "better-auth")
NODE = os.environ.get("NODE", "node")


def npm_env():
    """As bench/run installs: better-sqlite3 cannot fetch a prebuilt binary here,
    so node-gyp builds it, against the installed Node's headers."""
    env = dict(os.environ, npm_config_build_from_source="true")
    if os.path.isdir("/usr/include/node"):
        env.setdefault("npm_config_nodedir", "/usr")
    return env


def install():
    """npm ci once, when node_modules is missing (bench/run does it too)."""
    if os.path.isdir(os.path.join(PEER_DIR, "node_modules", "better-auth")):
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, env=npm_env(), check=True,
                   stdout=subprocess.DEVNULL)


class Peer:
    """The Better Auth server on a free port, a fresh database, mail to smtp_port."""

    def __init__(self, smtp_port):
        install()
        self.dir = tempfile.mkdtemp(prefix="peer-bench-")
        self.port = bench.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = os.path.join(self.dir, "peer.db")
        env = dict(os.environ, PORT=str(self.port), DB_PATH=self.db, SMTP_PORT=str(smtp_port),
                   BETTER_AUTH_SECRET=bench.SECRET, NODE_ENV="production")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([NODE, os.path.join(PEER_DIR, "server.mjs")], env=env, cwd=self.dir,
                                     stdout=subprocess.DEVNULL)
        bench.STARTED.append(self.proc)
        while True:
            try:
                if bench.http_get(self.base + "/api/auth/ok")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("the Better Auth peer exited at start")
            time.sleep(0.01)
        self.ready_ms = (time.monotonic() - self.started) * 1000

    def stats(self):
        """{queued, sent, failed, pending}: mails handed to nodemailer, accepted by the sink, ..."""
        return json.loads(bench.http_get(self.base + "/bench/stats")[1])

    def drain(self, timeout=120):
        """Waits until every mail started so far has reached the sink (or failed)."""
        deadline = time.monotonic() + timeout
        while (s := self.stats())["pending"] > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"peer mail not drained: {s}")
            time.sleep(0.1)
        return s

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def iso(t):
    """Better Auth's SQLite date format (what its Kysely adapter writes)."""
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prepare_sign_in_codes(db, n, tag):
    """n existing, verified accounts, each with a live sign-in OTP whose digits
    we know: the rows the plugin's send would have written."""
    path = os.path.join(os.path.dirname(db), f"pairs-{tag}.txt")
    now = datetime.now(timezone.utc)
    created, expires = iso(now), iso(now + timedelta(seconds=3000))
    users, codes, lines = [], [], []
    for i in range(n):
        email = f"lc{tag}-{i}@bench.test"
        code = f"{(i * 7919) % 1000000:06d}"
        users.append((secrets.token_hex(16), "", email, 1, created, created))
        codes.append((secrets.token_hex(16), f"sign-in-otp-{email}", f"{code}:0", expires, created, created))
        lines.append(f"{email} {code}")
    con = sqlite3.connect(db, timeout=120, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    con.executemany('INSERT INTO "user" (id, name, email, emailVerified, createdAt, updatedAt) VALUES (?, ?, ?, ?, ?, ?)',
                    users)
    con.executemany("INSERT INTO verification (id, identifier, value, expiresAt, createdAt, updatedAt)"
                    " VALUES (?, ?, ?, ?, ?, ?)", codes)
    con.execute("COMMIT")
    con.close()
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read() or b"null")


def duration_secs(text):
    value, unit = float(text.rstrip("smh")), text[-1]
    return value * {"s": 1, "m": 60, "h": 3600}.get(unit, 1)


def peer_run(tag, pairs=60000):
    """One run of the peer, as bench.main() does one of authmail: returns
    (send req/s, verify req/s), 2xx responses only (bench.wrk counts those)."""
    sink = bench.Sink()
    peer = Peer(sink.port)
    send_url = peer.base + "/api/auth/email-otp/send-verification-otp"
    verify_url = peer.base + "/api/auth/sign-in/email-otp"

    # Checked before timing: a send answers 200 and its mail reaches the sink;
    # a right code signs in (200 and a session token), a wrong one does not.
    status, body = post(send_url, {"email": f"check{tag}@bench.test", "type": "sign-in"})
    assert status == 200 and body == {"success": True}, (status, body)
    s = peer.drain()
    assert s["sent"] == 1 and s["failed"] == 0, s

    send, _ = bench.wrk(send_url, "send_code.lua", env={"BENCH_TAG": f"p{tag}", "BENCH_FIELDS": '"type":"sign-in"'})
    s = peer.drain()  # let the mail of the send finish first, as bench.main() does for authmail
    assert s["failed"] == 0, s
    assert s["sent"] == s["queued"] >= send * duration_secs(bench.DURATION) * 0.95, (s, send)

    check = prepare_sign_in_codes(peer.db, 1, f"p{tag}check")  # a pair of its own, not in wrk's list
    with open(check) as f:
        email, code = f.readline().split()
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    try:
        post(verify_url, {"email": email, "otp": wrong})
        raise AssertionError("a wrong code signed in")
    except urllib.error.HTTPError as e:
        assert e.code == 400, e.code
    status, body = post(verify_url, {"email": email, "otp": code})
    assert status == 200 and body["token"] and body["user"]["email"] == email, (status, body)

    pairs_path = prepare_sign_in_codes(peer.db, pairs, f"p{tag}")
    verify, _ = bench.wrk(verify_url, "login_code.lua", env={"BENCH_PAIRS": pairs_path, "BENCH_CODE_FIELD": "otp"})

    peer.stop()
    sink.stop()
    return send, verify


def main():
    send, verify = [], []
    for run in range(bench.RUNS):
        s, v = peer_run(str(run))
        send.append(s)
        verify.append(v)
        print(f"run {run}: send {s:,.0f} req/s, verify {v:,.0f} req/s", file=sys.stderr)
    print(f"Better Auth peer: {bench.RUNS} runs, median; wrk -t2 -c64 -d{bench.DURATION}")
    print(f"peer send    {bench.median(send):,.0f} req/s")
    print(f"peer verify  {bench.median(verify):,.0f} req/s")


if __name__ == "__main__":
    main()
