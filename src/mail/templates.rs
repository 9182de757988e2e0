//! Mail templates: built in, each overridable by a file of the same name under
//! `TEMPLATES_DIR` (`<lang>/<kind>.subject.txt`, `.txt`, `.html`). Every body
//! leaves here with CRLF line ends, whatever the template file had.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::domain::Lang;

macro_rules! builtin {
    ($($lang:literal / $file:literal),* $(,)?) => {
        &[$((concat!($lang, "/", $file), include_str!(concat!("../../templates/mail/", $lang, "/", $file)))),*]
    };
}

const BUILTIN: &[(&str, &str)] = builtin![
    "zh-CN" / "code.subject.txt",
    "zh-CN" / "code.txt",
    "zh-CN" / "code.html",
    "zh-CN" / "password_changed.subject.txt",
    "zh-CN" / "password_changed.txt",
    "zh-CN" / "password_changed.html",
    "zh-CN" / "test.subject.txt",
    "zh-CN" / "test.txt",
    "zh-CN" / "test.html",
    "zh-CN" / "account_exists.subject.txt",
    "zh-CN" / "account_exists.txt",
    "zh-CN" / "account_exists.html",
    "zh-CN" / "no_account.subject.txt",
    "zh-CN" / "no_account.txt",
    "zh-CN" / "no_account.html",
    "en" / "code.subject.txt",
    "en" / "code.txt",
    "en" / "code.html",
    "en" / "password_changed.subject.txt",
    "en" / "password_changed.txt",
    "en" / "password_changed.html",
    "en" / "test.subject.txt",
    "en" / "test.txt",
    "en" / "test.html",
    "en" / "account_exists.subject.txt",
    "en" / "account_exists.txt",
    "en" / "account_exists.html",
    "en" / "no_account.subject.txt",
    "en" / "no_account.txt",
    "en" / "no_account.html",
];

/// Every template, each in every language: a code, the notices sent instead
/// of a code, the password-changed notice and the test mail.
pub const KINDS: [&str; 5] = [
    "code",
    "account_exists",
    "no_account",
    "password_changed",
    "test",
];

/// What a template may use.
#[derive(Serialize)]
pub struct MailContext<'a> {
    pub purpose: &'a str,
    pub code: Option<&'a str>,
    pub minutes: i64,
    pub email: &'a str,
    pub public_url: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads the templates; with a `dir`, renders each once so a broken
    /// override stops start-up instead of a mail.
    pub fn new(dir: Option<&Path>) -> Result<Self, String> {
        let mut env = Environment::new();
        let dir: Option<PathBuf> = dir.map(Path::to_path_buf);
        env.set_loader(move |name| {
            if let Some(path) = dir.as_ref().map(|d| d.join(name)).filter(|p| p.is_file()) {
                return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("{}: {e}", path.display()),
                    )
                });
            }
            Ok(BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string()))
        });
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        let templates = Self { env };
        templates.check()?;
        Ok(templates)
    }

    fn check(&self) -> Result<(), String> {
        for lang in [Lang::ZhCn, Lang::En] {
            for kind in KINDS {
                let ctx = MailContext {
                    purpose: "register",
                    code: Some("123456"),
                    minutes: 5,
                    email: "user@example.com",
                    public_url: "http://127.0.0.1:8080",
                };
                self.render(kind, lang, &ctx)?;
            }
        }
        Ok(())
    }

    /// `kind` is one of [`KINDS`].
    pub fn render(
        &self,
        kind: &str,
        lang: Lang,
        ctx: &MailContext<'_>,
    ) -> Result<RenderedMail, String> {
        let one = |suffix: &str| -> Result<String, String> {
            let name = format!("{lang}/{kind}.{suffix}");
            self.env
                .get_template(&name)
                .and_then(|t| t.render(ctx))
                .map_err(|e| format!("template {name}: {e}"))
        };
        let subject = one("subject.txt")?;
        // A subject is one header line: fold any line breaks away (no header injection).
        let subject = subject
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(RenderedMail {
            subject,
            text: crlf(&one("txt")?),
            html: crlf(&one("html")?),
        })
    }
}

/// CRLF line ends everywhere. SMTP dot-stuffing (RFC 5321 §4.5.2) only looks at
/// lines that end in CRLF; a bare-LF "." line would end the DATA early in
/// lettre 0.11.23 (RUSTSEC-2026-0561), so no bare LF or CR may reach it.
pub fn crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 32);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MailContext<'static> {
        MailContext {
            purpose: "login",
            code: Some("482913"),
            minutes: 5,
            email: "a@example.com",
            public_url: "https://auth.example.com",
        }
    }

    #[test]
    fn code_appears_in_both_parts_in_both_languages() {
        let t = Templates::new(None).unwrap();
        for lang in [Lang::ZhCn, Lang::En] {
            let m = t.render("code", lang, &ctx()).unwrap();
            assert!(
                m.text.contains("482913") && m.html.contains("482913"),
                "{lang}"
            );
            assert!(!m.subject.is_empty() && !m.subject.contains('\n'));
        }
        assert_eq!(
            t.render("code", Lang::ZhCn, &ctx()).unwrap().subject,
            "登录验证码"
        );
        assert_eq!(
            t.render("code", Lang::En, &ctx()).unwrap().subject,
            "Your sign-in code"
        );
    }

    #[test]
    fn notices_carry_no_code_and_link_to_the_right_page() {
        let t = Templates::new(None).unwrap();
        for lang in [Lang::ZhCn, Lang::En] {
            for (kind, links) in [
                ("account_exists", &["/login", "/forgot-password"][..]),
                ("no_account", &["/register"][..]),
            ] {
                let m = t.render(kind, lang, &ctx()).unwrap();
                assert!(!m.text.contains("482913") && !m.html.contains("482913"));
                for link in links {
                    let url = format!("https://auth.example.com{link}");
                    // The HTML part escapes `/` (as `&#x2f;`), which an href decodes.
                    let html = m.html.replace("&#x2f;", "/");
                    assert!(
                        m.text.contains(&url) && html.contains(&url),
                        "{lang} {kind}: {html}"
                    );
                }
            }
        }
    }

    #[test]
    fn crlf_normalises_every_line_end() {
        assert_eq!(crlf("a\nb\r\nc\rd\n.\n"), "a\r\nb\r\nc\r\nd\r\n.\r\n");
        let out = crlf("x\n.\ny\r\r\n");
        assert!(!out.replace("\r\n", "").contains(['\r', '\n']));
    }

    #[test]
    fn overrides_apply_and_bare_lf_bodies_become_crlf() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        std::fs::write(dir.path().join("en/code.txt"), "Code:\n.\n{{ code }}\n").unwrap();
        std::fs::write(
            dir.path().join("en/code.subject.txt"),
            "Line one\nBcc: x@y.com\n",
        )
        .unwrap();
        let t = Templates::new(Some(dir.path())).unwrap();
        let m = t.render("code", Lang::En, &ctx()).unwrap();
        assert_eq!(m.text, "Code:\r\n.\r\n482913\r\n");
        assert_eq!(m.subject, "Line one Bcc: x@y.com");
        // Not overridden: the built-in one.
        assert!(m.html.contains("482913"));
    }

    #[test]
    fn broken_override_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("zh-CN")).unwrap();
        std::fs::write(dir.path().join("zh-CN/code.html"), "{% if %}").unwrap();
        let err = Templates::new(Some(dir.path())).err().unwrap();
        assert!(err.contains("zh-CN/code.html"), "{err}");
    }

    #[test]
    fn html_escapes_values() {
        let t = Templates::new(None).unwrap();
        let mut c = ctx();
        c.email = "<b>@example.com";
        let m = t.render("password_changed", Lang::En, &c).unwrap();
        assert!(m.html.contains("&lt;b&gt;") && m.text.contains("<b>"));
    }
}
