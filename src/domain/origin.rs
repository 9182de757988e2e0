//! Web origins (`CORS_ORIGINS`, `RETURN_TO_ORIGINS`) and the `return_to`
//! address a browser is sent to after signing in. Both are read with the
//! WHATWG URL parser (the `url` crate), the one browsers use, so authmail
//! sees the same host a browser would go to; a `ReturnTo` is only ever sent
//! back out in the parser's own serialisation, never as the text it came in.

use std::fmt;

use url::Url;

/// `scheme://host[:port]` as browsers send it in `Origin`: http or https, the
/// host lower-cased (an international one in its ASCII form), a default port
/// left out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

/// Why a setting's entry is not an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidOrigin {
    /// `*` anywhere: every origin must be named.
    Wildcard,
    /// Not a URL at all, or not http/https.
    NotHttp,
    /// `user@` before the host.
    Userinfo,
    /// A path, query or fragment after the host.
    Path,
}

impl Origin {
    /// One origin. A single trailing `/` is the empty path and is allowed.
    pub fn parse(raw: &str) -> Result<Self, InvalidOrigin> {
        if raw.contains('*') {
            return Err(InvalidOrigin::Wildcard);
        }
        let url = Url::parse(raw).map_err(|_| InvalidOrigin::NotHttp)?;
        if !is_http(&url) {
            return Err(InvalidOrigin::NotHttp);
        }
        if has_userinfo(&url) {
            return Err(InvalidOrigin::Userinfo);
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(InvalidOrigin::Path);
        }
        Ok(Self::of(&url))
    }

    /// The origin of an http(s) URL (`PUBLIC_URL`'s may have a path).
    pub fn of_url(raw: &str) -> Option<Self> {
        let url = Url::parse(raw).ok()?;
        is_http(&url).then(|| Self::of(&url))
    }

    fn of(url: &Url) -> Self {
        Self(url.origin().ascii_serialization())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host().is_some()
}

fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Where a browser goes after signing in: an absolute http(s) URL, without
/// `user@`, whose origin was allowed when it was parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(Url);

impl ReturnTo {
    /// Longer values are refused: no app needs them, and they would travel in
    /// every link and form of the pages.
    pub const MAX_LEN: usize = 2048;

    /// `None` unless `raw` is an absolute http(s) URL whose origin `allowed`
    /// accepts. Refused before parsing: relative references (`/path`,
    /// `//host`), backslashes (browsers read `/\host` as `//host`), and any
    /// whitespace or control character (browsers drop tabs and newlines
    /// inside URLs, so `java\tscript:` is `javascript:` to them).
    pub fn parse(raw: &str, allowed: impl Fn(&Origin) -> bool) -> Option<Self> {
        let suspicious = |c: char| c == '\\' || c.is_control() || c.is_whitespace();
        if raw.len() > Self::MAX_LEN || raw.chars().any(suspicious) {
            return None;
        }
        let scheme = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        if !(scheme.starts_with("http://") || scheme.starts_with("https://")) {
            return None;
        }
        let url = Url::parse(raw).ok()?;
        if !is_http(&url) || has_userinfo(&url) {
            return None;
        }
        allowed(&Origin::of(&url)).then_some(Self(url))
    }

    /// The address as the parser wrote it out: what the `Location` header holds.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn origin(&self) -> Origin {
        Origin::of(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(raw: &str) -> Result<String, InvalidOrigin> {
        Origin::parse(raw).map(|o| o.to_string())
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        assert_eq!(
            origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("https://app.example.com:443/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            origin("https://bücher.example").unwrap(),
            "https://xn--bcher-kva.example"
        );
        assert_eq!(origin("http://[::1]:8080").unwrap(), "http://[::1]:8080");
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        use InvalidOrigin::*;
        for (raw, why) in [
            ("*", Wildcard),
            ("https://*.example.com", Wildcard),
            ("app.example.com", NotHttp),
            ("ftp://app.example.com", NotHttp),
            ("null", NotHttp),
            ("https://", NotHttp),
            ("https://user@app.example.com", Userinfo),
            ("https://app.example.com/app", Path),
            ("https://app.example.com/?x=1", Path),
            ("https://app.example.com/#top", Path),
        ] {
            assert_eq!(origin(raw), Err(why), "{raw}");
        }
    }

    fn allowed(o: &Origin) -> bool {
        ["https://app.example.com", "http://localhost:3000"].contains(&o.as_str())
    }

    fn return_to(raw: &str) -> Option<String> {
        ReturnTo::parse(raw, allowed).map(|r| r.as_str().to_string())
    }

    #[test]
    fn a_return_to_on_an_allowed_origin_is_kept_in_its_parsed_form() {
        assert_eq!(
            return_to("https://app.example.com/welcome?x=1#top").as_deref(),
            Some("https://app.example.com/welcome?x=1#top")
        );
        assert_eq!(
            return_to("HTTPS://APP.example.com:443").as_deref(),
            Some("https://app.example.com/")
        );
        assert_eq!(
            return_to("http://localhost:3000/a b").as_deref(),
            None,
            "a space is refused, not guessed about"
        );
        assert_eq!(
            return_to("https://app.example.com/caf%C3%A9/<x>\"").as_deref(),
            Some("https://app.example.com/caf%C3%A9/%3Cx%3E%22")
        );
    }

    #[test]
    fn every_trick_is_refused() {
        for raw in [
            "https://evil.example.com/",
            "javascript:alert(1)",
            "JavaScript:alert(1)//https://app.example.com",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//evil.example.com",
            "///evil.example.com",
            "/\\evil.example.com",
            "\\\\evil.example.com",
            "https:\\\\evil.example.com",
            "https://app.example.com\\@evil.example.com",
            "https://app.example.com@evil.example.com",
            "https://app.example.com:443@evil.example.com",
            "https://user:pw@app.example.com/",
            "https://app.example.com.evil.example.com/",
            "https://evil.example.com#https://app.example.com",
            "https://evil.example.com?https://app.example.com",
            "https://app.example.com%2F@evil.example.com",
            "https://app.example.com%40evil.example.com",
            "https://evil.example.com%2F.app.example.com",
            "https:evil.example.com",
            "http://app.example.com/",
            "/account",
            "",
            " https://app.example.com/",
            "https://app.example.com/\n",
        ] {
            assert_eq!(return_to(raw), None, "{raw:?}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(ReturnTo::MAX_LEN));
        assert_eq!(return_to(&long), None, "too long");
    }
}
