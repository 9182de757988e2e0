//! Where settings come from: the process environment over the env file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{bad, problem, ConfigError, Problem};
use crate::domain::Lang;

/// Where settings come from: the process environment over the env file.
pub struct Source {
    pub(super) vars: HashMap<String, String>,
    /// Names the env file set: every one must be a setting.
    pub(super) from_file: Vec<String>,
    /// Every name looked up, so a test can check `SETTINGS` is complete.
    #[cfg(test)]
    pub(super) asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
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
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        #[cfg(test)]
        self.asked.borrow_mut().insert(name.to_string());
        self.vars
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    pub(super) fn num<T>(
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

    pub(super) fn parsed<T>(
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
