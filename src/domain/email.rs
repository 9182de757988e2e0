//! `EmailAddress`: the only way an address enters authmail. Once parsed it is
//! canonical (lower-cased, ASCII domain) and safe to put in an SMTP envelope.

use std::fmt;

/// The contract's limit: at most 254 characters (RFC 5321 path limit minus brackets).
const MAX_LEN: usize = 254;
/// RFC 5321 §4.5.3.1.1.
const MAX_LOCAL_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEmail(&'static str);

impl EmailAddress {
    /// Parses one plain address: no display name, no control characters, an ASCII
    /// dot-atom local part and a host-name domain (IDNs are stored as punycode).
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        if raw.chars().any(char::is_control) {
            return Err(InvalidEmail("the address contains control characters"));
        }
        if raw.chars().count() > MAX_LEN {
            return Err(InvalidEmail("the address is longer than 254 characters"));
        }
        let (local, domain) = raw
            .rsplit_once('@')
            .ok_or(InvalidEmail("the address has no @"))?;
        check_local(local)?;
        let domain = ascii_domain(domain)?;
        let canonical = format!("{local}@{domain}").to_ascii_lowercase();
        if canonical.len() > MAX_LEN {
            return Err(InvalidEmail("the address is longer than 254 characters"));
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The inbox this address delivers to, as far as its spelling tells: the
    /// local part without a `+tag`, and at Gmail without dots, with
    /// `googlemail.com` folded into `gmail.com`. The send limits count per
    /// mailbox, so that aliases of one inbox share one allowance; accounts and
    /// mail keep the address as given.
    pub fn mailbox(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        // "+tag@x" has no base to keep: the address is its own mailbox.
        let base = match local.split_once('+') {
            Some((base, _)) if !base.is_empty() => base,
            _ => local,
        };
        match domain {
            "gmail.com" | "googlemail.com" => format!("{}@gmail.com", base.replace('.', "")),
            _ => format!("{base}@{domain}"),
        }
    }

    /// `ab***@qq.com`: enough to recognise a recipient in a log, not to harvest it.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let shown: String = local.chars().take(2).collect();
        format!("{shown}***@{domain}")
    }
}

fn check_local(local: &str) -> Result<(), InvalidEmail> {
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err(InvalidEmail("the part before @ must be 1 to 64 characters"));
    }
    // Dot-atom only (RFC 5322 §3.2.3): quoted local parts are legal but are how
    // header and envelope injection tends to slip through, and no provider needs them.
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(atext))
    {
        return Err(InvalidEmail(
            "the part before @ may hold only letters, digits, dots and !#$%&'*+/=?^_`{|}~-",
        ));
    }
    Ok(())
}

fn ascii_domain(domain: &str) -> Result<String, InvalidEmail> {
    const BAD: InvalidEmail = InvalidEmail("the part after @ is not a valid host name");
    // UTS #46 mapping also folds full-width and other compatibility forms, so
    // look-alike spellings of one domain end up as one canonical key.
    let ascii = idna::domain_to_ascii(domain).map_err(|_| BAD)?;
    let ascii = ascii.strip_suffix('.').unwrap_or(&ascii);
    let labels: Vec<&str> = ascii.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|t| !t.chars().all(|c| c.is_ascii_digit()));
    if ascii.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
        return Err(BAD);
    }
    Ok(ascii.to_string())
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    // Debug output ends up in logs; keep addresses masked there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(raw: &str) -> String {
        EmailAddress::parse(raw).unwrap().mailbox()
    }

    #[test]
    fn aliases_of_one_inbox_share_a_mailbox() {
        assert_eq!(mailbox("ann+promo@example.com"), "ann@example.com");
        assert_eq!(mailbox("ann+a+b@example.com"), "ann@example.com");
        assert_eq!(mailbox("a.n.n@gmail.com"), "ann@gmail.com");
        assert_eq!(mailbox("A.nn+x@GoogleMail.com"), "ann@gmail.com");
        assert_eq!(mailbox("+only@example.com"), "+only@example.com");
    }

    #[test]
    fn different_inboxes_keep_different_mailboxes() {
        // Dots matter everywhere but Gmail; other domains are other inboxes.
        assert_ne!(mailbox("a.nn@example.com"), mailbox("ann@example.com"));
        assert_ne!(mailbox("ann@qq.com"), mailbox("ann@gmail.com"));
        assert_ne!(mailbox("ann@example.com"), mailbox("anne@example.com"));
        assert_ne!(mailbox("ann@mail.gmail.com"), mailbox("ann@gmail.com"));
    }

    #[test]
    fn canonical_form_is_lower_case() {
        let a = EmailAddress::parse("Alice.B+tag@Example.COM").unwrap();
        assert_eq!(a.as_str(), "alice.b+tag@example.com");
    }

    #[test]
    fn international_domain_is_stored_as_ascii() {
        let a = EmailAddress::parse("user@例子.中国").unwrap();
        assert_eq!(a.as_str(), "user@xn--fsqu00a.xn--fiqs8s");
    }

    #[test]
    fn full_width_look_alikes_fold_to_one_domain() {
        let a = EmailAddress::parse("user@ｅｘａｍｐｌｅ.com").unwrap();
        assert_eq!(a.as_str(), "user@example.com");
    }

    #[test]
    fn rejects_injection_and_display_names() {
        for bad in [
            "a@b.com\r\nBcc: evil@x.com",
            "a@b.com\nBcc:evil@x.com",
            "Bob <bob@example.com>",
            "bob@example.com>",
            "\"quoted\"@example.com",
            "a b@example.com",
            "a@b@example.com",
            "a\0@example.com",
            "@example.com",
            "a@",
            "a@localhost",
            "a@-x.com",
            "a@1.2.3.4",
            "a..b@example.com",
            ".a@example.com",
            "ü@example.com",
            "",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn length_limit_is_254() {
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63)
        );
        let ok = format!("{}@{domain}", "x".repeat(254 - domain.len() - 1));
        assert_eq!(ok.len(), 254);
        assert!(EmailAddress::parse(&ok).is_ok());
        let long = format!("y{ok}");
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn masks_for_logs() {
        let a = EmailAddress::parse("abcdef@qq.com").unwrap();
        assert_eq!(a.masked(), "ab***@qq.com");
        assert!(!format!("{a:?}").contains("abcdef"));
    }
}
