//! A bad setting, worded in English and Chinese side by side.

use crate::domain::Lang;

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
pub(super) fn bad(name: &str, en: impl Into<String>, zh: impl Into<String>) -> ConfigError {
    problem(
        name,
        Problem::Text {
            en: en.into(),
            zh: zh.into(),
        },
    )
}

pub(super) fn problem(name: &str, problem: Problem) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        problem,
    }
}
