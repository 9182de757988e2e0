#!/usr/bin/env python3
"""An example app that signs its users in with authmail: its own signup and
login pages, authmail called from this backend, users trusted only through
JWTs checked against authmail's public keys, and a profile made when
authmail's `user.created` webhook arrives. docs/integrate.md walks through it.

Settings (environment):
  AUTHMAIL_URL     where this backend reaches authmail (http://127.0.0.1:8080)
  AUTHMAIL_ISSUER  authmail's PUBLIC_URL, the JWTs' iss (default AUTHMAIL_URL)
  JWT_AUDIENCE     authmail's JWT_AUDIENCE, when it is set there
  WEBHOOK_SECRET   authmail's WEBHOOK_SECRET (whsec_...)
  APP_BIND         this app's address (127.0.0.1:8000)
  APP_DB           this app's SQLite file (example.db)
  APP_TRUSTED_PROXIES  comma-separated networks of the reverse proxy in front
                   of this app, whose X-Forwarded-For is believed (none)
"""

import html
import json as jsonlib
import ipaddress
import os
import signal
import sqlite3
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from standardwebhooks import Webhook

from authmail_client import Authmail, Jwks, Verifier

AUTHMAIL_URL = os.environ.get("AUTHMAIL_URL", "http://127.0.0.1:8080").rstrip("/")
authmail = Authmail(AUTHMAIL_URL)
verifier = Verifier(
    Jwks(AUTHMAIL_URL + "/.well-known/jwks.json"),
    issuer=os.environ.get("AUTHMAIL_ISSUER", AUTHMAIL_URL).rstrip("/"),
    audience=os.environ.get("JWT_AUDIENCE") or None,
)
webhook = Webhook(os.environ["WEBHOOK_SECRET"])
DB = os.environ.get("APP_DB", "example.db")
PROXIES = [
    ipaddress.ip_network(n.strip())
    for n in os.environ.get("APP_TRUSTED_PROXIES", "").split(",")
    if n.strip()
]


def db():
    conn = sqlite3.connect(DB, timeout=10)
    conn.executescript(
        """CREATE TABLE IF NOT EXISTS profiles
               (user_id TEXT PRIMARY KEY, email TEXT NOT NULL, welcomed_at TEXT NOT NULL);
           CREATE TABLE IF NOT EXISTS webhook_events (id TEXT PRIMARY KEY, type TEXT NOT NULL);"""
    )
    return conn


def trusted(ip):
    try:
        return any(ipaddress.ip_address(ip) in n for n in PROXIES)
    except ValueError:
        return False


class App(BaseHTTPRequestHandler):
    # --- who is asking -------------------------------------------------------

    def client_ip(self):
        """The browser's address: our peer, unless the peer is our own proxy;
        then the right-most X-Forwarded-For entry our proxies did not add
        (entries further left were written by the browser and prove nothing)."""
        ip = self.client_address[0]
        if trusted(ip):
            hops = [h.strip() for h in self.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
            while hops and trusted(ip):
                ip = hops.pop()
        return ip

    def cookies(self):
        jar = {}
        for part in self.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            jar[k] = v
        return jar

    def user(self):
        """The verified JWT claims of the signed-in user, or None. The JWT
        comes as a bearer token (an API client) or in the `jwt` cookie (a
        browser). An expired one is traded for a new one with the session
        token kept in the `session` cookie; the new one is checked the same way."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token, session = auth[7:], None
        else:
            token, session = self.cookies().get("jwt"), self.cookies().get("session")
        try:
            return verifier.user(token) if token else None
        except jwt.ExpiredSignatureError:
            if not session:
                return None
        except jwt.PyJWTError:
            return None
        fresh = authmail.jwt(session)
        if fresh.status != 200:
            return None  # the session ended: signed out at authmail
        self.new_cookies = [cookie("jwt", fresh.body["jwt"])]
        return verifier.user(fresh.body["jwt"])

    # --- routes --------------------------------------------------------------

    def do_GET(self):
        path, _, query = self.path.partition("?")
        self.new_cookies = []
        if path == "/":
            self.home()
        elif path == "/api/profile":
            self.api_profile()
        elif path == "/signup":
            self.page(form(path, "send"))
        elif path == "/login":
            step = "send" if "code" in urllib.parse.parse_qs(query).get("with", []) else "password"
            self.page(form(path, step))
        else:
            self.page("<p>Not found.</p>", 404)

    def do_POST(self):
        self.new_cookies = []
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/hooks/authmail":
            return self.hook(body)
        # Our forms post only from our own pages.
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return self.page("<p>Refused: a post from another site.</p>", 403)
        f = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        routes = {"/signup": self.signup, "/login": self.login, "/logout": self.logout}
        route = routes.get(self.path)
        if route is None:
            return self.page("<p>Not found.</p>", 404)
        route(f)

    def home(self):
        claims = self.user()
        if claims is None:
            return self.page('<p>Welcome. <a href="/signup">Sign up</a> or <a href="/login">log in</a>.</p>')
        profile = db().execute("SELECT welcomed_at FROM profiles WHERE user_id = ?", (claims["sub"],)).fetchone()
        welcome = (
            f'<p id="profile">Profile made by the user.created webhook at {esc(profile[0])}.</p>'
            if profile
            else '<p id="profile">No profile yet: the user.created webhook has not arrived (reload in a moment).</p>'
        )
        self.page(
            f'<p>Signed in as <b id="email">{esc(claims["email"])}</b> (user <span id="sub">{esc(claims["sub"])}</span>).</p>'
            f'{welcome}<form method="post" action="/logout"><button>Log out</button></form>'
        )

    def api_profile(self):
        claims = self.user()
        if claims is None:
            return self.json(401, {"error": "not signed in"})
        row = db().execute("SELECT email, welcomed_at FROM profiles WHERE user_id = ?", (claims["sub"],)).fetchone()
        profile = {"email": row[0], "welcomed_at": row[1]} if row else None
        self.json(200, {"user": {"id": claims["sub"], "email": claims["email"]}, "profile": profile})

    def signup(self, f):
        if f.get("step") == "send":
            return self.send_code("/signup", "register", f)
        r = authmail.register(f.get("email", ""), f.get("password", ""), f.get("code", ""), self.client_ip())
        self.signed_in(r, "/signup", f)

    def login(self, f):
        if f.get("step") == "send":
            return self.send_code("/login", "login", f)
        if f.get("step") == "code":
            r = authmail.login_code(f.get("email", ""), f.get("code", ""), self.client_ip())
        else:
            r = authmail.login(f.get("email", ""), f.get("password", ""), self.client_ip())
        self.signed_in(r, "/login", f)

    def send_code(self, path, purpose, f):
        email = f.get("email", "")
        challenge = {"id": f["challenge_id"], "answer": f.get("challenge_answer", "")} if f.get("challenge_id") else None
        r = authmail.send_code(email, purpose, self.client_ip(), challenge, self.headers.get("Accept-Language"))
        if r.status == 202:
            return self.page(form(path, "code", email, note=f"A code is on its way to {email}."))
        if r.status == 428:
            # authmail wants proof a person is asking: show a picture of digits,
            # and send what they type with the same request.
            c = authmail.picture_challenge()
            if c.status == 200:
                picture = {"id": c.body["id"], "image": c.body["image"]}
                return self.page(form(path, "send", email, picture=picture), 428)
        self.failed(r, path, "send", f)

    def signed_in(self, r, path, f):
        if r.status not in (200, 201):
            return self.failed(r, path, f.get("step", "password"), f)
        token = r.body["token"]
        issued = authmail.jwt(token)
        if issued.status != 200:
            return self.failed(issued, path, "password", f)
        self.new_cookies = [cookie("session", token), cookie("jwt", issued.body["jwt"])]
        self.redirect("/")

    def failed(self, r, path, step, f):
        """authmail's refusal, shown on the form; a 429's wait passed on to the browser."""
        messages = {
            "invalid_code": "That code is wrong or expired.",
            "invalid_credentials": "Wrong address or password.",
            "weak_password": "The password needs 8 characters or more.",
            "invalid_email": "That is not an email address.",
        }
        message = messages.get(r.error, f"authmail said {r.status} {r.error}.")
        headers = {}
        if r.status == 429:
            message = f"Too many tries: wait {r.retry_after} seconds."
            headers["Retry-After"] = r.retry_after or "60"
        status = r.status if r.status < 500 else 502
        self.page(form(path, step, f.get("email", ""), error=message), status, headers)

    def logout(self, f):
        session = self.cookies().get("session")
        if session:
            authmail.logout(session)
        self.new_cookies = [cookie("session", "", 0), cookie("jwt", "", 0)]
        self.redirect("/")

    # --- the webhook ---------------------------------------------------------

    def hook(self, body):
        try:
            # The signature, and a timestamp within 5 minutes (no replays).
            event = webhook.verify(body, dict(self.headers.items()))
        except Exception:
            return self.json(400, {"error": "bad signature"})
        user = event["data"]["user"]
        with db() as conn:
            # The same event may come twice (a retry after a lost answer).
            first = conn.execute(
                "INSERT OR IGNORE INTO webhook_events VALUES (?, ?)",
                (self.headers["webhook-id"], event["type"]),
            )
            if first.rowcount and event["type"] == "user.created":
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                conn.execute("INSERT OR IGNORE INTO profiles VALUES (?, ?, ?)", (user["id"], user["email"], now))
            elif first.rowcount and event["type"] == "user.deleted":
                conn.execute("DELETE FROM profiles WHERE user_id = ?", (user["id"],))
        self.send_response(204)
        self.end_headers()

    # --- answers -------------------------------------------------------------

    def page(self, content, status=200, headers=None):
        doc = f'<!doctype html><html lang="en"><meta charset="utf-8"><title>Example app</title><h1>Example app</h1>{content}'
        self.answer(status, "text/html; charset=utf-8", doc.encode(), headers)

    def json(self, status, value):
        self.answer(status, "application/json", jsonlib.dumps(value).encode())

    def redirect(self, to):
        self.answer(303, "text/plain", b"", {"Location": to})

    def answer(self, status, ctype, data, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for c in self.new_cookies:
            self.send_header("Set-Cookie", c)
        self.end_headers()
        self.wfile.write(data)


def cookie(name, value, max_age=30 * 86400):
    # HttpOnly: page scripts never see the tokens. Add "; Secure" under https.
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}"


def esc(s):
    return html.escape(str(s))


def form(path, step, email="", note="", error="", picture=None):
    """The one form of both pages, at one of three steps: "send" asks for a
    code (with a picture to read when authmail wants one), "code" takes it
    (and a new password when signing up), "password" logs in with one."""
    fields = [
        f'<input type="hidden" name="step" value="{step}">',
        f'<label>Email <input name="email" type="email" value="{esc(email)}" required></label>',
    ]
    if step == "send" and picture:
        fields.append(
            f'<input type="hidden" name="challenge_id" value="{esc(picture["id"])}">'
            f'<p><img id="challenge" alt="five digits" src="{esc(picture["image"])}"></p>'
            '<label>The digits above <input name="challenge_answer" inputmode="numeric" required></label>'
        )
    if step == "code":
        fields.append('<label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label>')
    if step == "password" or (step == "code" and path == "/signup"):
        fields.append('<label>Password <input name="password" type="password" required></label>')
    button = {"send": "Send me a code", "code": "Sign up" if path == "/signup" else "Log in", "password": "Log in"}[step]
    other = '<a href="/login?with=code">Log in with a code instead</a>' if path == "/login" else '<a href="/login">Log in</a>'
    msg = (f'<p id="error">{esc(error)}</p>' if error else "") + (f'<p id="note">{esc(note)}</p>' if note else "")
    return f'{msg}<form method="post" action="{path}">{"".join(fields)}<button>{button}</button></form><p>{other}</p>'


if __name__ == "__main__":
    host, _, port = os.environ.get("APP_BIND", "127.0.0.1:8000").rpartition(":")
    db().close()
    server = ThreadingHTTPServer((host, int(port)), App)
    # SIGTERM (systemd, the tests) stops it as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"example app on http://{host}:{port}, authmail at {AUTHMAIL_URL}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
