//! The SMTP server's settings: provider presets, port and security derived
//! from each other, credentials and the sender, checked at start-up.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;

use super::{bad, ConfigError, Source};
use crate::domain::EmailAddress;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Tls,
    StartTls,
    Opportunistic,
    None,
}

impl Security {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "tls" => Some(Self::Tls),
            "starttls" => Some(Self::StartTls),
            "opportunistic" => Some(Self::Opportunistic),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::StartTls => "starttls",
            Self::Opportunistic => "opportunistic",
            Self::None => "none",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Tls => 465,
            Self::StartTls => 587,
            Self::Opportunistic | Self::None => 25,
        }
    }

    fn for_port(port: u16) -> Self {
        match port {
            465 => Self::Tls,
            25 => Self::Opportunistic,
            _ => Self::StartTls,
        }
    }
}

/// Well-known providers: they fill in the server and tailor the diagnoses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Qq,
    Netease163,
    Gmail,
    Exmail,
}

impl Provider {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "qq" => Some(Self::Qq),
            "163" => Some(Self::Netease163),
            "gmail" => Some(Self::Gmail),
            "exmail" => Some(Self::Exmail),
            _ => None,
        }
    }

    /// Host and the port/security the provider documents first.
    fn preset(self) -> (&'static str, u16, Security) {
        match self {
            Self::Qq => ("smtp.qq.com", 465, Security::Tls),
            Self::Netease163 => ("smtp.163.com", 465, Security::Tls),
            Self::Gmail => ("smtp.gmail.com", 587, Security::StartTls),
            Self::Exmail => ("smtp.exmail.qq.com", 465, Security::Tls),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qq => "qq",
            Self::Netease163 => "163",
            Self::Gmail => "gmail",
            Self::Exmail => "exmail",
        }
    }

    /// Providers that log in with a per-mailbox authorisation code (授权码).
    pub fn uses_authorisation_code(self) -> bool {
        matches!(self, Self::Qq | Self::Netease163 | Self::Exmail)
    }
}

#[derive(Debug)]
pub struct SmtpSettings {
    pub server: String,
    /// The server came from `SMTP_PROVIDER`'s preset, not from `SMTP_SERVER`.
    pub server_from_preset: bool,
    pub port: u16,
    pub security: Security,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    pub provider: Option<Provider>,
    pub from: EmailAddress,
    pub from_name: Option<String>,
    pub timeout: Duration,
    /// PEM text of extra roots; read at start-up so a bad file fails early.
    pub ca_pem: Option<Vec<u8>>,
    pub pool_size: u32,
}

pub(super) fn smtp_settings(src: &Source) -> Result<Option<SmtpSettings>, ConfigError> {
    let provider = src.parsed("SMTP_PROVIDER", Provider::parse, "qq, 163, gmail, exmail")?;
    let port = match src.get("SMTP_PORT") {
        None => None,
        Some(_) => Some(src.num("SMTP_PORT", 587u16, 1..=65_535)?),
    };
    let security = src.parsed(
        "SMTP_SECURITY",
        Security::parse,
        "tls, starttls, opportunistic, none",
    )?;
    let password = smtp_password(src)?;
    let timeout = Duration::from_secs(src.num("SMTP_TIMEOUT_SECS", 10, 1..=300)?);
    let pool_size = src.num("SMTP_POOL_SIZE", 4, 1..=256)?;
    let ca_pem = match src.get("SMTP_CA_FILE") {
        None => None,
        Some(path) => Some(read_ca(path)?),
    };
    // Every value above is checked even in dev mode: a typo must not wait
    // until the day SMTP_SERVER is set to be noticed.
    let preset = provider.map(Provider::preset);
    let explicit_server = src.get("SMTP_SERVER");
    let Some(server) = explicit_server.or(preset.map(|p| p.0)) else {
        return Ok(None);
    };
    check_host(server)?;
    let (port, security) = port_and_security(port, security, preset);
    let user = src.get("SMTP_USER").map(str::to_string);
    check_credentials(server, security, &user, &password)?;
    Ok(Some(SmtpSettings {
        server: server.to_string(),
        server_from_preset: explicit_server.is_none(),
        port,
        security,
        from: from_address(src, &user)?,
        from_name: from_name(src)?,
        user,
        password,
        provider,
        timeout,
        ca_pem,
        pool_size,
    }))
}

fn check_host(server: &str) -> Result<(), ConfigError> {
    if server.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
        && server.parse::<IpAddr>().is_err()
    {
        return Err(bad(
            "SMTP_SERVER",
            format!("{server:?} is not a host name (no scheme or port)"),
            format!("{server:?} 不是主机名（不要带协议或端口）"),
        ));
    }
    Ok(())
}

/// Explicit settings win; one given derives the other; neither: the preset, else 587 STARTTLS.
fn port_and_security(
    port: Option<u16>,
    security: Option<Security>,
    preset: Option<(&str, u16, Security)>,
) -> (u16, Security) {
    match (port, security) {
        (Some(p), Some(s)) => (p, s),
        (Some(p), None) => (p, Security::for_port(p)),
        (None, Some(s)) => (s.default_port(), s),
        (None, None) => preset.map_or((587, Security::StartTls), |p| (p.1, p.2)),
    }
}

/// No password in clear text off this machine, and a user and a password together.
fn check_credentials(
    server: &str,
    security: Security,
    user: &Option<String>,
    password: &Option<SecretString>,
) -> Result<(), ConfigError> {
    if security == Security::None && password.is_some() && !is_loopback(server) {
        return Err(bad(
            "SMTP_SECURITY",
            "none would send the password in clear text to a server that is not on this machine",
            "none 会把密码以明文发给不在本机的服务器",
        ));
    }
    match (user, password) {
        // Without this, every send fails at AUTH (and doctor once said "all steps passed").
        (Some(_), None) => Err(bad(
            "SMTP_PASSWORD",
            "not set (nor SMTP_PASSWORD_FILE) while SMTP_USER is set: give the mailbox's password or authorisation code",
            "未设置（也没有 SMTP_PASSWORD_FILE），而 SMTP_USER 已设置：请填写邮箱的密码或授权码",
        )),
        (None, Some(_)) => Err(bad(
            "SMTP_USER",
            "must be set when a password is set",
            "设置了密码时必须设置",
        )),
        _ => Ok(()),
    }
}

/// `SMTP_FROM`, else `SMTP_USER` when it is an address.
fn from_address(src: &Source, user: &Option<String>) -> Result<EmailAddress, ConfigError> {
    match (src.get("SMTP_FROM"), user) {
        (Some(raw), _) => EmailAddress::parse(raw).map_err(|e| {
            bad(
                "SMTP_FROM",
                e.to_string(),
                format!("不是有效的邮箱地址：{e}"),
            )
        }),
        (None, Some(u)) => EmailAddress::parse(u).map_err(|_| {
            bad(
                "SMTP_FROM",
                "must be set because SMTP_USER is not an email address",
                "必须设置，因为 SMTP_USER 不是邮箱地址",
            )
        }),
        (None, None) => Err(bad(
            "SMTP_FROM",
            "must be set when SMTP_USER is not set",
            "未设置 SMTP_USER 时必须设置",
        )),
    }
}

fn from_name(src: &Source) -> Result<Option<String>, ConfigError> {
    let name = src.get("SMTP_FROM_NAME").map(str::to_string);
    if name
        .as_deref()
        .is_some_and(|n| n.chars().any(char::is_control))
    {
        return Err(bad(
            "SMTP_FROM_NAME",
            "must not contain control characters",
            "不能包含控制字符",
        ));
    }
    Ok(name)
}

fn smtp_password(src: &Source) -> Result<Option<SecretString>, ConfigError> {
    match (
        src.get("SMTP_PASSWORD").and(src.vars.get("SMTP_PASSWORD")),
        src.get("SMTP_PASSWORD_FILE"),
    ) {
        (Some(_), Some(_)) => Err(bad(
            "SMTP_PASSWORD_FILE",
            "set together with SMTP_PASSWORD; set only one",
            "与 SMTP_PASSWORD 同时设置了；只能设置一个",
        )),
        // Not trimmed: a password may legitimately end in a space.
        (Some(p), None) => Ok(Some(SecretString::from(p.clone()))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad(
                    "SMTP_PASSWORD_FILE",
                    format!("cannot read {path}: {e}"),
                    format!("无法读取 {path}：{e}"),
                )
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                return Err(bad(
                    "SMTP_PASSWORD_FILE",
                    format!("{path} is empty"),
                    format!("{path} 是空的"),
                ));
            }
            Ok(Some(SecretString::from(text.to_string())))
        }
        (None, None) => Ok(None),
    }
}

fn read_ca(path: &str) -> Result<Vec<u8>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        bad(
            "SMTP_CA_FILE",
            format!("cannot read {path}: {e}"),
            format!("无法读取 {path}：{e}"),
        )
    })?;
    if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err()
        || !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE")
    {
        return Err(bad(
            "SMTP_CA_FILE",
            format!("{path} holds no PEM certificate"),
            format!("{path} 里没有 PEM 证书"),
        ));
    }
    Ok(pem)
}

pub(super) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
