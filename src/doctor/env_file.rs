//! The settings file may hold secrets: warn when other users can read it or
//! git tracks it, naming the secrets it actually holds (a file with none is
//! no risk and raises nothing). Warnings only; they never fail `doctor`.

use std::path::Path;

use crate::domain::Lang;
use crate::messages::{Args, CliText};

/// The settings that are secrets, or may carry one (a database password).
const SECRETS: &[&str] = &["SMTP_PASSWORD", "SECRET_KEY", "ADMIN_TOKEN", "DATABASE_URL"];

/// Readable by other users, or tracked by git: warned about, never fatal.
pub fn env_file_warnings(path: &Path, lang: Lang) -> Vec<String> {
    let held = secrets_in(path);
    if held.is_empty() {
        return Vec::new();
    }
    let held = held.join(", ");
    let mut out = Vec::new();
    let shown = path.display();
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            let mode = format!("{mode:o}");
            let args: &Args = &[("shown", &shown), ("mode", &mode), ("held", &held)];
            out.push(CliText::EnvFileReadable.say(lang, args));
        }
    }
    if is_tracked_by_git(path) {
        let args: &Args = &[("shown", &shown), ("held", &held)];
        out.push(CliText::EnvFileTracked.say(lang, args));
    }
    out
}

/// The secret settings the file sets to a non-empty value (a `DATABASE_URL`
/// only when it carries a password).
fn secrets_in(path: &Path) -> Vec<&'static str> {
    let Ok(iter) = dotenvy::from_path_iter(path) else {
        return Vec::new();
    };
    let set: Vec<(String, String)> = iter.filter_map(Result::ok).collect();
    SECRETS
        .iter()
        .copied()
        .filter(|name| {
            set.iter().any(|(k, v)| {
                k == name
                    && !v.trim().is_empty()
                    && (*name != "DATABASE_URL" || url_has_password(v))
            })
        })
        .collect()
}

fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    rest.split_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

fn is_tracked_by_git(path: &Path) -> bool {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default();
    std::process::Command::new("git")
        .arg("ls-files")
        .arg("--error-unmatch")
        .arg("--")
        .arg(name)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_only_about_secrets_the_file_holds() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let write = |text: &str| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        };
        write("SMTP_SERVER=smtp.qq.com\nDATABASE_URL=postgres://app@db/authmail\n");
        assert!(env_file_warnings(&path, Lang::En).is_empty());
        write("SMTP_USER=a@qq.com\nSMTP_PASSWORD=x\nDATABASE_URL=postgres://app:pw@db/a\n");
        let warnings = env_file_warnings(&path, Lang::En);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("holds SMTP_PASSWORD, DATABASE_URL"),
            "{warnings:?}"
        );
        write("ADMIN_TOKEN=placeholder-token-0123456789abcdef\n");
        let warnings = env_file_warnings(&path, Lang::ZhCn);
        assert!(warnings[0].contains("其中有 ADMIN_TOKEN"), "{warnings:?}");
    }
}
