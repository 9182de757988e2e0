//! The auth request bodies as the API reads them: JSON into the contract's
//! body shapes (duplicate keys refused, unknown fields ignored), then every
//! field through the domain parsers. Never a panic; whatever is accepted holds
//! only valid values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[allow(dead_code)]
#[path = "../../src/domain/mod.rs"]
mod domain;

use domain::{Code, EmailAddress, Lang, Password, Purpose};

#[derive(Deserialize)]
struct SendCode {
    email: String,
    purpose: String,
    lang: Option<String>,
}

#[derive(Deserialize)]
struct Register {
    email: String,
    password: String,
    code: String,
}

#[derive(Deserialize)]
struct Reset {
    email: String,
    code: String,
    new_password: String,
}

fn check_email(raw: &str) {
    if let Ok(a) = EmailAddress::parse(raw) {
        assert!(a.as_str().len() <= 254 && !a.as_str().contains(['\r', '\n', '\0']));
    }
}

fn check_code(raw: &str) {
    for len in 4..=10 {
        if let Some(c) = Code::parse(raw, len) {
            assert!(c.expose().len() == usize::from(len));
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }
}

fn check_password(raw: String) {
    let n = raw.chars().count();
    assert_eq!(Password::parse(raw).is_ok(), (8..=1024).contains(&n));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = serde_json::from_slice::<SendCode>(data) {
        check_email(&b.email);
        if let Some(p) = Purpose::parse(&b.purpose) {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        if let Some(l) = b.lang.as_deref().and_then(Lang::parse) {
            assert_eq!(Lang::parse(l.as_str()), Some(l));
        }
    }
    if let Ok(b) = serde_json::from_slice::<Register>(data) {
        check_email(&b.email);
        check_code(&b.code);
        check_password(b.password);
    }
    if let Ok(b) = serde_json::from_slice::<Reset>(data) {
        check_email(&b.email);
        check_code(&b.code);
        check_password(b.new_password);
    }
    if let Ok(header) = std::str::from_utf8(data) {
        let _ = Lang::from_accept_language(header);
    }
});
