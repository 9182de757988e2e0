//! Why a send failed, in words an operator can act on: the cause and the fix,
//! in zh-CN or en. `doctor`, `send-test`, the worker's log line and the
//! outbox's `last_error` all explain failures through this one module, and
//! always keep the server's raw reply beside the explanation.

use std::fmt;

use crate::config::{Provider, Security, SmtpSettings};
use crate::domain::Lang;

mod explain;
use explain::explain;

/// The label of `authmail_mail_failed_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    Auth,
    Tls,
    Connect,
    Timeout,
    Rejected,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Tls => "tls",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Rejected => "rejected",
        }
    }
}

/// Where in the SMTP dialogue a failure happened, when the caller knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A whole send through the transport: the stage is read from the reply.
    Any,
    Connect,
    /// Waiting for the greeting, or for the server's side of an implicit TLS handshake.
    Greeting,
    Tls,
    Auth,
    MailFrom,
    RcptTo,
}

/// What went wrong, as far as the reply tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Dns,
    ConnectRefused,
    ConnectTimeout,
    GreetingTimeout,
    /// Timed out somewhere in a send; which step is not known.
    Timeout,
    /// Connected and talking, then no answer to a command (AUTH, MAIL FROM, RCPT TO).
    ReplyTimeout,
    SecurityMismatch,
    StartTlsNotOffered,
    AuthOnlyAfterTls,
    AuthNotOffered,
    Certificate,
    AuthFailed,
    SenderRefused,
    Spam,
    Throttled,
    RecipientRejected,
    Other,
}

impl Cause {
    /// Reads the cause from a reply or error text (as `transport::describe` writes it).
    pub fn of(raw: &str, stage: Stage) -> Cause {
        let lower = raw.to_ascii_lowercase();
        let code = reply_code(raw);
        let timed_out = lower.contains("timed out") || lower.contains("timeout");
        match (stage, code) {
            (_, Some(535 | 534)) => return Cause::AuthFailed,
            (Stage::MailFrom, Some(501 | 550 | 553 | 554)) => return Cause::SenderRefused,
            (Stage::RcptTo, Some(550..=553)) => return Cause::RecipientRejected,
            (_, Some(530 | 538)) if lower.contains("tls") => return Cause::AuthOnlyAfterTls,
            (_, Some(554)) if lower.contains("dt:spm") => return Cause::Spam,
            (_, Some(550)) if lower.contains("content") || lower.contains("spam") => {
                return Cause::Spam
            }
            (_, Some(553)) => return Cause::SenderRefused,
            (_, Some(501)) if lower.contains("from") || lower.contains("sender") => {
                return Cause::SenderRefused
            }
            (_, Some(550..=552)) => return Cause::RecipientRejected,
            (_, Some(421 | 450 | 451 | 452)) => return Cause::Throttled,
            (_, Some(_)) => return Cause::Other,
            _ => {}
        }
        if lower.contains("certificate") || lower.contains("unknownissuer") {
            Cause::Certificate
        } else if lower.contains("wrong version number")
            || lower.contains("invalidcontenttype")
            || lower.contains("corrupt message")
            || lower.contains("invalid message")
        {
            Cause::SecurityMismatch
        } else if lower.contains("authentication mechanism") {
            Cause::AuthNotOffered
        } else if lower.contains("starttls") {
            Cause::StartTlsNotOffered
        } else if lower.contains("lookup")
            || lower.contains("name or service not known")
            || lower.contains("no address")
        {
            Cause::Dns
        } else if lower.contains("refused") {
            Cause::ConnectRefused
        } else if timed_out {
            match stage {
                Stage::Connect => Cause::ConnectTimeout,
                Stage::Greeting => Cause::GreetingTimeout,
                Stage::Auth | Stage::MailFrom | Stage::RcptTo => Cause::ReplyTimeout,
                _ => Cause::Timeout,
            }
        } else {
            Cause::Other
        }
    }

    pub fn class(self) -> FailureClass {
        match self {
            Cause::Dns | Cause::ConnectRefused => FailureClass::Connect,
            Cause::ConnectTimeout
            | Cause::GreetingTimeout
            | Cause::Timeout
            | Cause::ReplyTimeout => FailureClass::Timeout,
            Cause::SecurityMismatch
            | Cause::StartTlsNotOffered
            | Cause::AuthOnlyAfterTls
            | Cause::Certificate => FailureClass::Tls,
            Cause::AuthFailed | Cause::AuthNotOffered => FailureClass::Auth,
            Cause::SenderRefused
            | Cause::Spam
            | Cause::Throttled
            | Cause::RecipientRejected
            | Cause::Other => FailureClass::Rejected,
        }
    }
}

/// The leading three-digit SMTP reply code, when the text starts with one.
pub fn reply_code(raw: &str) -> Option<u16> {
    let raw = raw.trim_start();
    let code: u16 = raw.get(..3)?.parse().ok()?;
    let next = raw.as_bytes().get(3).copied();
    let separated = matches!(next, None | Some(b' ' | b'-'));
    ((200..600).contains(&code) && separated).then_some(code)
}

/// What the explanations need to know about the settings.
#[derive(Clone, Debug)]
pub struct Context {
    pub server: String,
    /// The server is `SMTP_PROVIDER`'s preset host, not a typed `SMTP_SERVER`.
    pub server_from_preset: bool,
    pub port: u16,
    pub security: Security,
    pub provider: Option<Provider>,
    pub from: String,
    pub user: Option<String>,
    pub timeout_secs: u64,
}

impl Context {
    pub fn of(smtp: &SmtpSettings) -> Context {
        Context {
            server: smtp.server.clone(),
            server_from_preset: smtp.server_from_preset,
            port: smtp.port,
            security: smtp.security,
            provider: smtp.provider,
            from: smtp.from.as_str().to_string(),
            user: smtp.user.clone(),
            timeout_secs: smtp.timeout.as_secs(),
        }
    }
}

/// The cause and the fix for one failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: Cause,
    pub why: String,
    pub fix: String,
}

impl Diagnosis {
    /// `None` when the reply says nothing more than itself.
    pub fn of(raw: &str, stage: Stage, ctx: &Context, lang: Lang) -> Option<Diagnosis> {
        let cause = Cause::of(raw, stage);
        let (why, fix) = explain(cause, raw, ctx, lang)?;
        Some(Diagnosis { cause, why, fix })
    }

    pub fn render(&self, lang: Lang) -> String {
        let args: &crate::messages::Args = &[("why", &self.why), ("fix", &self.fix)];
        crate::messages::CauseText::Line.say(lang, args)
    }
}

/// The raw reply followed by its explanation: what `last_error`, the log
/// line and `send-test` show.
pub fn annotate(raw: &str, stage: Stage, ctx: &Context, lang: Lang) -> String {
    match Diagnosis::of(raw, stage, ctx, lang) {
        Some(d) => format!("{raw} — {}", d.render(lang)),
        None => raw.to_string(),
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(provider: Option<Provider>) -> Context {
        Context {
            server: "smtp.qq.com".into(),
            server_from_preset: false,
            port: 465,
            security: Security::Tls,
            provider,
            from: "a@qq.com".into(),
            user: Some("a@qq.com".into()),
            timeout_secs: 10,
        }
    }

    #[test]
    fn causes_from_replies() {
        let cases = [
            (
                "535 5.7.8 Authentication failed",
                Stage::Any,
                Cause::AuthFailed,
            ),
            (
                "501 Mail from address must be same as authorization user",
                Stage::Any,
                Cause::SenderRefused,
            ),
            (
                "550 5.1.1 Mailbox unavailable",
                Stage::Any,
                Cause::RecipientRejected,
            ),
            ("550 5.1.1 No", Stage::MailFrom, Cause::SenderRefused),
            ("554 DT:SPM 163 smtp", Stage::Any, Cause::Spam),
            ("451 4.3.0 Try later", Stage::Any, Cause::Throttled),
            (
                "Connection error: Connection refused (os error 111)",
                Stage::Any,
                Cause::ConnectRefused,
            ),
            ("timed out after 9 s", Stage::Any, Cause::Timeout),
            ("timed out", Stage::Connect, Cause::ConnectTimeout),
            ("timed out", Stage::Greeting, Cause::GreetingTimeout),
            ("timed out", Stage::Auth, Cause::ReplyTimeout),
            (
                "invalid peer certificate: UnknownIssuer",
                Stage::Any,
                Cause::Certificate,
            ),
            (
                "received corrupt message of type InvalidContentType",
                Stage::Any,
                Cause::SecurityMismatch,
            ),
            (
                "STARTTLS is not supported on this server",
                Stage::Any,
                Cause::StartTlsNotOffered,
            ),
            ("250 OK", Stage::Any, Cause::Other),
        ];
        for (raw, stage, cause) in cases {
            assert_eq!(Cause::of(raw, stage), cause, "{raw}");
        }
    }

    #[test]
    fn reply_codes_need_exactly_three_digits() {
        assert_eq!(reply_code("535 x"), Some(535));
        assert_eq!(reply_code("5350 x"), None);
        assert_eq!(reply_code("timed out"), None);
        assert_eq!(reply_code("127.0.0.1:1: Connection refused"), None);
    }

    #[test]
    fn authorisation_code_for_qq_in_both_languages() {
        let raw = "535 Login fail";
        let zh = annotate(raw, Stage::Any, &ctx(Some(Provider::Qq)), Lang::ZhCn);
        assert!(
            zh.starts_with(raw) && zh.contains("授权码") && zh.contains("生成授权码"),
            "{zh}"
        );
        let en = annotate(raw, Stage::Any, &ctx(Some(Provider::Qq)), Lang::En);
        assert!(en.contains("authorisation code"), "{en}");
        let gmail = annotate(raw, Stage::Any, &ctx(Some(Provider::Gmail)), Lang::En);
        assert!(gmail.contains("app password"), "{gmail}");
        let other = annotate(raw, Stage::Any, &ctx(None), Lang::En);
        assert!(
            other.contains("check SMTP_USER and SMTP_PASSWORD"),
            "{other}"
        );
    }

    #[test]
    fn classes_label_metrics() {
        assert_eq!(Cause::of("535 x", Stage::Any).class(), FailureClass::Auth);
        assert_eq!(
            Cause::of("refused", Stage::Any).class(),
            FailureClass::Connect
        );
        assert_eq!(
            Cause::of("certificate", Stage::Any).class(),
            FailureClass::Tls
        );
        assert_eq!(
            Cause::of("timed out", Stage::Any).class(),
            FailureClass::Timeout
        );
        assert_eq!(
            Cause::of("550 no", Stage::Any).class(),
            FailureClass::Rejected
        );
    }

    #[test]
    fn dns_advice_blames_the_network_for_a_preset_host() {
        let raw = "lookup of smtp.qq.com failed: Name or service not known";
        let typed = Diagnosis::of(raw, Stage::Any, &ctx(Some(Provider::Qq)), Lang::En).unwrap();
        assert!(
            typed.fix.contains("spelling of SMTP_SERVER"),
            "{}",
            typed.fix
        );
        let preset = Context {
            server_from_preset: true,
            ..ctx(Some(Provider::Qq))
        };
        let en = Diagnosis::of(raw, Stage::Any, &preset, Lang::En).unwrap();
        assert!(
            en.fix
                .contains("smtp.qq.com is the host SMTP_PROVIDER=qq presets"),
            "{}",
            en.fix
        );
        assert!(!en.fix.contains("SMTP_SERVER"), "{}", en.fix);
        let zh = Diagnosis::of(raw, Stage::Any, &preset, Lang::ZhCn).unwrap();
        assert!(zh.fix.contains("预设的主机"), "{}", zh.fix);
    }
}
