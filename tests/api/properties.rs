//! Property tests (proptest): address parsing, code generation and checking,
//! settings parsing and template rendering hold for generated input, not only
//! for the examples the unit tests pick.

use std::collections::HashMap;

use authmail::config::{Settings, Source};
use authmail::domain::{Code, EmailAddress, Lang, Purpose};
use authmail::keys::Keys;
use authmail::mail::templates::{crlf, MailContext, Templates};
use proptest::prelude::*;

/// No CR or LF that is not part of a CRLF pair.
fn only_crlf(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| match c {
        b'\r' => b.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && b[i - 1] == b'\r',
        _ => true,
    })
}

fn atom() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}"
}

fn label() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?"
}

prop_compose! {
    fn valid_address()(
        atoms in prop::collection::vec(atom(), 1..4),
        labels in prop::collection::vec(label(), 1..4),
        tld in "[A-Za-z]{2,6}",
    ) -> String {
        format!("{}@{}.{}", atoms.join("."), labels.join("."), tld)
    }
}

fn settings(pairs: &[(&str, String)]) -> Result<Settings, authmail::config::ConfigError> {
    let vars: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Settings::from_source(&Source::from_map(vars))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_parses_or_fails_cleanly_and_accepted_ones_are_canonical(raw in prop_oneof![
        any::<String>(),
        // A valid address with one tricky character put somewhere in it.
        (valid_address(), any::<prop::sample::Index>(), any::<char>(), prop::sample::select(vec![
            '@', '.', ' ', '<', '"', '\u{ff20}', '\u{3002}', '\u{212a}', '\u{200b}', '\u{ad}', '\u{130}', '\u{ff45}',
        ]), any::<bool>()).prop_map(|(a, at, any_c, tricky, pick)| {
            let mut chars: Vec<char> = a.chars().collect();
            chars.insert(at.index(chars.len() + 1), if pick { tricky } else { any_c });
            chars.into_iter().collect::<String>()
        }),
    ]) {
        if let Ok(a) = EmailAddress::parse(&raw) {
            let s = a.as_str();
            prop_assert!(s.len() <= 254);
            prop_assert!(s.is_ascii());
            prop_assert_eq!(s.to_ascii_lowercase(), s);
            prop_assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()));
            prop_assert!(!s.contains(['<', '>', '"', '(', ')', ',', ';', ':', '[', ']', '\\']));
            prop_assert_eq!(s.matches('@').count(), 1);
            // Canonical means stable: parsing the canonical form gives itself.
            prop_assert_eq!(&EmailAddress::parse(s).unwrap(), &a);
        }
    }

    #[test]
    fn well_formed_addresses_are_accepted_in_lower_case(addr in valid_address()) {
        prop_assume!(addr.len() <= 254 && addr.split('@').next().unwrap().len() <= 64);
        // "xn--…" labels are punycode, and most such strings are invalid punycode
        // (rightly refused): they are not the well-formed addresses this is about.
        let host = addr.split('@').nth(1).unwrap().to_ascii_lowercase();
        prop_assume!(!host.split('.').any(|label| label.starts_with("xn--")));
        let a = EmailAddress::parse(&addr).unwrap();
        prop_assert_eq!(a.as_str(), addr.to_ascii_lowercase());
        let upper = EmailAddress::parse(&addr.to_ascii_uppercase()).unwrap();
        prop_assert_eq!(upper, a);
    }

    #[test]
    fn a_control_character_anywhere_is_refused(
        addr in valid_address(),
        at in any::<prop::sample::Index>(),
        c in prop::sample::select(vec!['\r', '\n', '\0', '\t', '\u{7f}', '\u{85}', '\u{1b}']),
    ) {
        let mut chars: Vec<char> = addr.chars().collect();
        chars.insert(at.index(chars.len() + 1), c);
        let bad: String = chars.into_iter().collect();
        prop_assert!(EmailAddress::parse(&bad).is_err(), "{:?}", bad);
    }

    #[test]
    fn generated_codes_have_the_shape_they_are_checked_against(len in 4u8..=10) {
        let code = Code::generate(len);
        prop_assert_eq!(code.expose().len(), usize::from(len));
        prop_assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        prop_assert!(Code::parse(code.expose(), len).is_some());
        prop_assert!(Code::parse(code.expose(), len + 1).is_none());
    }

    #[test]
    fn a_submitted_code_is_accepted_as_a_shape_only_when_all_digits(raw in "\\PC{0,12}", len in 4u8..=10) {
        let ok = raw.len() == usize::from(len) && raw.bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(Code::parse(&raw, len).is_some(), ok);
    }

    #[test]
    fn a_code_matches_only_itself_for_its_address_and_purpose(
        a in valid_address(),
        b in valid_address(),
        c1 in "[0-9]{6}",
        c2 in "[0-9]{6}",
        key in "[ -~]{32,64}",
    ) {
        prop_assume!(a.len() <= 254 && b.len() <= 254);
        let (Ok(ea), Ok(eb)) = (EmailAddress::parse(&a), EmailAddress::parse(&b)) else {
            return Ok(());
        };
        let keys = Keys::new(&key);
        let code1 = Code::parse(&c1, 6).unwrap();
        let code2 = Code::parse(&c2, 6).unwrap();
        let stored = keys.code_hash(&ea, Purpose::Login, &code1);
        prop_assert_eq!(keys.code_hash(&ea, Purpose::Login, &code1), stored);
        prop_assert_eq!(keys.code_hash(&ea, Purpose::Login, &code2) == stored, c1 == c2);
        prop_assert_eq!(keys.code_hash(&eb, Purpose::Login, &code1) == stored, ea == eb);
        prop_assert_ne!(keys.code_hash(&ea, Purpose::ResetPassword, &code1), stored);
    }

    #[test]
    fn numeric_settings_accept_exactly_their_range(
        which in 0usize..8,
        value in prop_oneof![-100i64..100_000, any::<i64>()],
    ) {
        let (name, lo, hi) = [
            ("CODE_LENGTH", 4, 10),
            ("CODE_TTL_SECS", 30, 86_400),
            ("CODE_MAX_ATTEMPTS", 1, 20),
            ("CODE_MAX_FAILURES", 0, 1_000_000),
            ("RESEND_COOLDOWN_SECS", 0, 86_400),
            ("RATE_EMAIL_PER_HOUR", 0, 1_000_000),
            ("SMTP_TIMEOUT_SECS", 1, 300),
            ("SESSION_TTL_SECS", 60, 31_622_400),
        ][which];
        let result = settings(&[(name, value.to_string())]);
        if (lo..=hi).contains(&value) {
            prop_assert!(result.is_ok(), "{}={} refused: {:?}", name, value, result.err());
        } else {
            let err = result.expect_err("out of range must be refused");
            prop_assert_eq!(&err.name, name);
            prop_assert!(!err.to_string().contains('\n'), "one line");
        }
    }

    #[test]
    fn any_setting_value_is_taken_or_refused_naming_the_setting(
        which in 0usize..12,
        value in "\\PC{0,20}",
    ) {
        let name = [
            "SMTP_PORT", "SMTP_SECURITY", "SMTP_PROVIDER", "BIND", "PUBLIC_URL", "MAIL_LANG",
            "TRUSTED_PROXIES", "DATABASE_URL", "LOG_FORMAT", "ALERT_FAILURE_RATE",
            "CODE_LENGTH", "RETRY_BASE_SECS",
        ][which];
        if let Err(err) = settings(&[(name, value.clone())]) {
            // SMTP_PROVIDER fills a server, after which SMTP_FROM is required;
            // a BIND off the loopback needs an SMTP server (no public dev mailbox).
            prop_assert!(
                err.name == name || err.name == "SMTP_FROM" || (name == "BIND" && err.name == "SMTP_SERVER"),
                "{} -> {}", name, err
            );
            prop_assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn port_and_security_derive_from_each_other(port in 1u16..=65_535) {
        let s = settings(&[
            ("SMTP_SERVER", "smtp.example.com".into()),
            ("SMTP_FROM", "a@example.com".into()),
            ("SMTP_PORT", port.to_string()),
        ]).unwrap();
        let smtp = s.smtp.unwrap();
        let expected = match port { 465 => "tls", 25 => "opportunistic", _ => "starttls" };
        prop_assert_eq!(smtp.port, port);
        prop_assert_eq!(smtp.security.as_str(), expected);
    }

    #[test]
    fn crlf_leaves_no_bare_line_end_and_keeps_the_text(s in "[a-z.\\r\\n \u{4e2d}]{0,60}") {
        let out = crlf(&s);
        prop_assert!(only_crlf(&out), "{:?} -> {:?}", s, out);
        prop_assert_eq!(crlf(&out), out.clone(), "idempotent");
        let strip = |t: &str| t.replace(['\r', '\n'], "");
        prop_assert_eq!(strip(&out), strip(&s));
    }

    #[test]
    fn rendered_mail_has_crlf_bodies_and_a_one_line_subject(
        body in "[a-z{}. \\r\\n]{0,40}",
        subject in "[a-z \\r\\n]{0,30}",
        code in "[0-9]{4,10}",
        email in valid_address(),
        english in any::<bool>(),
    ) {
        prop_assume!(email.len() <= 254);
        let dir = tempfile::tempdir().unwrap();
        let lang = if english { Lang::En } else { Lang::ZhCn };
        let sub = dir.path().join(lang.as_str());
        std::fs::create_dir(&sub).unwrap();
        // A template of arbitrary line ends with the code somewhere in it;
        // lone braces are escaped so the text stays a valid template.
        let text = format!("{}{{{{ code }}}}{}", body.replace(['{', '}'], "~"), body.replace(['{', '}'], "."));
        std::fs::write(sub.join("code.txt"), &text).unwrap();
        std::fs::write(sub.join("code.html"), format!("<p>{text}</p>")).unwrap();
        std::fs::write(sub.join("code.subject.txt"), &subject).unwrap();
        let t = Templates::new(Some(dir.path())).unwrap();
        let ctx = MailContext {
            purpose: "login",
            code: Some(&code),
            minutes: 5,
            email: &email,
            public_url: "https://auth.example.com",
        };
        let m = t.render("code", lang, &ctx).unwrap();
        prop_assert!(only_crlf(&m.text), "{:?}", m.text);
        prop_assert!(only_crlf(&m.html), "{:?}", m.html);
        prop_assert!(!m.subject.contains(['\r', '\n']));
        prop_assert!(m.text.contains(&code) && m.html.contains(&code));
    }
}
