#!/usr/bin/env python3
"""Webhook delivery rate: N user events queued straight into the outbox,
then authmail (release build, SQLite) POSTs them to a local receiver that
verifies every signature with the `standardwebhooks` package and answers
204. Prints events/s, the median of BENCH_RUNS runs. Run by bench/run after
the main table, or alone once bench/run has built the binary:

    python3 bench/webhooks.py [EVENTS]   (default 20000)
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the main bench's helpers: Authmail, migrated_db, ...)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


class Receiver:
    """Verifies each delivery (standardwebhooks) and answers 204 over
    keep-alive connections; counts the verified ones."""

    def __init__(self):
        from standardwebhooks import Webhook

        webhook = Webhook(SECRET)
        self.verified = 0
        self.rejected = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    webhook.verify(body, dict(self.headers.items()))
                    ok = True
                except Exception:
                    ok = False
                with lock:
                    if ok:
                        receiver.verified += 1
                    else:
                        receiver.rejected += 1
                self.send_response(204 if ok else 400)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def queue_events(db, n):
    now = int(time.time())
    bench.insert_rows(
        db, "outbox",
        ("message_id", "recipient", "kind", "lang", "payload", "next_attempt_at", "expires_at", "created_at",
         "channel"),
        ((f"msg_bench{i:08d}", "bench receiver", "webhook", "",
          json.dumps({"type": "user.created", "timestamp": "2026-12-01T08:00:00Z",
                      "data": {"user": {"id": str(i), "email": f"w{i}@bench.test"}}}, separators=(",", ":")),
          0, now + 86400, now, "webhook")
         for i in range(n)),
    )


def webhooks_queued(app):
    with urllib.request.urlopen(app.base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return float(re.search(r"^authmail_webhooks_queued (\S+)$", text, re.M).group(1))


def drain(n):
    """Queues n events, starts authmail against the receiver, times the drain."""
    receiver = Receiver()
    db = bench.migrated_db("sqlite")
    queue_events(db, n)
    app = bench.Authmail({"WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET}, db=db)
    t0 = time.monotonic()
    while webhooks_queued(app) > 0:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    app.stop()
    receiver.stop()
    assert receiver.verified >= n and receiver.rejected == 0, (receiver.verified, receiver.rejected)
    return n / elapsed


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rates = [drain(n) for _ in range(bench.RUNS)]
    print(f"webhook delivery  {bench.median(rates):,.0f} events/s ({n:,} queued events to a local receiver that "
          f"verifies each with standardwebhooks; {bench.RUNS} runs, median; SQLite)")


if __name__ == "__main__":
    main()
