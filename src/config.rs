//! Settings: read once at start-up from the environment and the env file,
//! validated into typed values. A bad value is one line naming the setting.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;

use crate::domain::Lang;

mod browsers;
mod challenge;
mod database;
mod dev;
mod error;
mod names;
mod smtp;
mod source;
#[cfg(test)]
mod tests;
mod webhook;

pub use browsers::BrowserSettings;
pub use challenge::{ChallengeMode, ChallengeSettings};
pub use database::DatabaseUrl;
pub use dev::DevMailbox;
use error::{bad, problem};
pub use error::{ConfigError, Problem};
pub use names::SETTINGS;
pub use smtp::{Provider, Security, SmtpSettings};
pub use source::Source;
pub use webhook::{WebhookSecret, WebhookSettings, WebhookUrl};

#[derive(Debug, Clone)]
pub struct CodePolicy {
    pub ttl_secs: i64,
    pub length: u8,
    pub max_attempts: i64,
    pub max_failures: i64,
    pub resend_cooldown_secs: i64,
}

/// Password guessing: `PASSWORD_MAX_FAILURES` (0 disables),
/// `PASSWORD_LOCK_SECS`, `RATE_LOGIN_IP_PER_HOUR` (0 disables).
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub max_failures: i64,
    pub lock_secs: i64,
    pub login_ip_per_hour: i64,
    /// How long a password check may wait for the argon2 pool before it is
    /// answered 503 instead: 2 s. Not a setting; tests shorten it so that a
    /// flood overflows it on a machine of any speed.
    pub hash_wait: std::time::Duration,
}

/// The JWTs `POST /api/auth/jwt` signs: their lifetime (`JWT_TTL_SECS`)
/// and their `aud` claim (`JWT_AUDIENCE`, none when unset).
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub ttl_secs: i64,
    pub audience: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub per_email_per_hour: i64,
    pub per_ip_per_hour: i64,
    /// Accepted send-codes across all instances per rolling hour.
    pub global_per_hour: i64,
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub webhook_url: Option<String>,
    pub failure_rate: f64,
    pub window_secs: i64,
    pub min_samples: i64,
}

/// How long an idle keep-alive connection is kept.
pub const IDLE_KEEP_ALIVE: Duration = Duration::from_secs(60);

/// The HTTP listeners' limits (`HTTP_TIMEOUT_SECS`, `HTTP_MAX_CONNECTIONS`, `METRICS_BIND`).

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time a client has to send a request's headers, and then its body.
    pub timeout: Duration,
    /// Keep-alive connections with no request in progress close after this:
    /// always [`IDLE_KEEP_ALIVE`] from the environment; an app built in a test
    /// may shorten it rather than wait a minute.
    pub idle: Duration,
    pub max_connections: usize,
    /// A second listener that serves only `/metrics`, to anyone who reaches it.
    pub metrics_bind: Option<SocketAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug)]
pub struct Settings {
    /// The SMTP server, when one is configured (even in dev mode, for `doctor`).
    pub smtp: Option<SmtpSettings>,
    /// Mail goes to the dev mailbox, never to SMTP.
    pub dev_mailbox: bool,
    pub database_url: DatabaseUrl,
    pub database: crate::storage::PoolSettings,
    /// How long sent and failed mail stays in the outbox before it is pruned.
    pub retention_secs: i64,
    pub bind: SocketAddr,
    pub public_url: String,
    pub secret_key: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    pub codes: CodePolicy,
    pub passwords: PasswordPolicy,
    pub limits: RateLimits,
    pub challenge: ChallengeSettings,
    pub session_ttl_secs: i64,
    pub jwt: JwtSettings,
    pub mail_lang: Lang,
    pub templates_dir: Option<PathBuf>,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    pub alert: AlertSettings,
    pub log_format: LogFormat,
    /// Lines to print as warnings at start (a likely typo in the environment,
    /// the dev mailbox on a public address).
    pub warnings: Vec<ConfigError>,
    pub http: HttpSettings,
    /// `CORS_ORIGINS`, `RETURN_TO_ORIGINS`.
    pub browsers: BrowserSettings,
    /// User events (`WEBHOOK_URL` with `WEBHOOK_SECRET`), when set.
    pub webhook: Option<WebhookSettings>,
}

impl Settings {
    /// Every setting, checked in a fixed order so the first bad one is the one
    /// reported.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        names::check_env_file(&src.from_file)?;
        let bind = bind(src)?;
        let public_url = public_url(src, bind)?;
        let mail_lang = src
            .parsed("MAIL_LANG", Lang::parse, "zh-CN, en")?
            .unwrap_or_default();
        let (retry_base_secs, retry_max_secs) = retry_secs(src)?;
        let smtp = smtp::smtp_settings(src)?;
        let mut warnings = names::unknown_in_environment(src.vars.keys());
        let dev_mailbox = dev::dev_mailbox(src, smtp.is_some(), bind, &public_url, &mut warnings)?;
        let webhook = webhook::webhook_settings(src, &mut warnings)?;
        Ok(Self {
            smtp,
            dev_mailbox,
            database_url: database::database_url(src)?,
            database: crate::storage::PoolSettings {
                max_connections: src.num("DATABASE_POOL_SIZE", 10, 1..=1000)?,
                timeout: Duration::from_secs(src.num("DATABASE_TIMEOUT_SECS", 5, 1..=300)?),
            },
            retention_secs: src.num("RETENTION_DAYS", 30, 1..=3650)? * 86_400,
            bind,
            secret_key: secret("SECRET_KEY", src)?,
            admin_token: secret("ADMIN_TOKEN", src)?,
            codes: CodePolicy::from_source(src)?,
            passwords: PasswordPolicy::from_source(src)?,
            limits: RateLimits::from_source(src)?,
            challenge: ChallengeSettings::from_source(src)?,
            session_ttl_secs: src.num("SESSION_TTL_SECS", 2_592_000, 60..=31_622_400)?,
            jwt: JwtSettings::from_source(src)?,
            mail_lang,
            templates_dir: templates_dir(src)?,
            retry_base_secs,
            retry_max_secs,
            alert: AlertSettings::from_source(src)?,
            log_format: log_format(src)?,
            warnings,
            http: http_settings(src)?,
            browsers: BrowserSettings::from_source(src, &public_url)?,
            public_url,
            webhook,
        })
    }

    pub fn dev_mailbox(&self) -> bool {
        self.dev_mailbox
    }
}

impl CodePolicy {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            ttl_secs: src.num("CODE_TTL_SECS", 300, 30..=86_400)?,
            length: src.num("CODE_LENGTH", 6, 4..=10)?,
            max_attempts: src.num("CODE_MAX_ATTEMPTS", 5, 1..=20)?,
            max_failures: src.num("CODE_MAX_FAILURES", 100, 0..=1_000_000)?,
            resend_cooldown_secs: src.num("RESEND_COOLDOWN_SECS", 60, 0..=86_400)?,
        })
    }
}

impl PasswordPolicy {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            max_failures: src.num("PASSWORD_MAX_FAILURES", 10, 0..=1_000_000)?,
            lock_secs: src.num("PASSWORD_LOCK_SECS", 900, 1..=86_400)?,
            login_ip_per_hour: src.num("RATE_LOGIN_IP_PER_HOUR", 100, 0..=1_000_000)?,
            hash_wait: std::time::Duration::from_secs(2),
        })
    }
}

impl JwtSettings {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            ttl_secs: src.num("JWT_TTL_SECS", 600, 60..=86_400)?,
            audience: src.get("JWT_AUDIENCE").map(str::to_string),
        })
    }
}

impl RateLimits {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            per_email_per_hour: src.num("RATE_EMAIL_PER_HOUR", 5, 0..=1_000_000)?,
            per_ip_per_hour: src.num("RATE_IP_PER_HOUR", 30, 0..=1_000_000)?,
            global_per_hour: src.num("RATE_GLOBAL_PER_HOUR", 1000, 0..=100_000_000)?,
            trusted_proxies: trusted_proxies(src)?,
        })
    }
}

impl AlertSettings {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            webhook_url: webhook_url(src)?,
            failure_rate: src.num("ALERT_FAILURE_RATE", 0.2, 0.0..=1.0)?,
            window_secs: src.num("ALERT_WINDOW_SECS", 300, 10..=86_400)?,
            min_samples: src.num("ALERT_MIN_SAMPLES", 5, 1..=1_000_000)?,
        })
    }
}

fn bind(src: &Source) -> Result<SocketAddr, ConfigError> {
    match src.get("BIND") {
        None => Ok(SocketAddr::from(([127, 0, 0, 1], 8080))),
        Some(raw) => raw.parse().map_err(|_| {
            bad(
                "BIND",
                format!("{raw:?} is not an address like 127.0.0.1:8080"),
                format!("{raw:?} 不是 127.0.0.1:8080 这样的地址"),
            )
        }),
    }
}

fn public_url(src: &Source, bind: SocketAddr) -> Result<String, ConfigError> {
    match src.get("PUBLIC_URL") {
        None => Ok(format!("http://{bind}")),
        Some(raw) if raw.starts_with("http://") || raw.starts_with("https://") => {
            Ok(raw.trim_end_matches('/').to_string())
        }
        Some(raw) => Err(bad(
            "PUBLIC_URL",
            format!("{raw:?} must start with http:// or https://"),
            format!("{raw:?} 必须以 http:// 或 https:// 开头"),
        )),
    }
}

/// `RETRY_BASE_SECS` and `RETRY_MAX_SECS`, the second not below the first.
fn retry_secs(src: &Source) -> Result<(u64, u64), ConfigError> {
    let base = src.num("RETRY_BASE_SECS", 5, 1..=86_400)?;
    let max = src.num("RETRY_MAX_SECS", 300, 1..=86_400)?;
    if max < base {
        return Err(bad(
            "RETRY_MAX_SECS",
            "must not be below RETRY_BASE_SECS",
            "不能小于 RETRY_BASE_SECS",
        ));
    }
    Ok((base, max))
}

fn log_format(src: &Source) -> Result<LogFormat, ConfigError> {
    let format = src.parsed(
        "LOG_FORMAT",
        |s| match s {
            "pretty" => Some(LogFormat::Pretty),
            "json" => Some(LogFormat::Json),
            _ => None,
        },
        "pretty, json",
    )?;
    Ok(format.unwrap_or(LogFormat::Pretty))
}

/// `SECRET_KEY` and `ADMIN_TOKEN`: at least 32 characters, so neither can be guessed.
fn secret(name: &'static str, src: &Source) -> Result<Option<SecretString>, ConfigError> {
    match src.get(name) {
        Some(k) if k.chars().count() < 32 => Err(bad(
            name,
            format!(
                "must be at least 32 characters (it has {}); for example: openssl rand -hex 32",
                k.chars().count()
            ),
            format!(
                "至少需要 32 个字符（现在是 {} 个）；例如：openssl rand -hex 32",
                k.chars().count()
            ),
        )),
        k => Ok(k.map(|k| SecretString::from(k.to_string()))),
    }
}

fn trusted_proxies(src: &Source) -> Result<Vec<IpNet>, ConfigError> {
    let Some(raw) = src.get("TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    bad(
                        "TRUSTED_PROXIES",
                        format!("{s:?} is not a CIDR like 10.0.0.0/8"),
                        format!("{s:?} 不是 10.0.0.0/8 这样的 CIDR"),
                    )
                })
        })
        .collect()
}

fn templates_dir(src: &Source) -> Result<Option<PathBuf>, ConfigError> {
    match src.get("TEMPLATES_DIR") {
        Some(dir) if !Path::new(dir).is_dir() => Err(bad(
            "TEMPLATES_DIR",
            format!("{dir} is not a directory"),
            format!("{dir} 不是目录"),
        )),
        dir => Ok(dir.map(PathBuf::from)),
    }
}

fn http_settings(src: &Source) -> Result<HttpSettings, ConfigError> {
    let metrics_bind = match src.get("METRICS_BIND") {
        None => None,
        Some(raw) => Some(raw.parse().map_err(|_| {
            bad(
                "METRICS_BIND",
                format!("{raw:?} is not an address like 127.0.0.1:9090"),
                format!("{raw:?} 不是 127.0.0.1:9090 这样的地址"),
            )
        })?),
    };
    Ok(HttpSettings {
        timeout: Duration::from_secs(src.num("HTTP_TIMEOUT_SECS", 10, 1..=300)?),
        idle: IDLE_KEEP_ALIVE,
        max_connections: src.num("HTTP_MAX_CONNECTIONS", 4096, 1..=1_000_000)?,
        metrics_bind,
    })
}

fn webhook_url(src: &Source) -> Result<Option<String>, ConfigError> {
    match src.get("ALERT_WEBHOOK_URL") {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(bad(
            "ALERT_WEBHOOK_URL",
            format!("{u:?} must start with http:// or https://"),
            format!("{u:?} 必须以 http:// 或 https:// 开头"),
        )),
        u => Ok(u.map(str::to_string)),
    }
}
