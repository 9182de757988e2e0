//! Settings: read once at start-up from the environment and the env file,
//! validated into typed values. A bad value is one line naming the setting.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;

use crate::domain::{EmailAddress, Lang};

mod names;
pub use names::SETTINGS;

/// A setting that failed validation; `render` is the one line printed before
/// exit 2, in the CLI's language (`Display` is the English one, for logs and tests).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render(Lang::En))]
pub struct ConfigError {
    pub name: String,
    pub problem: Problem,
}

/// What is wrong with a setting, worded in either language.
#[derive(Debug)]
pub enum Problem {
    NotANumber {
        raw: String,
    },
    OutOfRange {
        value: String,
        low: String,
        high: String,
    },
    NotOneOf {
        raw: String,
        expected: &'static str,
    },
    /// A name in the env file that no setting has.
    NotASetting {
        nearest: Option<&'static str>,
    },
    Text {
        en: String,
        zh: String,
    },
}

impl ConfigError {
    pub fn render(&self, lang: Lang) -> String {
        format!("{}: {}", self.name, self.problem.render(lang))
    }
}

impl Problem {
    fn render(&self, lang: Lang) -> String {
        let zh = lang == Lang::ZhCn;
        match self {
            Self::NotANumber { raw } if zh => format!("{raw:?} 不是数字"),
            Self::NotANumber { raw } => format!("{raw:?} is not a number"),
            Self::OutOfRange { value, low, high } if zh => {
                format!("{value} 超出范围（{low}–{high}）")
            }
            Self::OutOfRange { value, low, high } => {
                format!("{value} is out of range ({low}–{high})")
            }
            Self::NotOneOf { raw, expected } if zh => format!("{raw:?} 不是以下之一：{expected}"),
            Self::NotOneOf { raw, expected } => format!("{raw:?} is not one of {expected}"),
            Self::NotASetting { nearest: Some(n) } if zh => {
                format!("不是 authmail 的设置（是否想写 {n}？）")
            }
            Self::NotASetting { nearest: Some(n) } => format!("not a setting (did you mean {n}?)"),
            Self::NotASetting { nearest: None } if zh => "不是 authmail 的设置".into(),
            Self::NotASetting { nearest: None } => "not a setting".into(),
            Self::Text { zh: text, .. } if zh => text.clone(),
            Self::Text { en, .. } => en.clone(),
        }
    }
}

/// A problem worded in English and Chinese.
fn bad(name: &str, en: impl Into<String>, zh: impl Into<String>) -> ConfigError {
    problem(
        name,
        Problem::Text {
            en: en.into(),
            zh: zh.into(),
        },
    )
}

fn problem(name: &str, problem: Problem) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        problem,
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

/// Whether mail goes to the dev mailbox instead of SMTP (`DEV_MAILBOX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevMailbox {
    /// Dev mode only with no SMTP server and a loopback `BIND`.
    Auto,
    On,
    Off,
}

/// `DATABASE_URL`, which may hold a password: shown (`Debug`, `Display`) with
/// the password masked, so no log line or debug print of the settings leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The file of a `sqlite:` URL (`sqlite://rel.db`, `sqlite:///abs.db`, options after `?`).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.0.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or(rest);
        Some(PathBuf::from(path))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = &self.0;
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let user = url[scheme + 3..at].split(':').next().unwrap_or("");
                write!(f, "{}{user}:***{}", &url[..scheme + 3], &url[at..])
            }
            _ => f.write_str(url),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
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
    pub session_ttl_secs: i64,
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
}

/// Where settings come from: the process environment over the env file.
pub struct Source {
    vars: HashMap<String, String>,
    /// Names the env file set: every one must be a setting.
    from_file: Vec<String>,
    /// Every name looked up, so a test can check `SETTINGS` is complete.
    #[cfg(test)]
    asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Source {
    /// `env_file`: the `--env-file` flag. Without it, `.env` is read when present.
    pub fn load(env_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut vars = HashMap::new();
        let path = match env_file {
            Some(p) if !p.exists() => {
                return Err(bad(
                    "--env-file",
                    format!("{} does not exist", p.display()),
                    format!("{} 不存在", p.display()),
                ))
            }
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(".env")).filter(|p| p.exists()),
        };
        let mut from_file = Vec::new();
        if let Some(path) = path {
            let unreadable = |e: dotenvy::Error| {
                let shown = path.display();
                bad(
                    "--env-file",
                    format!("{shown}: {e}"),
                    format!("{shown}：{e}"),
                )
            };
            for item in dotenvy::from_path_iter(&path).map_err(unreadable)? {
                let (k, v) = item.map_err(unreadable)?;
                from_file.push(k.clone());
                vars.insert(k, v);
            }
        }
        vars.extend(std::env::vars());
        Ok(Self::new(vars, from_file))
    }

    fn new(vars: HashMap<String, String>, from_file: Vec<String>) -> Self {
        Self {
            vars,
            from_file,
            #[cfg(test)]
            asked: Default::default(),
        }
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self::new(vars, Vec::new())
    }

    /// As if `vars` had been read from an env file (for tests of the name check).
    pub fn from_env_file_map(vars: HashMap<String, String>) -> Self {
        let from_file = vars.keys().cloned().collect();
        Self::new(vars, from_file)
    }

    /// `MAIL_LANG` as given, for wording errors before the settings are whole.
    pub fn mail_lang(&self) -> Option<Lang> {
        self.get("MAIL_LANG").and_then(Lang::parse)
    }

    /// A set, non-empty value (an empty assignment in `.env` means unset).
    fn get(&self, name: &str) -> Option<&str> {
        #[cfg(test)]
        self.asked.borrow_mut().insert(name.to_string());
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
        let out_of_range = || {
            problem(
                name,
                Problem::OutOfRange {
                    value: raw.to_string(),
                    low: range.start().to_string(),
                    high: range.end().to_string(),
                },
            )
        };
        let v: T = match raw.parse() {
            Ok(v) => v,
            // A number too big for the type (SMTP_PORT=70000) is out of range, not "not a number".
            Err(_) if is_integer(raw) => return Err(out_of_range()),
            Err(_) => {
                return Err(problem(
                    name,
                    Problem::NotANumber {
                        raw: raw.to_string(),
                    },
                ))
            }
        };
        if !range.contains(&v) {
            return Err(out_of_range());
        }
        Ok(v)
    }

    fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|raw| {
                parse(raw).ok_or_else(|| {
                    problem(
                        name,
                        Problem::NotOneOf {
                            raw: raw.to_string(),
                            expected,
                        },
                    )
                })
            })
            .transpose()
    }
}

fn is_integer(raw: &str) -> bool {
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Settings {
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        names::check_env_file(&src.from_file)?;
        let bind: SocketAddr = match src.get("BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(raw) => raw.parse().map_err(|_| {
                bad(
                    "BIND",
                    format!("{raw:?} is not an address like 127.0.0.1:8080"),
                    format!("{raw:?} 不是 127.0.0.1:8080 这样的地址"),
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
                    format!("{raw:?} 必须以 http:// 或 https:// 开头"),
                ))
            }
        };
        let mail_lang = src
            .parsed("MAIL_LANG", Lang::parse, "zh-CN, en")?
            .unwrap_or_default();
        let retry_base_secs = src.num("RETRY_BASE_SECS", 5, 1..=86_400)?;
        let retry_max_secs = src.num("RETRY_MAX_SECS", 300, 1..=86_400)?;
        if retry_max_secs < retry_base_secs {
            return Err(bad(
                "RETRY_MAX_SECS",
                "must not be below RETRY_BASE_SECS",
                "不能小于 RETRY_BASE_SECS",
            ));
        }
        let smtp = smtp_settings(src)?;
        let mut warnings = names::unknown_in_environment(src.vars.keys());
        let dev_mailbox = dev_mailbox(src, smtp.is_some(), bind, &public_url, &mut warnings)?;
        Ok(Self {
            smtp,
            dev_mailbox,
            database_url: database_url(src)?,
            database: crate::storage::PoolSettings {
                max_connections: src.num("DATABASE_POOL_SIZE", 10, 1..=1000)?,
                timeout: Duration::from_secs(src.num("DATABASE_TIMEOUT_SECS", 5, 1..=300)?),
            },
            retention_secs: src.num("RETENTION_DAYS", 30, 1..=3650)? * 86_400,
            bind,
            public_url,
            secret_key: secret("SECRET_KEY", src)?,
            admin_token: secret("ADMIN_TOKEN", src)?,
            codes: CodePolicy {
                ttl_secs: src.num("CODE_TTL_SECS", 300, 30..=86_400)?,
                length: src.num("CODE_LENGTH", 6, 4..=10)?,
                max_attempts: src.num("CODE_MAX_ATTEMPTS", 5, 1..=20)?,
                max_failures: src.num("CODE_MAX_FAILURES", 100, 0..=1_000_000)?,
                resend_cooldown_secs: src.num("RESEND_COOLDOWN_SECS", 60, 0..=86_400)?,
            },
            passwords: PasswordPolicy {
                max_failures: src.num("PASSWORD_MAX_FAILURES", 10, 0..=1_000_000)?,
                lock_secs: src.num("PASSWORD_LOCK_SECS", 900, 1..=86_400)?,
                login_ip_per_hour: src.num("RATE_LOGIN_IP_PER_HOUR", 100, 0..=1_000_000)?,
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
            warnings,
            http: http_settings(src)?,
        })
    }

    pub fn dev_mailbox(&self) -> bool {
        self.dev_mailbox
    }
}

/// Decides dev mode. The dev mailbox shows every code to whoever can reach
/// it, so `auto` only ever picks it on a loopback address, and a missing SMTP
/// server anywhere else stops start-up instead of silently exposing codes.
fn dev_mailbox(
    src: &Source,
    has_smtp: bool,
    bind: SocketAddr,
    public_url: &str,
    warnings: &mut Vec<ConfigError>,
) -> Result<bool, ConfigError> {
    let mode = src
        .parsed(
            "DEV_MAILBOX",
            |s| match s {
                "auto" => Some(DevMailbox::Auto),
                "on" => Some(DevMailbox::On),
                "off" => Some(DevMailbox::Off),
                _ => None,
            },
            "auto, on, off",
        )?
        .unwrap_or(DevMailbox::Auto);
    let loopback = bind.ip().is_loopback();
    let public = !loopback || !is_loopback_url(public_url);
    match mode {
        DevMailbox::On => {
            if public {
                warnings.push(bad(
                    "DEV_MAILBOX",
                    format!("on while the service is reachable as {public_url} ({bind}): anyone who can reach /dev/mailbox reads every code"),
                    format!("已开启，而服务可通过 {public_url}（{bind}）访问：任何能访问 /dev/mailbox 的人都能读到所有验证码"),
                ));
            }
            Ok(true)
        }
        _ if has_smtp => Ok(false),
        DevMailbox::Off => Err(bad(
            "SMTP_SERVER",
            "not set (nor SMTP_PROVIDER) and DEV_MAILBOX=off: set the SMTP server to send mail",
            "未设置（也没有 SMTP_PROVIDER），且 DEV_MAILBOX=off：请设置发信用的 SMTP 服务器",
        )),
        DevMailbox::Auto if !loopback => Err(bad(
            "SMTP_SERVER",
            format!("not set (nor SMTP_PROVIDER) while BIND={bind} is not a loopback address: the dev mailbox would show every code to anyone; set SMTP_SERVER or SMTP_PROVIDER (or DEV_MAILBOX=on to accept that)"),
            format!("未设置（也没有 SMTP_PROVIDER），而 BIND={bind} 不是本机回环地址：开发邮箱会把验证码展示给任何人；请设置 SMTP_SERVER 或 SMTP_PROVIDER（确需如此可设 DEV_MAILBOX=on）"),
        )),
        DevMailbox::Auto => {
            if public {
                // Loopback behind a reverse proxy: still dev mode (as documented), but said loudly.
                warnings.push(bad(
                    "DEV_MAILBOX",
                    format!("dev mode on a loopback BIND, but PUBLIC_URL is {public_url}: behind a reverse proxy the dev mailbox is public; set SMTP_SERVER or DEV_MAILBOX=off"),
                    format!("BIND 为回环地址而启用开发模式，但 PUBLIC_URL 是 {public_url}：若在反向代理之后，开发邮箱就是公开的；请设置 SMTP_SERVER 或 DEV_MAILBOX=off"),
                ));
            }
            Ok(true)
        }
    }
}

/// Whether `url`'s host is this machine (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    is_loopback(host)
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
    let explicit_server = src.get("SMTP_SERVER");
    let Some(server) = explicit_server.or(preset.map(|p| p.0)) else {
        return Ok(None);
    };
    if server.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
        && server.parse::<IpAddr>().is_err()
    {
        return Err(bad(
            "SMTP_SERVER",
            format!("{server:?} is not a host name (no scheme or port)"),
            format!("{server:?} 不是主机名（不要带协议或端口）"),
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
            "none 会把密码以明文发给不在本机的服务器",
        ));
    }
    match (&user, &password) {
        (Some(_), None) => {
            // Without this, every send fails at AUTH (and doctor once said "all steps passed").
            return Err(bad(
                "SMTP_PASSWORD",
                "not set (nor SMTP_PASSWORD_FILE) while SMTP_USER is set: give the mailbox's password or authorisation code",
                "未设置（也没有 SMTP_PASSWORD_FILE），而 SMTP_USER 已设置：请填写邮箱的密码或授权码",
            ));
        }
        (None, Some(_)) => {
            return Err(bad(
                "SMTP_USER",
                "must be set when a password is set",
                "设置了密码时必须设置",
            ))
        }
        _ => {}
    }
    let from = match (src.get("SMTP_FROM"), &user) {
        (Some(raw), _) => EmailAddress::parse(raw).map_err(|e| {
            bad(
                "SMTP_FROM",
                e.to_string(),
                format!("不是有效的邮箱地址：{e}"),
            )
        })?,
        (None, Some(u)) => EmailAddress::parse(u).map_err(|_| {
            bad(
                "SMTP_FROM",
                "must be set because SMTP_USER is not an email address",
                "必须设置，因为 SMTP_USER 不是邮箱地址",
            )
        })?,
        (None, None) => {
            return Err(bad(
                "SMTP_FROM",
                "must be set when SMTP_USER is not set",
                "未设置 SMTP_USER 时必须设置",
            ))
        }
    };
    let from_name = src.get("SMTP_FROM_NAME").map(str::to_string);
    if from_name
        .as_deref()
        .is_some_and(|n| n.chars().any(char::is_control))
    {
        return Err(bad(
            "SMTP_FROM_NAME",
            "must not contain control characters",
            "不能包含控制字符",
        ));
    }
    Ok(Some(SmtpSettings {
        server: server.to_string(),
        server_from_preset: explicit_server.is_none(),
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

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn database_url(src: &Source) -> Result<DatabaseUrl, ConfigError> {
    let url = src.get("DATABASE_URL").unwrap_or("sqlite://authmail.db");
    let shown = DatabaseUrl(url.to_string());
    if url.starts_with("sqlite:") && (url.contains(":memory:") || url.contains("mode=memory")) {
        // SQLite writes go through a writer with a connection of its own,
        // which could not see a private in-memory database (nor would it last).
        return Err(bad(
            "DATABASE_URL",
            format!(
                "{shown:?} is an in-memory SQLite database; name a file, e.g. sqlite://authmail.db"
            ),
            format!(
                "{shown:?} 是内存中的 SQLite 数据库；请指定一个文件，例如 sqlite://authmail.db"
            ),
        ));
    }
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(shown)
    } else {
        Err(bad(
            "DATABASE_URL",
            format!("\"{shown}\" must start with sqlite:// or postgres://"),
            format!("\"{shown}\" 必须以 sqlite:// 或 postgres:// 开头"),
        ))
    }
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

    /// The SMTP settings of `pairs`, with a password when there is a user.
    fn smtp(pairs: &[(&str, &str)]) -> SmtpSettings {
        let mut pairs = pairs.to_vec();
        if pairs.iter().any(|(k, _)| *k == "SMTP_USER") {
            pairs.push(("SMTP_PASSWORD", "authorisation-code"));
        }
        settings(&pairs).unwrap().smtp.unwrap()
    }

    #[test]
    fn defaults_need_no_settings() {
        let s = settings(&[]).unwrap();
        assert!(s.dev_mailbox());
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.database_url.expose(), "sqlite://authmail.db");
        assert_eq!(s.codes.ttl_secs, 300);
        assert_eq!(s.codes.length, 6);
    }

    #[test]
    fn port_and_security_derive_from_each_other() {
        let base = [
            ("SMTP_SERVER", "mail.example.com"),
            ("SMTP_FROM", "a@example.com"),
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
    fn dev_mailbox_only_on_loopback_unless_asked_for() {
        assert!(settings(&[]).unwrap().dev_mailbox());
        assert!(settings(&[("BIND", "[::1]:8080")]).unwrap().dev_mailbox());
        let err = settings(&[("BIND", "0.0.0.0:8080")]).unwrap_err();
        assert_eq!(err.name, "SMTP_SERVER", "{err}");
        let err = settings(&[("DEV_MAILBOX", "off")]).unwrap_err();
        assert_eq!(err.name, "SMTP_SERVER", "{err}");
        let on = settings(&[("BIND", "0.0.0.0:8080"), ("DEV_MAILBOX", "on")]).unwrap();
        assert!(on.dev_mailbox());
        assert_eq!(on.warnings.len(), 1, "a public dev mailbox is warned about");
        let with_smtp = [
            ("BIND", "0.0.0.0:8080"),
            ("SMTP_SERVER", "mail.example.com"),
            ("SMTP_FROM", "a@example.com"),
        ];
        assert!(!settings(&with_smtp).unwrap().dev_mailbox());
        let mut forced = with_smtp.to_vec();
        forced.push(("DEV_MAILBOX", "on"));
        assert!(settings(&forced).unwrap().dev_mailbox(), "on: never SMTP");
        let behind_proxy = settings(&[("PUBLIC_URL", "https://auth.example.com")]).unwrap();
        assert!(behind_proxy.dev_mailbox());
        assert_eq!(behind_proxy.warnings.len(), 1);
        assert_eq!(
            settings(&[("DEV_MAILBOX", "maybe")]).unwrap_err().name,
            "DEV_MAILBOX"
        );
    }

    #[test]
    fn secrets_are_long_and_passwords_come_with_users() {
        let err = settings(&[("ADMIN_TOKEN", "a")]).unwrap_err();
        assert_eq!(err.name, "ADMIN_TOKEN");
        assert!(settings(&[("ADMIN_TOKEN", &"x".repeat(32))]).is_ok());
        let err = settings(&[
            ("SMTP_SERVER", "mail.example.com"),
            ("SMTP_USER", "a@example.com"),
        ])
        .unwrap_err();
        assert_eq!(err.name, "SMTP_PASSWORD", "{err}");
        let err = settings(&[
            ("SMTP_SERVER", "mail.example.com"),
            ("SMTP_USER", "a@example.com"),
            ("SMTP_PASSWORD", "  "),
        ])
        .unwrap_err();
        assert_eq!(
            err.name, "SMTP_PASSWORD",
            "an empty password is no password"
        );
    }

    #[test]
    fn numbers_too_big_for_their_type_are_out_of_range() {
        let err = settings(&[("SMTP_PORT", "70000")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SMTP_PORT: 70000 is out of range (1–65535)"
        );
        assert_eq!(
            err.render(Lang::ZhCn),
            "SMTP_PORT: 70000 超出范围（1–65535）"
        );
        let err = settings(&[("SMTP_PORT", "25x")]).unwrap_err();
        assert_eq!(err.to_string(), r#"SMTP_PORT: "25x" is not a number"#);
        let err = settings(&[("CODE_LENGTH", "99999999999999999999999")]).unwrap_err();
        assert!(err.to_string().contains("out of range (4–10)"), "{err}");
    }

    #[test]
    fn errors_read_in_either_language() {
        let err = settings(&[("MAIL_LANG", "fr")]).unwrap_err();
        assert_eq!(
            err.render(Lang::En),
            r#"MAIL_LANG: "fr" is not one of zh-CN, en"#
        );
        assert!(
            err.render(Lang::ZhCn).contains("不是以下之一"),
            "{}",
            err.render(Lang::ZhCn)
        );
        let err = settings(&[("PUBLIC_URL", "auth.example.com")]).unwrap_err();
        assert!(err.render(Lang::ZhCn).contains("必须以"));
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        let path = |url: &str| DatabaseUrl(url.into()).sqlite_path();
        assert_eq!(path("sqlite://authmail.db"), Some("authmail.db".into()));
        assert_eq!(
            path("sqlite:///var/lib/a.db?mode=rwc"),
            Some("/var/lib/a.db".into())
        );
        assert_eq!(path("postgres://x@y/z"), None);
    }

    #[test]
    fn no_password_in_debug_output() {
        let s = settings(&[
            (
                "DATABASE_URL",
                "postgres://app:hunter2-secret@db.internal/authmail",
            ),
            ("SMTP_SERVER", "mail.example.com"),
            ("SMTP_USER", "a@example.com"),
            ("SMTP_PASSWORD", "smtp-secret-value"),
            ("ADMIN_TOKEN", "admin-token-0123456789abcdef0123456789"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        for secret in ["hunter2-secret", "smtp-secret-value", "admin-token-0123"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://app:***@db.internal/authmail"));
        assert_eq!(
            s.database_url.expose(),
            "postgres://app:hunter2-secret@db.internal/authmail"
        );
    }

    #[test]
    fn every_name_read_is_a_known_setting() {
        let full: Vec<(&str, &str)> = vec![
            ("SMTP_SERVER", "mail.example.com"),
            ("SMTP_USER", "a@example.com"),
            ("SMTP_PASSWORD", "p"),
            ("SMTP_FROM_NAME", "A"),
        ];
        let vars = full
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let src = Source::from_map(vars);
        Settings::from_source(&src).unwrap();
        let asked = src.asked.borrow();
        for name in asked.iter() {
            assert!(
                SETTINGS.contains(&name.as_str()),
                "{name} is read but not in SETTINGS"
            );
        }
        for name in SETTINGS {
            // RUST_LOG is read by the logger, not by the settings.
            assert!(
                *name == "RUST_LOG" || asked.contains(*name),
                "{name} is in SETTINGS but never read"
            );
        }
    }

    #[test]
    fn unknown_names_in_the_env_file_stop_start_up() {
        let vars = [("SMTP_PROVIDR", "qq")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = Settings::from_source(&Source::from_env_file_map(vars)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SMTP_PROVIDR: not a setting (did you mean SMTP_PROVIDER?)"
        );
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_plain_addresses() {
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
        assert_eq!(s.limits.trusted_proxies.len(), 3);
    }
}
