//! Every setting's name, so that a typo is caught at start instead of being
//! silently ignored (`SMTP_PROVIDR=qq` once meant dev mode on a public address).

use super::{problem, ConfigError, Problem};

/// All the names authmail reads. A unit test checks that every name the
/// settings ask for is here, so the list cannot fall behind.
pub const SETTINGS: &[&str] = &[
    "ADMIN_TOKEN",
    "ALERT_FAILURE_RATE",
    "ALERT_MIN_SAMPLES",
    "ALERT_WEBHOOK_URL",
    "ALERT_WINDOW_SECS",
    "BIND",
    "CHALLENGE",
    "CHALLENGE_AFTER",
    "CHALLENGE_BITS",
    "CODE_LENGTH",
    "CODE_MAX_ATTEMPTS",
    "CODE_MAX_FAILURES",
    "CODE_TTL_SECS",
    "CORS_ORIGINS",
    "DATABASE_POOL_SIZE",
    "DATABASE_TIMEOUT_SECS",
    "DATABASE_URL",
    "DEV_MAILBOX",
    "HTTP_MAX_CONNECTIONS",
    "HTTP_TIMEOUT_SECS",
    "JWT_AUDIENCE",
    "JWT_TTL_SECS",
    "LOG_FORMAT",
    "MAIL_LANG",
    "METRICS_BIND",
    "PASSWORD_LOCK_SECS",
    "PASSWORD_MAX_FAILURES",
    "PUBLIC_URL",
    "RATE_EMAIL_PER_HOUR",
    "RATE_GLOBAL_PER_HOUR",
    "RATE_IP_PER_HOUR",
    "RATE_LOGIN_IP_PER_HOUR",
    "RESEND_COOLDOWN_SECS",
    "RETENTION_DAYS",
    "RETRY_BASE_SECS",
    "RETRY_MAX_SECS",
    "RETURN_TO_ORIGINS",
    "RUST_LOG",
    "SECRET_KEY",
    "SESSION_TTL_SECS",
    "SMTP_CA_FILE",
    "SMTP_FROM",
    "SMTP_FROM_NAME",
    "SMTP_PASSWORD",
    "SMTP_PASSWORD_FILE",
    "SMTP_POOL_SIZE",
    "SMTP_PORT",
    "SMTP_PROVIDER",
    "SMTP_SECURITY",
    "SMTP_SERVER",
    "SMTP_TIMEOUT_SECS",
    "SMTP_USER",
    "TEMPLATES_DIR",
    "TRUSTED_PROXIES",
    "WEBHOOK_SECRET",
    "WEBHOOK_URL",
];

/// Prefixes that only authmail's settings use. In the environment (shared
/// with everything else on the machine) an unknown name is only a warning,
/// and only under these, so `PATH` or `HOME` raise nothing.
const PREFIXES: &[&str] = &[
    "ADMIN_",
    "ALERT_",
    "CHALLENGE_",
    "CODE_",
    "CORS_",
    "DATABASE_",
    "DEV_",
    "HTTP_",
    "JWT_",
    "METRICS_",
    "PASSWORD_",
    "RATE_",
    "RESEND_",
    "RETRY_",
    "RETURN_TO_",
    "SMTP_",
    "TRUSTED_",
    "WEBHOOK_",
];

/// Names other programs read from the same environment.
const FOREIGN: &[&str] = &["HTTP_PROXY"];

/// The env file is authmail's own: a name in it that is no setting is an error.
pub(super) fn check_env_file(names: &[String]) -> Result<(), ConfigError> {
    match names.iter().find(|n| !SETTINGS.contains(&n.as_str())) {
        Some(name) => Err(not_a_setting(name)),
        None => Ok(()),
    }
}

/// Likely typos among the environment's names, as warnings.
pub(super) fn unknown_in_environment<'a>(
    names: impl Iterator<Item = &'a String>,
) -> Vec<ConfigError> {
    let mut unknown: Vec<&String> = names
        .filter(|n| PREFIXES.iter().any(|p| n.starts_with(p)))
        .filter(|n| !SETTINGS.contains(&n.as_str()) && !FOREIGN.contains(&n.as_str()))
        .collect();
    unknown.sort();
    unknown.into_iter().map(|n| not_a_setting(n)).collect()
}

fn not_a_setting(name: &str) -> ConfigError {
    problem(
        name,
        Problem::NotASetting {
            nearest: nearest(name),
        },
    )
}

/// The setting a typo most likely meant: the closest by edit distance, when
/// it is close enough to be a typo rather than another word.
fn nearest(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|s| (strsim::damerau_levenshtein(name, s), *s))
        .filter(|(d, s)| *d <= (s.len() / 3).max(2))
        .min()
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_suggest_the_setting() {
        assert_eq!(nearest("SMTP_PROVIDR"), Some("SMTP_PROVIDER"));
        assert_eq!(nearest("SMTP_SEVRER"), Some("SMTP_SERVER"));
        assert_eq!(nearest("CODE_LENTH"), Some("CODE_LENGTH"));
        assert_eq!(nearest("SOMETHING_ELSE_ENTIRELY"), None);
    }

    #[test]
    fn the_env_file_may_only_hold_settings() {
        assert!(check_env_file(&["SMTP_SERVER".into(), "BIND".into()]).is_ok());
        let err = check_env_file(&["BIND".into(), "SMTP_PROVIDR".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SMTP_PROVIDR: not a setting (did you mean SMTP_PROVIDER?)"
        );
    }

    #[test]
    fn only_authmail_prefixes_warn_from_the_environment() {
        let names: Vec<String> = ["PATH", "HOME", "SMTP_PASWORD", "HTTP_PROXY", "SMTP_USER"]
            .map(String::from)
            .to_vec();
        let warnings = unknown_in_environment(names.iter());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].name, "SMTP_PASWORD");
    }

    #[test]
    fn the_list_is_sorted_and_unique() {
        assert!(SETTINGS.windows(2).all(|w| w[0] < w[1]));
    }
}
