//! Errors on a page: which field each belongs to, its text in the page's
//! language, and the status the JSON API would answer with.

use axum::http::StatusCode;
use serde::Serialize;

use super::view::Page;
use crate::error::ApiError;

/// Where an error is shown: next to its field, or above the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Code,
    Password,
    /// The digits typed from the picture challenge.
    Challenge,
    Form,
}

/// Error texts by field, in the page's language, as the templates read them.
#[derive(Debug, Default, Serialize)]
pub struct Errors {
    pub email: Option<String>,
    pub code: Option<String>,
    pub password: Option<String>,
    pub challenge: Option<String>,
    pub form: Option<String>,
}

impl Errors {
    pub fn at(field: Field, text: String) -> Self {
        let mut errors = Self::default();
        let slot = match field {
            Field::Email => &mut errors.email,
            Field::Code => &mut errors.code,
            Field::Password => &mut errors.password,
            Field::Challenge => &mut errors.challenge,
            Field::Form => &mut errors.form,
        };
        *slot = Some(text);
        errors
    }
}

impl Page {
    /// The error's text in the page language, the field it belongs to, and
    /// the status the API would answer it with (`ApiError::status`).
    pub fn describe(&self, e: &ApiError) -> (Field, String, StatusCode) {
        let wait = |key: &str, secs: u64| self.wait_text(key, secs);
        let (field, text) = match e {
            ApiError::InvalidEmail(_) => (Field::Email, self.t("err_invalid_email")),
            ApiError::EmailTaken => (Field::Email, self.t("err_email_taken")),
            ApiError::RateLimited { retry_after } => {
                (Field::Email, wait("err_rate_limited", *retry_after))
            }
            ApiError::ChallengeRequired => (Field::Email, self.t("err_challenge_required")),
            ApiError::InvalidCode => (Field::Code, self.t("err_invalid_code")),
            ApiError::TooManyAttempts { retry_after } => {
                (Field::Code, wait("err_too_many_attempts", *retry_after))
            }
            ApiError::WeakPassword => (Field::Password, self.t("err_weak_password")),
            ApiError::InvalidCredentials => (Field::Password, self.t("err_invalid_credentials")),
            ApiError::Unavailable | ApiError::Overloaded => {
                (Field::Form, self.t("err_unavailable"))
            }
            other => {
                tracing::error!(error = ?other, "page request failed");
                let text = self.t("err_internal");
                return (Field::Form, text, StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        (field, text, e.status())
    }

    /// A password sign-in's error: its lock and its per-network limit are
    /// about passwords, shown by the password field; the rest as anywhere.
    pub fn describe_login(&self, e: &ApiError) -> (Field, String, StatusCode) {
        let (key, secs) = match e {
            ApiError::TooManyAttempts { retry_after } => ("err_password_locked", *retry_after),
            ApiError::RateLimited { retry_after } => ("err_login_rate_limited", *retry_after),
            other => return self.describe(other),
        };
        (Field::Password, self.wait_text(key, secs), e.status())
    }

    /// "… in {n} seconds", or in minutes (rounded up) once that reads better.
    fn wait_text(&self, key: &str, secs: u64) -> String {
        wait_phrase(&self.t(key), &self.t(&format!("{key}_minutes")), secs)
    }
}

fn wait_phrase(in_seconds: &str, in_minutes: &str, secs: u64) -> String {
    match secs {
        0..120 => in_seconds.replace("{n}", &secs.to_string()),
        _ => in_minutes.replace("{n}", &secs.div_ceil(60).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_waits_read_in_seconds_long_ones_in_whole_minutes_rounded_up() {
        let phrase = |secs| wait_phrase("{n} s", "{n} min", secs);
        assert_eq!(phrase(1), "1 s");
        assert_eq!(phrase(119), "119 s");
        assert_eq!(phrase(120), "2 min");
        assert_eq!(phrase(121), "3 min");
        assert_eq!(phrase(3598), "60 min");
    }

    #[test]
    fn errors_land_in_one_slot() {
        let e = Errors::at(Field::Code, "x".into());
        assert_eq!(e.code.as_deref(), Some("x"));
        assert!(e.email.is_none() && e.password.is_none() && e.form.is_none());
        assert!(e.challenge.is_none());
    }
}
