//! The settings file holds the SMTP password: warn when other users can read
//! it or git tracks it. Warnings only; they never fail `doctor`.

use std::path::Path;

use crate::domain::Lang;

/// Readable by other users, or tracked by git: warned about, never fatal.
pub fn env_file_warnings(path: &Path, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    let shown = path.display();
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            out.push(match lang {
                Lang::ZhCn => format!(
                    "{shown} 可被其他用户读取（权限 {mode:o}），其中有 SMTP 密码：运行 chmod 600 {shown}"
                ),
                Lang::En => format!(
                    "{shown} is readable by other users (mode {mode:o}) and holds the SMTP password: run chmod 600 {shown}"
                ),
            });
        }
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default();
    let tracked = std::process::Command::new("git")
        .arg("ls-files")
        .arg("--error-unmatch")
        .arg("--")
        .arg(name)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if tracked {
        out.push(match lang {
            Lang::ZhCn => format!(
                "{shown} 已被 git 跟踪：密码会进入仓库历史。运行 git rm --cached {shown}，把它加入 .gitignore，并更换密码"
            ),
            Lang::En => format!(
                "{shown} is tracked by git, so the password is in the repository's history: run git rm --cached {shown}, add it to .gitignore and change the password"
            ),
        });
    }
    out
}
