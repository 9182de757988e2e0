//! `DATABASE_URL`: which database, shown without its password.

use std::path::PathBuf;

use super::{bad, ConfigError, Source};

/// `DATABASE_URL`, which may hold a password: shown (`Debug`, `Display`) with
/// the password masked, so no log line or debug print of the settings leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub(super) String);

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

pub(super) fn database_url(src: &Source) -> Result<DatabaseUrl, ConfigError> {
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
