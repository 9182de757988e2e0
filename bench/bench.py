#!/usr/bin/env python3
"""authmail benchmark: every row measured side by side in one run, medians
of RUNS runs, printed as one table. Started by bench/run, which builds the
release binary and fetches the tools (wrk, Postfix's smtp-sink/smtp-source).

Limits are set to 0 (disabled) for the load rows: the bench measures the
code path, not the rate limiter refusing requests.
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "target", "release", "authmail")
POSTFIX = os.environ.get("POSTFIX_DIR", os.path.join(ROOT, "target", "bench-tools", "postfix"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DURATION = os.environ.get("BENCH_DURATION", "5s")
SECRET = "bench-secret-key-0123456789abcdef0123456789"
ADMIN = "bench-admin-token-0123456789abcdef"


STARTED = []


def cleanup():
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()


import atexit  # noqa: E402

atexit.register(cleanup)


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def http_post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def rss_kb(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Sink:
    """Postfix's smtp-sink: accepts and discards mail as fast as it can."""

    def __init__(self):
        self.port = free_port()
        env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(POSTFIX, "usr/lib/postfix"))
        args = [os.path.join(POSTFIX, "usr/sbin/smtp-sink")]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        self.proc = subprocess.Popen(args + [f"127.0.0.1:{self.port}", "1024"], env=env)
        STARTED.append(self.proc)
        wait_port(self.port)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def wait_port(port, timeout=10):
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Postgres:
    """A throwaway PostgreSQL cluster (Debian's server binaries, initdb in a
    temp dir, a free port), at its default durability: every commit is
    flushed to disk (fsync, synchronous_commit on)."""

    def __init__(self):
        import glob
        import pwd

        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
        self.dir = tempfile.mkdtemp(prefix="authmail-bench-pg-")
        self.as_pg = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            os.chown(self.dir, pwd.getpwnam("postgres").pw_uid, -1)
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.ctl = os.path.join(bindir, "pg_ctl")
        self.data = os.path.join(self.dir, "data")
        subprocess.run(self.as_pg + [os.path.join(bindir, "initdb"), "-D", self.data, "-U", "authmail", "-A", "trust"],
                       check=True, capture_output=True)
        self.port = free_port()
        subprocess.run(self.as_pg + [self.ctl, "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                                     f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
                                     "start"], check=True, capture_output=True)
        self.databases = 0

    def new_database(self):
        self.databases += 1
        name = f"bench{self.databases}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return f"postgres://authmail@127.0.0.1:{self.port}/{name}"

    def psql(self, url_or_db, sql):
        db = url_or_db.rsplit("/", 1)[-1]
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", "authmail",
                        "-d", db], input=sql, text=True, check=True, capture_output=True)

    def stop(self):
        subprocess.run(self.as_pg + [self.ctl, "-D", self.data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Authmail:
    """authmail on a free port; `db` is a database URL (a fresh SQLite file when None)."""

    def __init__(self, env=None, db=None, smtp_port=None):
        self.dir = tempfile.mkdtemp(prefix="authmail-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = db or f"sqlite://{os.path.join(self.dir, 'authmail.db')}"
        e = {
            "BIND": f"127.0.0.1:{self.port}",
            "DATABASE_URL": self.db,
            "SECRET_KEY": SECRET,
            "ADMIN_TOKEN": ADMIN,
            "RESEND_COOLDOWN_SECS": "0",
            "RATE_EMAIL_PER_HOUR": "0",
            "RATE_IP_PER_HOUR": "0",
            "RATE_GLOBAL_PER_HOUR": "0",
            "CHALLENGE": "off",
            "LOG_FORMAT": "json",
            "RUST_LOG": "warn",
        }
        if smtp_port:
            e.update(SMTP_SERVER="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_SECURITY="none", SMTP_FROM="bench@bench.test")
        e.update(env or {})
        self.started = time.monotonic()
        self.proc = subprocess.Popen([BIN, "serve"], env=e, cwd=self.dir, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        while True:
            try:
                if http_get(self.base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("authmail exited at start")
            time.sleep(0.001)
        self.ready_ms = (time.monotonic() - self.started) * 1000

    def stats(self):
        return json.loads(http_get(self.base + "/api/admin/stats", ADMIN)[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def wrk(url, script=None, connections=64, duration=DURATION, env=None):
    """Runs wrk; returns (2xx requests per second, p99 ms)."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency"]
    if script:
        args += ["-s", os.path.join(HERE, "lua", script)]
    out = subprocess.run(args + [url], capture_output=True, text=True, env=dict(os.environ, **(env or {}))).stdout
    total = int(re.search(r"(\d+) requests in ([\d.]+)(m?s)", out).group(1))
    secs_match = re.search(r"requests in ([\d.]+)(ms|s|m)", out)
    secs = float(secs_match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[secs_match.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    ok = total - (int(bad.group(1)) if bad else 0)
    p99 = parse_latency(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    if errors:
        print(f"  (wrk {url}: {errors.group(0)})", file=sys.stderr)
    return ok / secs, p99


def parse_latency(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def median(xs):
    return statistics.median(xs)


# --- rows ---------------------------------------------------------------


def code_hash(email, purpose, code):
    mac = hmac.new(SECRET.encode(), digestmod=hashlib.sha256)
    mac.update(b"authmail code v1")
    for part in (email, purpose, code):
        data = part.encode()
        mac.update(struct.pack(">Q", len(data)))
        mac.update(data)
    return mac.digest()


PG = None  # the Postgres cluster, once started


def insert_rows(url, table, columns, rows):
    """Bulk insert straight into authmail's database, SQLite or PostgreSQL."""
    rows = list(rows)
    if url.startswith("sqlite://"):
        con = sqlite3.connect(url[len("sqlite://"):], timeout=120, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")  # waits for authmail's writer instead of failing
        marks = ", ".join("?" * len(columns))
        con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        con.execute("COMMIT")
        con.close()
        return

    def field(v):
        if isinstance(v, bytes):
            return "\\\\x" + v.hex()
        return str(v)

    data = "".join("\t".join(field(v) for v in row) + "\n" for row in rows)
    PG.psql(url, f"COPY {table} ({', '.join(columns)}) FROM STDIN;\n{data}\\.\n")


def prepare_login_codes(db, n, tag):
    """n accounts, each with a live login code whose digits we know."""
    path = os.path.join(tempfile.mkdtemp(prefix="authmail-bench-pairs-"), f"pairs-{tag}.txt")
    now = int(time.time())
    users, codes, lines = [], [], []
    for i in range(n):
        email = f"lc{tag}-{i}@bench.test"
        code = f"{(i * 7919) % 1000000:06d}"
        users.append((email, "not-a-hash", now))
        codes.append((email, "login", code_hash(email, "login", code), now + 3000, 0, 0))
        lines.append(f"{email} {code}")
    insert_rows(db, "users", ("email", "password_hash", "created_at"), users)
    insert_rows(db, "codes", ("email", "purpose", "code_hash", "expires_at", "attempts", "used"), codes)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def queue_mails(db, n):
    now = int(time.time())
    insert_rows(
        db, "outbox",
        ("message_id", "recipient", "kind", "lang", "payload", "next_attempt_at", "expires_at", "created_at"),
        ((f"<bench-{i}@bench.test>", f"d{i}@bench.test", "register", "en", "123456", 0, now + 86400, now)
         for i in range(n)),
    )


def migrated_db(backend):
    if backend == "postgres":
        db = PG.new_database()
    else:
        db = "sqlite://" + os.path.join(tempfile.mkdtemp(prefix="authmail-bench-db-"), "authmail.db")
    subprocess.run([BIN, "migrate"], env={"DATABASE_URL": db}, check=True, capture_output=True)
    return db


def drain(n, pool, backend="sqlite"):
    """Queues n mails, starts authmail against smtp-sink, times the drain."""
    sink = Sink()
    db = migrated_db(backend)
    queue_mails(db, n)
    app = Authmail({"SMTP_POOL_SIZE": str(pool)}, db=db, smtp_port=sink.port)
    t0 = time.monotonic()
    while app.stats()["queued"] > 0:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    peak = rss_kb(app.proc.pid)
    sent = app.stats()["sent"]
    app.stop()
    sink.stop()
    assert sent >= n, f"only {sent} of {n} sent"
    return n / elapsed, peak


def smtp_source_rate(n, sessions):
    sink = Sink()
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(POSTFIX, "usr/lib/postfix"))
    t0 = time.monotonic()
    subprocess.run(
        [os.path.join(POSTFIX, "usr/sbin/smtp-source"), "-d", "-s", str(sessions), "-m", str(n), "-l", "3000",
         "-f", "bench@bench.test", "-t", "d@bench.test", f"127.0.0.1:{sink.port}"],
        env=env, check=True,
    )
    rate = n / (time.monotonic() - t0)
    sink.stop()
    return rate


def register_user(app, email, password):
    status, _ = http_post(app.base + "/api/auth/send-code", {"email": email, "purpose": "register"})
    assert status == 202
    for _ in range(500):
        box = json.loads(http_get(app.base + "/dev/mailbox.json")[1])["messages"]
        found = [m for m in box if m["to"] == email]
        if found:
            code = re.search(r"\b(\d{6})\b", found[0]["text"]).group(1)
            break
        time.sleep(0.01)
    status, _ = http_post(app.base + "/api/auth/register", {"email": email, "password": password, "code": code})
    assert status == 201, status


def login_code_rate(app, tag):
    # More right codes than the fastest run can use: wrk would count the rest as failures.
    pairs = prepare_login_codes(app.db, int(40000 * float(DURATION.rstrip("s"))), tag)
    return wrk(app.base + "/api/auth/login-code", "login_code.lua", env={"BENCH_PAIRS": pairs})


def jwt_rate(app, tag):
    """POST /api/auth/jwt req/s for one signed-in session."""
    email, password = f"jwt{tag}@bench.test", "bench password 1"
    register_user(app, email, password)
    status, body = http_post(app.base + "/api/auth/login", {"email": email, "password": password})
    assert status == 200, status
    return wrk(app.base + "/api/auth/jwt", "jwt.lua", env={"BENCH_TOKEN": body["token"]})[0]


def jwt_only():
    """`bench/run jwt`: the JWT row and the /healthz ceiling it is measured against."""
    ceiling, jwt = [], []
    for run in range(RUNS):
        app = Authmail()
        ceiling.append(wrk(app.base + "/healthz")[0])
        jwt.append(jwt_rate(app, run))
        app.stop()
    c, j = median(ceiling), median(jwt)
    print()
    print(f"authmail bench (JWT row only): {RUNS} runs, median; {os.cpu_count()} cores; SQLite; wrk -t2 -c64 -d{DURATION}")
    print(f"{'HTTP ceiling':<16} {f'{c:,.0f} req/s on /healthz':<52} {'reference (1.0)':<34} yes")
    print(f"{'JWT issue':<16} {f'{j:,.0f} req/s = {j / c:.2f} x ceiling':<52} {'>= 0.3 x ceiling':<34} {'yes' if j / c >= 0.3 else 'NO'}")


def postgres_rows(pool):
    """send-code, login-code and delivery again with DATABASE_URL on PostgreSQL."""
    global PG
    PG = Postgres()
    send, login, delivery = [], [], []
    try:
        for run in range(RUNS):
            sink = Sink()
            app = Authmail(smtp_port=sink.port, db=PG.new_database())
            send.append(wrk(app.base + "/api/auth/send-code", "send_code.lua", env={"BENCH_TAG": f"pg{run}"})[0])
            while app.stats()["queued"] > 0:
                time.sleep(0.1)
            login.append(login_code_rate(app, f"pg{run}")[0])
            app.stop()
            sink.stop()
            delivery.append(drain(20000, pool, "postgres")[0])
    finally:
        PG.stop()
    return median(send), median(login), median(delivery)


def main():
    sys.modules.setdefault("bench", sys.modules[__name__])  # peer.py imports this module by name
    import peer

    start_ms, ceiling, send, send_p99, login_code, idle, loaded = [], [], [], [], [], [], []
    jwt = []
    half_p99 = []
    peer_send, peer_verify = [], []
    for run in range(RUNS):
        sink = Sink()
        app = Authmail(smtp_port=sink.port)
        start_ms.append(app.ready_ms)
        time.sleep(1)
        idle.append(rss_kb(app.proc.pid, "VmRSS"))
        rate, _ = wrk(app.base + "/healthz")
        ceiling.append(rate)
        rate, p99 = wrk(app.base + "/api/auth/send-code", "send_code.lua", env={"BENCH_TAG": str(run)})
        send.append(rate)
        send_p99.append(p99)
        loaded.append(rss_kb(app.proc.pid))
        # Half the measured rate: 16 connections, each pausing between requests.
        delay = max(0.0, 16 * 1000 / (rate / 2))
        _, p99 = wrk(app.base + "/api/auth/send-code", "send_code.lua", connections=16,
                     env={"BENCH_TAG": f"h{run}", "BENCH_DELAY_MS": f"{delay:.3f}"})
        half_p99.append(p99)
        while app.stats()["queued"] > 0:  # let the worker finish the send-code mail first
            time.sleep(0.1)
        rate, _ = login_code_rate(app, str(run))
        login_code.append(rate)
        app.stop()
        sink.stop()
        rate, verify = peer.peer_run(str(run))  # Better Auth, the same two rows, right after
        peer_send.append(rate)
        peer_verify.append(verify)

    for run in range(RUNS):  # on the dev mailbox, where the row's account can be registered
        app = Authmail()
        jwt.append(jwt_rate(app, run))
        app.stop()

    # Password login: argon2id on blocking threads while /healthz is measured.
    dev = Authmail()
    register_user(dev, "pw@bench.test", "bench password 1")
    healthz_p99, login_rate = [], []
    for _ in range(RUNS):
        loader = subprocess.Popen(
            ["wrk", "-t1", "-c16", "-d8s", "-s", os.path.join(HERE, "lua", "login.lua"), dev.base + "/api/auth/login"],
            stdout=subprocess.PIPE, text=True)
        time.sleep(1)  # let the logins saturate the CPU first
        _, p99 = wrk(dev.base + "/healthz", connections=4, duration="5s")
        healthz_p99.append(p99)
        out = loader.communicate()[0]
        login_rate.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
    dev.stop()

    pool = 4
    deliveries, source = [], []
    peak_20k = 0
    for _ in range(RUNS):
        rate, peak_20k = drain(20000, pool)
        deliveries.append(rate)
        source.append(smtp_source_rate(20000, pool))
    rate_100k, peak_100k = drain(100000, pool)
    pg_send, pg_login, pg_delivery = postgres_rows(pool)

    c = median(ceiling)
    size_mb = os.path.getsize(BIN) / 1e6
    print()
    print(f"authmail bench: {RUNS} runs, median; {os.cpu_count()} cores; SQLite; wrk -t2 -c64 -d{DURATION}")
    print(f"{'row':<16} {'measured':<52} {'target':<34} ok")
    def row(name, measured, target, ok):
        print(f"{name:<16} {measured:<52} {target:<34} {'yes' if ok else 'NO'}")
    row("HTTP ceiling", f"{c:,.0f} req/s on /healthz", "reference (1.0)", True)
    s = median(send)
    row("send-code", f"{s:,.0f} req/s = {s / c:.2f} x ceiling; p99 {median(send_p99):.1f} ms", ">= 0.15 x ceiling", s / c >= 0.15)
    row("send-code half", f"p99 {median(half_p99):.2f} ms at ~{s / 2:,.0f} req/s", "p99 <= 10 ms", median(half_p99) <= 10)
    lc = median(login_code)
    row("login-code", f"{lc:,.0f} req/s = {lc / c:.2f} x ceiling", ">= 0.15 x ceiling", lc / c >= 0.15)
    j = median(jwt)
    row("JWT issue", f"{j:,.0f} req/s = {j / c:.2f} x ceiling", ">= 0.3 x ceiling", j / c >= 0.3)
    ps, pv = median(peer_send), median(peer_verify)
    row("peer send-code", f"authmail {s:,.0f} req/s = {s / ps:.1f} x Better Auth ({ps:,.0f} req/s)", ">= 10 x", s / ps >= 10)
    row("peer verify", f"authmail {lc:,.0f} req/s = {lc / pv:.1f} x Better Auth ({pv:,.0f} req/s)", ">= 5 x", lc / pv >= 5)
    row("password login", f"{median(login_rate):,.1f} logins/s; /healthz p99 {median(healthz_p99):.2f} ms", "/healthz p99 <= 5 ms", median(healthz_p99) <= 5)
    d, src = median(deliveries), median(source)
    row("delivery", f"{d:,.0f} mails/s = {d / src:.2f} x smtp-source ({src:,.0f}/s, {pool} sessions)", ">= 0.5 x smtp-source", d / src >= 0.5)
    row("memory idle", f"{median(idle) / 1024:.1f} MB RSS", "<= 30 MB", median(idle) / 1024 <= 30)
    row("memory load", f"{max(loaded) / 1024:.1f} MB peak RSS under send-code load", "<= 100 MB", max(loaded) / 1024 <= 100)
    row("memory queue", f"peak {peak_20k / 1024:.1f} MB (20k queued) vs {peak_100k / 1024:.1f} MB (100k), drain {rate_100k:,.0f}/s", "no growth with queue length", peak_100k <= peak_20k * 1.2)
    row("start", f"{median(start_ms):.0f} ms to /readyz 200 (fresh database)", "<= 200 ms", median(start_ms) <= 200)
    row("binary", f"{size_mb:.1f} MB", "<= 20 MB", size_mb <= 20)
    print()
    print("the same rows on PostgreSQL (throwaway local cluster, default durability: fsync and synchronous_commit on)")
    row("send-code", f"{pg_send:,.0f} req/s = {pg_send / c:.2f} x ceiling", ">= 0.15 x ceiling", pg_send / c >= 0.15)
    row("login-code", f"{pg_login:,.0f} req/s = {pg_login / c:.2f} x ceiling", ">= 0.15 x ceiling", pg_login / c >= 0.15)
    row("delivery", f"{pg_delivery:,.0f} mails/s = {pg_delivery / src:.2f} x smtp-source", ">= 0.5 x smtp-source",
        pg_delivery / src >= 0.5)


if __name__ == "__main__":
    jwt_only() if sys.argv[1:] == ["jwt"] else main()
