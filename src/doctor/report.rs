//! How the doctor prints: one line per step, and the server's EHLO, replies
//! and certificate in short.

use std::time::Duration;

use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::{Extension, ServerInfo};

use crate::domain::Lang;
use crate::messages::{Args, CliText};

/// `name: STARTTLS, 8BITMIME, AUTH PLAIN, ...`: the extensions lettre knows.
pub(super) fn ehlo_summary(info: &ServerInfo) -> String {
    let known = [
        Extension::StartTls,
        Extension::EightBitMime,
        Extension::SmtpUtfEight,
        Extension::Authentication(Mechanism::Plain),
        Extension::Authentication(Mechanism::Login),
        Extension::Authentication(Mechanism::Xoauth2),
    ];
    let offered: Vec<String> = known
        .into_iter()
        .filter(|e| info.supports_feature(*e))
        .map(|e| e.to_string())
        .collect();
    format!("{}: {}", info.name(), offered.join(", "))
}

pub(super) fn reply_text(r: &lettre::transport::smtp::response::Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), lines.join(" "))
}

/// Subject, issuer and expiry of the server's certificate.
pub(super) fn cert_summary(conn: &AsyncSmtpConnection, lang: Lang) -> String {
    let Ok(der) = conn.peer_certificate() else {
        return String::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return String::new();
    };
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.iter().map(general_name).collect())
        .unwrap_or_default();
    let expires = cert
        .validity()
        .not_after
        .to_rfc2822()
        .unwrap_or_else(|_| cert.validity().not_after.to_string());
    let (subject, issuer) = (cert.subject(), cert.issuer());
    let names = names.join(", ");
    let args: &Args = &[
        ("subject", &subject),
        ("names", &names),
        ("issuer", &issuer),
        ("expires", &expires),
    ];
    CliText::Certificate.say(lang, args)
}

fn general_name(n: &x509_parser::extensions::GeneralName) -> String {
    use x509_parser::extensions::GeneralName;
    match n {
        GeneralName::DNSName(d) => d.to_string(),
        GeneralName::IPAddress(b) => match <[u8; 4]>::try_from(*b) {
            Ok(v4) => std::net::Ipv4Addr::from(v4).to_string(),
            Err(_) => <[u8; 16]>::try_from(*b).map_or_else(
                |_| n.to_string(),
                |v6| std::net::Ipv6Addr::from(v6).to_string(),
            ),
        },
        other => other.to_string(),
    }
}

pub(super) fn step_ok(label: &str, detail: &str, t: Duration) {
    println!("✓ {} {detail} ({} ms)", padded(label), t.as_millis());
}

pub(super) fn step_failed(label: &str, raw: &str, t: Duration) {
    println!("✗ {} {raw} ({} ms)", padded(label), t.as_millis());
}

/// The label in a column of nine terminal cells (a CJK character takes two).
fn padded(label: &str) -> String {
    let cells: usize = label
        .chars()
        .map(|c| if c.is_ascii() { 1 } else { 2 })
        .sum();
    format!("{label}{}", " ".repeat(9usize.saturating_sub(cells)))
}
