#!/usr/bin/env python3
"""A real SMTP server for authmail's integration tests, built on aiosmtpd.

    smtp_server.py gen-certs DIR
        Writes a throwaway CA (ca.pem), a certificate for localhost and
        127.0.0.1 (server.pem, server.key) and one for another host name
        (other.pem, other.key).

    smtp_server.py serve --port-file F --spool S [--port P]
                         [--mode plain|starttls|tls|silent]
                         [--cert C --key K] [--auth USER:PASS] [--auth-fail]
                         [--tempfail N] [--reject-rcpt SUBSTRING]
                         [--fault SUBSTRING:STAGE:TIMES:REPLY]... [--idle-timeout SECS]
                         [--reject-sender SUBSTRING]
        Listens on 127.0.0.1 (port P, or a free one), writes the port to F
        once it listens, and appends every accepted message to S as one JSON
        object a line. Every RCPT TO it sees, accepted or not, is appended to
        S.rcpt, so tests can prove that no mail went to an injected address.

Modes: plain (no TLS), starttls (STARTTLS offered and required before
MAIL/AUTH), tls (implicit TLS from the first byte), silent (accepts TCP and
never greets). --auth-fail answers 535 to every login; --tempfail N answers
451 to the first N messages at the end of DATA, then accepts.

--fault scripts a failure for recipients containing SUBSTRING, TIMES times
(0: always): STAGE rcpt or data answers REPLY to RCPT TO or to the end of
DATA; drop-data keeps the message but drops the connection after the final
dot, before any reply; drop-mid drops it after the first line of DATA.
--idle-timeout closes connections idle that long (as busy relays do) and
logs each such close to S.events.
--reject-sender answers 553 to a MAIL FROM containing the text, as QQ Mail does
when the sender is not the logged-in mailbox.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


def gen_certs(directory):
    import trustme

    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(os.path.join(directory, "ca.pem"))
    for name, hosts in (("server", ["localhost", "127.0.0.1"]), ("other", ["wrong.example"])):
        cert = ca.issue_cert(*hosts)
        with open(os.path.join(directory, f"{name}.pem"), "wb") as f:
            for pem in cert.cert_chain_pems:
                f.write(pem.bytes())
        cert.private_key_pem.write_to_path(os.path.join(directory, f"{name}.key"))


def parse_message(raw: bytes) -> dict:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = html = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and text is None:
            text = part.get_content()
        elif kind == "text/html" and html is None:
            html = part.get_content()
    return {
        "subject": str(msg.get("Subject", "")),
        "headers": {k.lower(): str(v) for k, v in msg.items()},
        "text": text,
        "html": html,
    }


class Handler:
    def __init__(self, args):
        self.spool = args.spool
        self.tempfail = args.tempfail
        self.reject_rcpt = args.reject_rcpt
        self.reject_sender = args.reject_sender
        self.faults = []
        for spec in args.fault or []:
            pattern, stage, times, reply = spec.split(":", 3)
            self.faults.append({"pattern": pattern, "stage": stage, "left": int(times) or -1, "reply": reply})

    def take_fault(self, stage, rcpts):
        """The fault scripted for this stage and these recipients, used up once."""
        for f in self.faults:
            if f["stage"] == stage and f["left"] != 0 and any(f["pattern"] in r for r in rcpts):
                f["left"] -= 1 if f["left"] > 0 else 0
                return f
        return None

    def _append(self, path, record):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.reject_sender and self.reject_sender in address:
            return "553 5.7.1 Sender address rejected: not owned by the logged-in user"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self._append(self.spool + ".rcpt", {"rcpt": address})
        fault = self.take_fault("rcpt", [address])
        if fault:
            return fault["reply"]
        if self.reject_rcpt and self.reject_rcpt in address:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        fault = self.take_fault("data", envelope.rcpt_tos)
        if fault:
            return fault["reply"]
        dropped = self.take_fault("drop-data", envelope.rcpt_tos)
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 Temporary failure, try again later"
        raw = envelope.original_content or envelope.content
        # A bare LF (not preceded by CR) in what arrived means the client did
        # not normalise line ends: the RUSTSEC-2026-0561 smuggling precondition.
        bare_lf = any(b == 0x0A and (i == 0 or raw[i - 1] != 0x0D) for i, b in enumerate(raw))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", "replace"),
            "bare_lf": bare_lf,
        }
        record.update(parse_message(raw))
        self._append(self.spool, record)
        if dropped:
            # The message is in; the client never hears so.
            server.transport.abort()
            await asyncio.get_running_loop().create_future()
        return "250 2.0.0 Message accepted for delivery"


class FaultySMTP(SMTP):
    async def smtp_DATA(self, arg):
        handler = self.event_handler
        if self.envelope is not None and handler.take_fault("drop-mid", self.envelope.rcpt_tos):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")
            self.transport.abort()
            await asyncio.get_running_loop().create_future()
        return await super().smtp_DATA(arg)

    def _timeout_cb(self):
        self.event_handler._append(self.event_handler.spool + ".events", {"event": "idle-close"})
        super()._timeout_cb()


def make_authenticator(args):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if args.auth_fail or args.auth is None:
            return AuthResult(success=False, handled=False)
        user, _, password = args.auth.partition(":")
        login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
        given = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
        return AuthResult(success=(login == user and given == password))

    return authenticator


async def serve(args):
    context = None
    if args.mode in ("starttls", "tls"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    loop = asyncio.get_running_loop()
    handler = Handler(args)
    wants_auth = args.auth is not None or args.auth_fail

    def factory():
        return FaultySMTP(
            handler,
            hostname="test.smtp.local",
            tls_context=context if args.mode == "starttls" else None,
            require_starttls=args.mode == "starttls",
            auth_required=wants_auth,
            auth_require_tls=args.mode == "starttls",
            authenticator=make_authenticator(args) if wants_auth else None,
            loop=loop,
            timeout=args.idle_timeout,
        )

    if args.mode == "silent":

        async def never_greet(reader, writer):
            await reader.read()  # hold the connection open; say nothing

        server = await asyncio.start_server(never_greet, "127.0.0.1", args.port)
    else:
        server = await loop.create_server(
            factory, "127.0.0.1", args.port, ssl=context if args.mode == "tls" else None
        )
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)  # the reader never sees a half-written port
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    certs = sub.add_parser("gen-certs")
    certs.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--spool", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--mode", choices=["plain", "starttls", "tls", "silent"], default="plain")
    s.add_argument("--cert")
    s.add_argument("--key")
    s.add_argument("--auth")
    s.add_argument("--auth-fail", action="store_true")
    s.add_argument("--tempfail", type=int, default=0)
    s.add_argument("--reject-rcpt")
    s.add_argument("--fault", action="append")
    s.add_argument("--idle-timeout", type=float, default=300)
    s.add_argument("--reject-sender")
    args = parser.parse_args()
    if args.command == "gen-certs":
        gen_certs(args.dir)
    else:
        try:
            asyncio.run(serve(args))
        except KeyboardInterrupt:
            sys.exit(0)


if __name__ == "__main__":
    main()
