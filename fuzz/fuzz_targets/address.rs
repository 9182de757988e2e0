//! `EmailAddress::parse` on any input: it never panics, and what it accepts is
//! canonical (lower-case ASCII, one `@`, no control or header characters, at
//! most 254 bytes) and parses to itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/domain/mod.rs"]
mod domain;

use domain::EmailAddress;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = EmailAddress::parse(raw) {
        let s = a.as_str();
        assert!(s.len() <= 254, "{s:?}");
        assert!(s.is_ascii(), "{s:?}");
        assert_eq!(s, s.to_ascii_lowercase());
        assert_eq!(s.matches('@').count(), 1, "{s:?}");
        assert!(
            !s.chars()
                .any(|c| c.is_control() || c.is_whitespace() || "<>\"(),;:[]\\".contains(c)),
            "{s:?}"
        );
        assert!(EmailAddress::parse(s).is_ok_and(|b| b == a), "{s:?}");
    }
});
