#!/usr/bin/env python3
"""A webhook receiver for authmail's integration tests. It checks every
delivery's signature with the `standardwebhooks` package (the reference
implementation of Standard Webhooks, independent of authmail's code).

    webhook_receiver.py --port-file F --log L --secret whsec_... [--fail-first N]
    webhook_receiver.py --port-file F --log L --silent

Listens on 127.0.0.1 (a free port) and writes the port to F once it listens.
Every POST is appended to L as one JSON object a line: the webhook-id,
webhook-timestamp and webhook-signature headers, the body as received, the
Authorization header, whether the signature verified (and the error if not),
and the status answered. A delivery that does not verify is answered 400;
the first N that do are answered 500; the rest 204.

--silent accepts connections and never reads or answers anything.
"""

import argparse
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def serve(args):
    webhook = Webhook(args.secret)
    lock = threading.Lock()
    verified = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            entry = {
                "id": self.headers.get("webhook-id"),
                "timestamp": self.headers.get("webhook-timestamp"),
                "signature": self.headers.get("webhook-signature"),
                "authorization": self.headers.get("authorization"),
                "content_type": self.headers.get("content-type"),
                "path": self.path,
                "body": body.decode(),
                "verified": False,
                "error": None,
            }
            try:
                webhook.verify(body, dict(self.headers.items()))
                entry["verified"] = True
            except Exception as e:  # any failure to verify is the test's failure
                entry["error"] = f"{type(e).__name__}: {e}"
            with lock:
                if not entry["verified"]:
                    status = 400
                else:
                    verified[0] += 1
                    status = 500 if verified[0] <= args.fail_first else 204
                entry["status"] = status
                with open(args.log, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            self.send_response(status)
            if status == 500:
                reply = b"receiver down for the test"
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            else:
                self.send_header("content-length", "0")
                self.end_headers()

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    announce(args.port_file, server.server_address[1])
    server.serve_forever()


def serve_silently(args):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    announce(args.port_file, listener.getsockname()[1])
    held = []
    while True:
        conn, _ = listener.accept()
        held.append(conn)  # kept open, never read, never answered
        with open(args.log, "a") as f:
            f.write(json.dumps({"connection": len(held)}) + "\n")


def announce(port_file, port):
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, port_file)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--secret")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--silent", action="store_true")
    args = p.parse_args()
    if args.silent:
        serve_silently(args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
