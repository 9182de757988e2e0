"""What an app's backend needs from authmail: its JSON API called on the
user's behalf, and the check of the JWTs it issues. Standard library plus
PyJWT (with `cryptography`, for EdDSA); copy it into your own backend.
"""

import json
import threading
import time
import urllib.error
import urllib.request

import jwt


class Reply:
    """One answer of authmail: status, JSON body (or {}), Retry-After."""

    def __init__(self, status, body, retry_after):
        self.status, self.body, self.retry_after = status, body, retry_after

    @property
    def error(self):
        return (self.body.get("error") or {}).get("code")


class Authmail:
    def __init__(self, url, timeout=10):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method, path, body=None, client_ip=None, token=None, lang=None):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if client_ip:
            # The browser's address, not ours: authmail believes it because our
            # address is in its TRUSTED_PROXIES. Without it, every user of the
            # app would share one per-IP limit and one CHALLENGE=auto count.
            # Never pass on the browser's own X-Forwarded-For: it could say anything.
            headers["X-Forwarded-For"] = client_ip
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if lang:
            headers["Accept-Language"] = lang  # the language of the mail
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Reply(resp.status, _json(resp.read()), None)
        except urllib.error.HTTPError as e:
            return Reply(e.code, _json(e.read()), e.headers.get("Retry-After"))

    def send_code(self, email, purpose, client_ip, challenge=None, lang=None):
        body = {"email": email, "purpose": purpose}
        if challenge:
            body["challenge"] = challenge  # {"id", "answer"} for a picture
        return self.call("POST", "/api/auth/send-code", body, client_ip, lang=lang)

    def register(self, email, password, code, client_ip):
        body = {"email": email, "password": password, "code": code}
        return self.call("POST", "/api/auth/register", body, client_ip)

    def login(self, email, password, client_ip):
        return self.call("POST", "/api/auth/login", {"email": email, "password": password}, client_ip)

    def login_code(self, email, code, client_ip):
        return self.call("POST", "/api/auth/login-code", {"email": email, "code": code}, client_ip)

    def picture_challenge(self):
        return self.call("GET", "/api/auth/challenge?kind=image")

    def jwt(self, session_token):
        return self.call("POST", "/api/auth/jwt", token=session_token)

    def logout(self, session_token):
        return self.call("POST", "/api/auth/logout", token=session_token)


def _json(raw):
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {}


class Jwks:
    """authmail's public keys, kept in memory. Fetched again when a token
    names a kid we do not hold (authmail rotated its key), but at most once
    a second, so tokens with made-up kids cannot make us hammer authmail;
    and every five minutes anyway, so a key authmail dropped after a
    rotation stops being trusted here too."""

    MAX_AGE = 300
    MIN_GAP = 1

    def __init__(self, url):
        self.url = url
        self.keys = {}
        self.fetched = float("-inf")
        self.lock = threading.Lock()

    def key(self, kid):
        with self.lock:
            age = time.monotonic() - self.fetched
            if age > self.MAX_AGE or (kid not in self.keys and age > self.MIN_GAP):
                self._fetch()
            return self.keys.get(kid)

    def _fetch(self):
        with urllib.request.urlopen(self.url, timeout=10) as resp:
            keys = json.load(resp)["keys"]
        self.keys = {k["kid"]: jwt.PyJWK(k) for k in keys}
        self.fetched = time.monotonic()


class Verifier:
    """Trusts a JWT only when authmail's key signed it, for us, recently."""

    def __init__(self, jwks, issuer, audience=None):
        self.jwks, self.issuer, self.audience = jwks, issuer, audience

    def user(self, token):
        """The verified claims ({"sub", "email", ...}), or raises jwt.PyJWTError."""
        header = jwt.get_unverified_header(token)
        key = self.jwks.key(header.get("kid"))
        if key is None:
            raise jwt.InvalidTokenError("no such signing key at authmail")
        return jwt.decode(
            token,
            key.key,
            # Fixed here, never taken from the token: a header saying "none"
            # or "HS256" must not pick how we check it.
            algorithms=["EdDSA"],
            issuer=self.issuer,
            audience=self.audience,  # None: a token that carries an aud is refused
            leeway=5,
            options={"require": ["iss", "sub", "exp", "iat"]},
        )
