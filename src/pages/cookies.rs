//! Reading the `Cookie` header and writing `Set-Cookie` values. Every cookie
//! the pages set is HttpOnly and SameSite=Lax, and Secure when `PUBLIC_URL`
//! is https.

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderValue};

pub const SESSION: &str = "authmail_session";

/// The name a cookie goes by. Under https it carries the `__Host-` prefix:
/// browsers then accept it only from this very host, Secure, with Path=/ and
/// no Domain, so a sibling subdomain (or a plain-http man in the middle)
/// cannot plant a CSRF id or a session of its choosing.
pub fn name(base: &str, secure: bool) -> Cow<'_, str> {
    if secure {
        Cow::Owned(format!("__Host-{base}"))
    } else {
        Cow::Borrowed(base)
    }
}

/// The session token the pages' cookie holds, under its name for `PUBLIC_URL`.
pub fn session_token<'a>(headers: &'a HeaderMap, public_url: &str) -> Option<&'a str> {
    get(headers, &name(SESSION, public_url.starts_with("https://")))
}

/// The value of cookie `name`, from any `Cookie` header.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// `max_age`: seconds, or `None` for a cookie that ends with the browser session.
pub fn set(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(secs) = max_age {
        cookie.push_str(&format!("; Max-Age={secs}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).expect("cookie values are plain ASCII")
}

pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", Some(0), secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("authmail_lang=en"));
        assert_eq!(get(&headers, "b"), Some("2"));
        assert_eq!(get(&headers, "authmail_lang"), Some("en"));
        assert_eq!(get(&headers, "c"), None);
    }

    #[test]
    fn https_names_carry_the_host_prefix() {
        assert_eq!(name(SESSION, true), "__Host-authmail_session");
        assert_eq!(name(SESSION, false), "authmail_session");
    }

    #[test]
    fn set_cookie_is_http_only_and_lax() {
        let v = set(SESSION, "t", Some(60), true);
        assert_eq!(
            v.to_str().unwrap(),
            "authmail_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }
}
