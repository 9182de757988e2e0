//! An independent JWT verifier for the tests: PyJWT with `cryptography`
//! (tests/requirements.txt), run by python3 against the JWKS an app serves.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::app::TestApp;
use super::wait::output_within;

/// PyJWT: the signing key picked from the JWKS at `jwks_url` by the token's
/// `kid`, the signature, `iss`, `aud` (when given; a token with an `aud`
/// and none expected fails), `exp` and `iat` all checked, `alg` only EdDSA.
const VERIFY: &str = r#"
import json, sys, jwt
url, token, issuer, audience = sys.argv[1:5]
try:
    key = jwt.PyJWKClient(url, cache_jwk_set=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer,
                        audience=audience or None,
                        options={"require": ["iss", "sub", "exp", "iat"]})
except Exception as e:
    print(type(e).__name__, e, file=sys.stderr)
    sys.exit(1)
print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
"#;

/// What PyJWT makes of `token` from an app whose `PUBLIC_URL` is left at
/// its default (`app.base`): its header and claims, or why it refused it.
pub fn pyjwt(app: &TestApp, token: &str, audience: Option<&str>) -> Result<Value, String> {
    verify(app, &app.base, token, audience)
}

/// PyJWT's verdict on `token` against the JWKS of `app`, issued by `issuer`.
pub fn verify(
    app: &TestApp,
    issuer: &str,
    token: &str,
    audience: Option<&str>,
) -> Result<Value, String> {
    let child = Command::new("python3")
        .args(["-c", VERIFY])
        .args([&format!("{}/.well-known/jwks.json", app.base), token])
        .args([issuer, audience.unwrap_or("")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (pip install -r tests/requirements.txt)");
    let out = output_within(child, Duration::from_secs(30)).expect("PyJWT finished");
    match out.status.success() {
        true => Ok(serde_json::from_slice(&out.stdout).unwrap()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}
