//! Settings: read once at start-up from the environment and the env file,
//! validated into typed values. A bad value is one line naming the setting.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;

use crate::domain::{EmailAddress, Lang};

/// A setting that failed validation; its `Display` is the one line printed before exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

fn bad(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        problem: problem.into(),
    }
}

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

#[derive(Debug, Clone)]
pub struct CodePolicy {
    pub ttl_secs: i64,
    pub length: u8,
    pub max_attempts: i64,
    pub max_failures: i64,
    pub resend_cooldown_secs: i64,
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub per_email_per_hour: i64,
    pub per_ip_per_hour: i64,
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub webhook_url: Option<String>,
    pub failure_rate: f64,
    pub window_secs: i64,
    pub min_samples: i64,
}

/// The HTTP listeners' limits (`HTTP_TIMEOUT_SECS`, `HTTP_MAX_CONNECTIONS`, `METRICS_BIND`).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time a client has to send a request's headers, and then its body.
    pub timeout: Duration,
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
    /// `None`: no SMTP configured, mail goes to the dev mailbox.
    pub smtp: Option<SmtpSettings>,
    pub database_url: String,
    pub database: crate::storage::PoolSettings,
    /// How long sent and failed mail stays in the outbox before it is pruned.
    pub retention_secs: i64,
    pub bind: SocketAddr,
    pub public_url: String,
    pub secret_key: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    pub codes: CodePolicy,
    pub limits: RateLimits,
    pub session_ttl_secs: i64,
    pub mail_lang: Lang,
    pub templates_dir: Option<PathBuf>,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    pub alert: AlertSettings,
    pub log_format: LogFormat,
    pub http: HttpSettings,
}

/// Where settings come from: the process environment over the env file.
pub struct Source {
    vars: HashMap<String, String>,
}

impl Source {
    /// `env_file`: the `--env-file` flag. Without it, `.env` is read when present.
    pub fn load(env_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut vars = HashMap::new();
        let path = match env_file {
            Some(p) if !p.exists() => {
                return Err(bad("--env-file", format!("{} does not exist", p.display())))
            }
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(".env")).filter(|p| p.exists()),
        };
        if let Some(path) = path {
            let iter = dotenvy::from_path_iter(&path)
                .map_err(|e| bad("--env-file", format!("{}: {e}", path.display())))?;
            for item in iter {
                let (k, v) =
                    item.map_err(|e| bad("--env-file", format!("{}: {e}", path.display())))?;
                vars.insert(k, v);
            }
        }
        vars.extend(std::env::vars());
        Ok(Self { vars })
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self { vars }
    }

    /// A set, non-empty value (an empty assignment in `.env` means unset).
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn num<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let v: T = raw
            .parse()
            .map_err(|_| bad(name, format!("{raw:?} is not a number")))?;
        if !range.contains(&v) {
            return Err(bad(
                name,
                format!("{v} is out of range ({}–{})", range.start(), range.end()),
            ));
        }
        Ok(v)
    }

    fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|raw| {
                parse(raw).ok_or_else(|| bad(name, format!("{raw:?} is not one of {expected}")))
            })
            .transpose()
    }
}

impl Settings {
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let bind: SocketAddr = match src.get("BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(raw) => raw.parse().map_err(|_| {
                bad(
                    "BIND",
                    format!("{raw:?} is not an address like 127.0.0.1:8080"),
                )
            })?,
        };
        let public_url = match src.get("PUBLIC_URL") {
            None => format!("http://{bind}"),
            Some(raw) if raw.starts_with("http://") || raw.starts_with("https://") => {
                raw.trim_end_matches('/').to_string()
            }
            Some(raw) => {
                return Err(bad(
                    "PUBLIC_URL",
                    format!("{raw:?} must start with http:// or https://"),
                ))
            }
        };
        let mail_lang = src
            .parsed("MAIL_LANG", Lang::parse, "zh-CN, en")?
            .unwrap_or_default();
        let retry_base_secs = src.num("RETRY_BASE_SECS", 5, 1..=86_400)?;
        let retry_max_secs = src.num("RETRY_MAX_SECS", 300, 1..=86_400)?;
        if retry_max_secs < retry_base_secs {
            return Err(bad("RETRY_MAX_SECS", "must not be below RETRY_BASE_SECS"));
        }
        Ok(Self {
            smtp: smtp_settings(src)?,
            database_url: database_url(src)?,
            database: crate::storage::PoolSettings {
                max_connections: src.num("DATABASE_POOL_SIZE", 10, 1..=1000)?,
                timeout: Duration::from_secs(src.num("DATABASE_TIMEOUT_SECS", 5, 1..=300)?),
            },
            retention_secs: src.num("RETENTION_DAYS", 30, 1..=3650)? * 86_400,
            bind,
            public_url,
            secret_key: secret_key(src)?,
            admin_token: src
                .get("ADMIN_TOKEN")
                .map(|t| SecretString::from(t.to_string())),
            codes: CodePolicy {
                ttl_secs: src.num("CODE_TTL_SECS", 300, 30..=86_400)?,
                length: src.num("CODE_LENGTH", 6, 4..=10)?,
                max_attempts: src.num("CODE_MAX_ATTEMPTS", 5, 1..=20)?,
                max_failures: src.num("CODE_MAX_FAILURES", 100, 0..=1_000_000)?,
                resend_cooldown_secs: src.num("RESEND_COOLDOWN_SECS", 60, 0..=86_400)?,
            },
            limits: RateLimits {
                per_email_per_hour: src.num("RATE_EMAIL_PER_HOUR", 5, 0..=1_000_000)?,
                per_ip_per_hour: src.num("RATE_IP_PER_HOUR", 30, 0..=1_000_000)?,
                trusted_proxies: trusted_proxies(src)?,
            },
            session_ttl_secs: src.num("SESSION_TTL_SECS", 2_592_000, 60..=31_622_400)?,
            mail_lang,
            templates_dir: templates_dir(src)?,
            retry_base_secs,
            retry_max_secs,
            alert: AlertSettings {
                webhook_url: webhook_url(src)?,
                failure_rate: src.num("ALERT_FAILURE_RATE", 0.2, 0.0..=1.0)?,
                window_secs: src.num("ALERT_WINDOW_SECS", 300, 10..=86_400)?,
                min_samples: src.num("ALERT_MIN_SAMPLES", 5, 1..=1_000_000)?,
            },
            log_format: src
                .parsed(
                    "LOG_FORMAT",
                    |s| match s {
                        "pretty" => Some(LogFormat::Pretty),
                        "json" => Some(LogFormat::Json),
                        _ => None,
                    },
                    "pretty, json",
                )?
                .unwrap_or(LogFormat::Pretty),
            http: http_settings(src)?,
        })
    }

    pub fn dev_mailbox(&self) -> bool {
        self.smtp.is_none()
    }
}

fn smtp_settings(src: &Source) -> Result<Option<SmtpSettings>, ConfigError> {
    let provider = src.parsed("SMTP_PROVIDER", Provider::parse, "qq, 163, gmail, exmail")?;
    let preset = provider.map(Provider::preset);
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
    let Some(server) = src.get("SMTP_SERVER").or(preset.map(|p| p.0)) else {
        return Ok(None);
    };
    if server.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
        && server.parse::<IpAddr>().is_err()
    {
        return Err(bad(
            "SMTP_SERVER",
            format!("{server:?} is not a host name (no scheme or port)"),
        ));
    }
    // Explicit settings win; one given derives the other; neither: the preset, else 587 STARTTLS.
    let (port, security) = match (port, security) {
        (Some(p), Some(s)) => (p, s),
        (Some(p), None) => (p, Security::for_port(p)),
        (None, Some(s)) => (s.default_port(), s),
        (None, None) => preset.map_or((587, Security::StartTls), |p| (p.1, p.2)),
    };
    let user = src.get("SMTP_USER").map(str::to_string);
    if security == Security::None && password.is_some() && !is_loopback(server) {
        return Err(bad(
            "SMTP_SECURITY",
            "none would send the password in clear text to a server that is not on this machine",
        ));
    }
    if password.is_some() && user.is_none() {
        return Err(bad("SMTP_USER", "must be set when a password is set"));
    }
    let from = match (src.get("SMTP_FROM"), &user) {
        (Some(raw), _) => EmailAddress::parse(raw).map_err(|e| bad("SMTP_FROM", e.to_string()))?,
        (None, Some(u)) => EmailAddress::parse(u).map_err(|_| {
            bad(
                "SMTP_FROM",
                "must be set because SMTP_USER is not an email address",
            )
        })?,
        (None, None) => return Err(bad("SMTP_FROM", "must be set when SMTP_USER is not set")),
    };
    let from_name = src.get("SMTP_FROM_NAME").map(str::to_string);
    if from_name
        .as_deref()
        .is_some_and(|n| n.chars().any(char::is_control))
    {
        return Err(bad("SMTP_FROM_NAME", "must not contain control characters"));
    }
    Ok(Some(SmtpSettings {
        server: server.to_string(),
        port,
        security,
        user,
        password,
        provider,
        from,
        from_name,
        timeout,
        ca_pem,
        pool_size,
    }))
}

fn smtp_password(src: &Source) -> Result<Option<SecretString>, ConfigError> {
    match (
        src.vars.get("SMTP_PASSWORD").filter(|p| !p.is_empty()),
        src.get("SMTP_PASSWORD_FILE"),
    ) {
        (Some(_), Some(_)) => Err(bad(
            "SMTP_PASSWORD_FILE",
            "set together with SMTP_PASSWORD; set only one",
        )),
        // Not trimmed: a password may legitimately end in a space.
        (Some(p), None) => Ok(Some(SecretString::from(p.clone()))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad("SMTP_PASSWORD_FILE", format!("cannot read {path}: {e}")))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                return Err(bad("SMTP_PASSWORD_FILE", format!("{path} is empty")));
            }
            Ok(Some(SecretString::from(text.to_string())))
        }
        (None, None) => Ok(None),
    }
}

fn read_ca(path: &str) -> Result<Vec<u8>, ConfigError> {
    let pem =
        std::fs::read(path).map_err(|e| bad("SMTP_CA_FILE", format!("cannot read {path}: {e}")))?;
    if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err()
        || !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE")
    {
        return Err(bad(
            "SMTP_CA_FILE",
            format!("{path} holds no PEM certificate"),
        ));
    }
    Ok(pem)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn database_url(src: &Source) -> Result<String, ConfigError> {
    let url = src.get("DATABASE_URL").unwrap_or("sqlite://authmail.db");
    if url.starts_with("sqlite:") && (url.contains(":memory:") || url.contains("mode=memory")) {
        // SQLite writes go through a writer with a connection of its own,
        // which could not see a private in-memory database (nor would it last).
        return Err(bad(
            "DATABASE_URL",
            format!(
                "{url:?} is an in-memory SQLite database; name a file, e.g. sqlite://authmail.db"
            ),
        ));
    }
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(url.to_string())
    } else {
        Err(bad(
            "DATABASE_URL",
            format!("{url:?} must start with sqlite:// or postgres://"),
        ))
    }
}

fn secret_key(src: &Source) -> Result<Option<SecretString>, ConfigError> {
    match src.get("SECRET_KEY") {
        Some(k) if k.len() < 32 => Err(bad("SECRET_KEY", "must be at least 32 characters")),
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
                    )
                })
        })
        .collect()
}

fn templates_dir(src: &Source) -> Result<Option<PathBuf>, ConfigError> {
    match src.get("TEMPLATES_DIR") {
        Some(dir) if !Path::new(dir).is_dir() => {
            Err(bad("TEMPLATES_DIR", format!("{dir} is not a directory")))
        }
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
            )
        })?),
    };
    Ok(HttpSettings {
        timeout: Duration::from_secs(src.num("HTTP_TIMEOUT_SECS", 10, 1..=300)?),
        max_connections: src.num("HTTP_MAX_CONNECTIONS", 4096, 1..=1_000_000)?,
        metrics_bind,
    })
}

fn webhook_url(src: &Source) -> Result<Option<String>, ConfigError> {
    match src.get("ALERT_WEBHOOK_URL") {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(bad(
            "ALERT_WEBHOOK_URL",
            format!("{u:?} must start with http:// or https://"),
        )),
        u => Ok(u.map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_source(&Source::from_map(vars))
    }

    fn smtp(pairs: &[(&str, &str)]) -> SmtpSettings {
        settings(pairs).unwrap().smtp.unwrap()
    }

    #[test]
    fn defaults_need_no_settings() {
        let s = settings(&[]).unwrap();
        assert!(s.dev_mailbox());
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://authmail.db");
        assert_eq!(s.codes.ttl_secs, 300);
        assert_eq!(s.codes.length, 6);
    }

    #[test]
    fn port_and_security_derive_from_each_other() {
        let base = [
            ("SMTP_SERVER", "mail.example.com"),
            ("SMTP_USER", "a@example.com"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            let s = smtp(&v);
            (s.port, s.security)
        };
        assert_eq!(with(&[]), (587, Security::StartTls));
        assert_eq!(with(&[("SMTP_PORT", "465")]), (465, Security::Tls));
        assert_eq!(with(&[("SMTP_PORT", "25")]), (25, Security::Opportunistic));
        assert_eq!(with(&[("SMTP_PORT", "2525")]), (2525, Security::StartTls));
        assert_eq!(with(&[("SMTP_SECURITY", "tls")]), (465, Security::Tls));
        assert_eq!(with(&[("SMTP_SECURITY", "none")]), (25, Security::None));
    }

    #[test]
    fn provider_presets_fill_server_and_explicit_settings_win() {
        let s = smtp(&[("SMTP_PROVIDER", "qq"), ("SMTP_USER", "1@qq.com")]);
        assert_eq!(
            (s.server.as_str(), s.port, s.security),
            ("smtp.qq.com", 465, Security::Tls)
        );
        let s = smtp(&[
            ("SMTP_PROVIDER", "163"),
            ("SMTP_USER", "a@163.com"),
            ("SMTP_PORT", "587"),
        ]);
        assert_eq!(
            (s.server.as_str(), s.port, s.security),
            ("smtp.163.com", 587, Security::StartTls)
        );
        let s = smtp(&[("SMTP_PROVIDER", "gmail"), ("SMTP_USER", "a@gmail.com")]);
        assert_eq!((s.server.as_str(), s.port), ("smtp.gmail.com", 587));
        let s = smtp(&[
            ("SMTP_PROVIDER", "exmail"),
            ("SMTP_USER", "a@corp.com"),
            ("SMTP_SERVER", "relay.corp.com"),
        ]);
        assert_eq!(s.server, "relay.corp.com");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("CODE_LENGTH", "3")], "CODE_LENGTH"),
            (&[("CODE_TTL_SECS", "abc")], "CODE_TTL_SECS"),
            (&[("CODE_MAX_ATTEMPTS", "21")], "CODE_MAX_ATTEMPTS"),
            (
                &[
                    ("SMTP_SERVER", "x.com"),
                    ("SMTP_USER", "a@x.com"),
                    ("SMTP_PORT", "70000"),
                ],
                "SMTP_PORT",
            ),
            (
                &[
                    ("SMTP_SERVER", "x.com"),
                    ("SMTP_USER", "a@x.com"),
                    ("SMTP_SECURITY", "ssl"),
                ],
                "SMTP_SECURITY",
            ),
            (&[("SMTP_SERVER", "x.com")], "SMTP_FROM"),
            (&[("SMTP_PROVIDER", "yahoo")], "SMTP_PROVIDER"),
            (
                &[
                    ("SMTP_SERVER", "x.com"),
                    ("SMTP_USER", "a@x.com"),
                    ("SMTP_PASSWORD", "p"),
                    ("SMTP_PASSWORD_FILE", "/etc/hostname"),
                ],
                "SMTP_PASSWORD_FILE",
            ),
            (
                &[
                    ("SMTP_SERVER", "x.com"),
                    ("SMTP_USER", "a@x.com"),
                    ("SMTP_PASSWORD", "p"),
                    ("SMTP_SECURITY", "none"),
                ],
                "SMTP_SECURITY",
            ),
            (&[("MAIL_LANG", "fr")], "MAIL_LANG"),
            (&[("BIND", "nowhere")], "BIND"),
            (&[("TRUSTED_PROXIES", "10.0.0.0/33")], "TRUSTED_PROXIES"),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (
                &[("RETRY_BASE_SECS", "10"), ("RETRY_MAX_SECS", "5")],
                "RETRY_MAX_SECS",
            ),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("SECRET_KEY", "short")], "SECRET_KEY"),
        ];
        for (pairs, name) in cases {
            let err = settings(pairs).expect_err(name);
            assert_eq!(err.name, *name, "{err}");
        }
    }

    #[test]
    fn clear_text_credentials_only_to_loopback() {
        let s = smtp(&[
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_USER", "a@x.com"),
            ("SMTP_PASSWORD", "p"),
            ("SMTP_SECURITY", "none"),
        ]);
        assert_eq!(s.security, Security::None);
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_plain_addresses() {
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
        assert_eq!(s.limits.trusted_proxies.len(), 3);
    }
}
