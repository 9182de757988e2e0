#!/usr/bin/env python3
"""The challenge's cost: send-code with a solved proof of work on every
request against send-code without one, same machine, same run (the issue's
target: >= 0.8 x). Challenges are written straight into the database with
their salts computed here (HMAC of the id under SECRET_KEY, as authmail
derives them) and solved here at CHALLENGE_BITS=8, so the load measures the
server's side only: redeeming (one row deleted) and one SHA-256.
Run by bench/run after bench.py (needs the release binary and wrk)."""

import hashlib
import hmac
import os
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BITS = 8


def salt(challenge_id):
    mac = hmac.new(bench.SECRET.encode(), digestmod=hashlib.sha256)
    mac.update(b"authmail challenge salt v1")
    data = challenge_id.encode()
    mac.update(struct.pack(">Q", len(data)))
    mac.update(data)
    return mac.digest()[:16].hex()


def solve(s):
    n = 0
    while True:
        h = hashlib.sha256(f"{s}{n}".encode()).digest()
        if h[0] == 0:  # 8 leading zero bits
            return str(n)
        n += 1


def prepare(app, n, tag):
    """n live work challenges in `app`'s database and their solutions, one per line."""
    path = os.path.join(tempfile.mkdtemp(prefix="authmail-bench-pow-"), f"solved-{tag}.txt")
    expires = int(time.time()) + 3600  # outlives the run; a real one lives 120 s
    rows, lines = [], []
    for i in range(n):
        cid = f"{tag}x{i:08d}"
        rows.append((cid, "work", BITS, expires))
        lines.append(f"{cid} {solve(salt(cid))}")
    bench.insert_rows(app.db, "challenges", ("id", "kind", "bits", "expires_at"), rows)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main():
    plain, solved = [], []
    for run in range(bench.RUNS):
        sink = bench.Sink()
        app = bench.Authmail(smtp_port=sink.port)
        rate, _ = bench.wrk(app.base + "/api/auth/send-code", "send_code.lua", env={"BENCH_TAG": f"p{run}"})
        plain.append(rate)
        app.stop()
        app = bench.Authmail(smtp_port=sink.port, env={"CHALLENGE": "always", "CHALLENGE_BITS": str(BITS)})
        secs = float(bench.DURATION.rstrip("s"))
        path = prepare(app, int(rate * secs * 1.5) + 1000, f"r{run}")
        rate, _ = bench.wrk(app.base + "/api/auth/send-code", "send_code_solved.lua",
                            env={"BENCH_TAG": f"s{run}", "BENCH_SOLVED": path})
        solved.append(rate)
        app.stop()
        sink.stop()
    p, s = bench.median(plain), bench.median(solved)
    ok = "yes" if s / p >= 0.8 else "NO"
    print(f"{'send-code solved':16} {s:,.0f} req/s with a solved challenge = {s / p:.2f} x "
          f"{p:,.0f} req/s without   >= 0.8 x   {ok}")


if __name__ == "__main__":
    main()  # bench.py's atexit hook ends every process started
