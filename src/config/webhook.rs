//! `WEBHOOK_URL` and `WEBHOOK_SECRET`: where user events go and the key
//! they are signed with, in Standard Webhooks' form (`whsec_` + base64).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretSlice};

use super::smtp::is_loopback;
use super::{bad, ConfigError, Source};

/// Standard Webhooks' bounds on a secret's decoded length.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
const SECRET_PREFIX: &str = "whsec_";

/// Where events are POSTed, and the key that signs them.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
}

/// An http(s) URL. It may carry a password (`https://user:pw@host/`), so it
/// is shown (`Display`, `Debug`, the outbox's `to`) with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// Plain http to another machine: the events (users' addresses) would
    /// cross the network readable by anyone on the path.
    fn is_cleartext_remote(&self) -> bool {
        self.0.scheme() == "http"
            && !self
                .0
                .host_str()
                .is_some_and(|h| is_loopback(h.trim_start_matches('[').trim_end_matches(']')))
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        f.write_str(shown.as_str())
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookUrl({self})")
    }
}

/// The HMAC key: the bytes the `whsec_…` setting decodes to. Never shown.
#[derive(Clone)]
pub struct WebhookSecret(SecretSlice<u8>);

impl WebhookSecret {
    /// `whsec_` + base64 (standard alphabet, padding optional, as the
    /// Standard Webhooks libraries accept) of 24 to 64 bytes.
    pub fn parse(raw: &str) -> Option<Self> {
        let encoded = raw.strip_prefix(SECRET_PREFIX)?;
        let lenient =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let key = GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
            .decode(encoded)
            .ok()?;
        SECRET_BYTES
            .contains(&key.len())
            .then(|| Self(SecretSlice::from(key)))
    }

    pub fn key(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Both or neither: a URL without a secret would send events nobody can
/// verify. A secret is checked even without a URL, so a bad one is found
/// before the day the URL is set. Plain http off this machine is allowed (a
/// private network may be trusted) but warned about.
pub(super) fn webhook_settings(
    src: &Source,
    warnings: &mut Vec<ConfigError>,
) -> Result<Option<WebhookSettings>, ConfigError> {
    let secret = src.get("WEBHOOK_SECRET").map(secret).transpose()?;
    let Some(url) = src.get("WEBHOOK_URL").map(url).transpose()? else {
        return Ok(None);
    };
    let secret = secret.ok_or_else(|| {
        bad(
            "WEBHOOK_SECRET",
            "required with WEBHOOK_URL: whsec_ followed by the base64 of 24 to 64 random bytes, for example: echo whsec_$(openssl rand -base64 32)",
            "设置了 WEBHOOK_URL 就必须设置：whsec_ 加上 24 到 64 个随机字节的 base64，例如：echo whsec_$(openssl rand -base64 32)",
        )
    })?;
    if url.is_cleartext_remote() {
        warnings.push(bad(
            "WEBHOOK_URL",
            format!("{url} is plain http to another machine: events carry users' addresses unencrypted (signed, but readable on the way); use https://"),
            format!("{url} 是发往其他机器的明文 http：事件中的用户邮箱地址会以未加密的形式传输（有签名，但途中可被读取）；请使用 https://"),
        ));
    }
    Ok(Some(WebhookSettings { url, secret }))
}

fn url(raw: &str) -> Result<WebhookUrl, ConfigError> {
    let shown = raw.split('@').next_back().unwrap_or(raw);
    match Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(WebhookUrl(u))
        }
        // Only the part after any `user:password@` is repeated in the error.
        _ => Err(bad(
            "WEBHOOK_URL",
            format!("{shown:?} is not an http:// or https:// URL"),
            format!("{shown:?} 不是 http:// 或 https:// 开头的 URL"),
        )),
    }
}

/// The value is never repeated in the error: it is a secret, however malformed.
fn secret(raw: &str) -> Result<WebhookSecret, ConfigError> {
    WebhookSecret::parse(raw).ok_or_else(|| {
        bad(
            "WEBHOOK_SECRET",
            "must be whsec_ followed by the base64 of 24 to 64 random bytes, for example: echo whsec_$(openssl rand -base64 32)",
            "格式应为 whsec_ 加上 24 到 64 个随机字节的 base64，例如：echo whsec_$(openssl rand -base64 32)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_whsec_and_base64_of_24_to_64_bytes() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        let key = WebhookSecret::parse(&format!("whsec_{}", b64(32))).unwrap();
        assert_eq!(key.key(), &[7u8; 32]);
        let unpadded = format!("whsec_{}", b64(25).trim_end_matches('='));
        assert_eq!(WebhookSecret::parse(&unpadded).unwrap().key().len(), 25);
        for bad in [
            b64(32),                      // no prefix
            format!("whsec_{}", b64(23)), // too short
            format!("whsec_{}", b64(65)), // too long
            "whsec_not base64 at all!".into(),
            format!("whsec_{}", b64(32).replace('B', "-")), // URL-safe alphabet
        ] {
            assert!(WebhookSecret::parse(&bad).is_none(), "{bad}");
        }
        assert_eq!(format!("{key:?}"), "WebhookSecret(***)");
    }

    #[test]
    fn a_url_hides_its_password_and_plain_http_off_the_machine_is_remote() {
        let u = url("https://hook:pa55word@hooks.example.com/in?x=1").unwrap();
        assert_eq!(u.to_string(), "https://hook:***@hooks.example.com/in?x=1");
        assert!(!format!("{u:?}").contains("pa55word"));
        assert!(!u.is_cleartext_remote());
        assert!(url("http://10.0.0.5/hook").unwrap().is_cleartext_remote());
        for local in [
            "http://127.0.0.1:9000/h",
            "http://localhost/h",
            "http://[::1]/h",
        ] {
            assert!(!url(local).unwrap().is_cleartext_remote(), "{local}");
        }
        for bad in [
            "ftp://x/h",
            "hooks.example.com/in",
            "http://",
            "https://user:pw@",
        ] {
            let err = url(bad).unwrap_err().to_string();
            assert!(err.starts_with("WEBHOOK_URL: "), "{err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }
}
