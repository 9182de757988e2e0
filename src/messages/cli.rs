//! What `doctor`, `send-test`, `outbox` and `keys` print around the steps
//! and the diagnoses.

super::table! {
    CliText {
        AllPassed => (
            "✓ 全部通过：authmail 可以用这些设置发信。",
            "✓ all steps passed: authmail can send mail with these settings.",
        ),
        SettingsLabel => ("设置", "settings"),
        /// `{server}`, `{port}`, `{sec}`, `{provider}`, `{user}`, `{password}`, `{from}`, `{t}`.
        Settings => (
            "服务器 {server}:{port}（{sec}），SMTP_PROVIDER {provider}，SMTP_USER {user}，SMTP_PASSWORD {password}，SMTP_FROM {from}，超时 {t} 秒",
            "server {server}:{port} ({sec}), SMTP_PROVIDER {provider}, SMTP_USER {user}, SMTP_PASSWORD {password}, SMTP_FROM {from}, timeout {t} s",
        ),
        PasswordSet => ("已设置（{n} 个字符）", "set ({n} characters)"),
        Unset => ("未设置", "unset"),
        /// A diagnosis under a failed step or send: `{why}`, `{fix}`.
        CauseAndFix => ("  原因：{why}\n  解决：{fix}", "  cause: {why}\n  fix: {fix}"),
        NoDiagnosis => (
            "  服务器的回答如上；请对照服务商的 SMTP 说明检查设置。",
            "  the server's answer is above; check the settings against the provider's SMTP documentation.",
        ),
        OpportunisticNoStartTls => (
            "服务器不提供 STARTTLS：opportunistic 模式下以明文继续",
            "not offered: opportunistic mode goes on in clear text",
        ),
        Presented => ("服务器出示的证书", "the server presented"),
        AuthSkipped => (
            "跳过：未设置 SMTP_USER / SMTP_PASSWORD",
            "skipped: SMTP_USER / SMTP_PASSWORD not set",
        ),
        Certificate => (
            "证书主体 {subject}（名称 {names}），签发者 {issuer}，到期 {expires}",
            "certificate subject {subject} (names {names}), issuer {issuer}, expires {expires}",
        ),
        EnvFileReadable => (
            "{shown} 可被其他用户读取（权限 {mode}），其中有 {held}：运行 chmod 600 {shown}",
            "{shown} is readable by other users (mode {mode}) and holds {held}: run chmod 600 {shown}",
        ),
        EnvFileTracked => (
            "{shown} 已被 git 跟踪：其中的 {held} 会进入仓库历史。运行 git rm --cached {shown}，把它加入 .gitignore，并更换这些密钥",
            "{shown} is tracked by git, so its {held} is in the repository's history: run git rm --cached {shown}, add it to .gitignore and change them",
        ),
        NoSmtp => (
            "SMTP_SERVER 未设置（也没有 SMTP_PROVIDER）：没有可以检查的 SMTP 服务器",
            "SMTP_SERVER is not set (nor SMTP_PROVIDER): there is no SMTP server to check",
        ),
        /// The start-up lines of `serve`: `{bound}`, `{url}`; `{server}`, `{user}`.
        Listening => (
            "authmail 正在监听 {bound}，对外地址 {url}",
            "authmail listening on {bound}, public address {url}",
        ),
        DevMode => (
            "邮件处于开发模式：不会真正发送，而是存入开发邮箱 {url}/dev/mailbox",
            "mail is in dev mode: nothing is sent, mail is kept in the dev mailbox at {url}/dev/mailbox",
        ),
        SmtpOut => (
            "邮件经 SMTP 发出：{server}，用户 {user}",
            "mail goes out over SMTP: {server}, user {user}",
        ),
        /// `keys rotate`: `{kid}`, `{refresh}`; then `{until}`.
        KeyRotated => (
            "新的 JWT 签名密钥 {kid} 从现在起签名（每个运行中的实例在 {refresh} 秒内改用它）",
            "new JWT signing key {kid} signs from now on (every running instance switches to it within {refresh} s)",
        ),
        KeyRetired => (
            "原来的密钥留在 /.well-known/jwks.json 中，直到 {until}：那时它签过的令牌都已过期",
            "the previous key stays in /.well-known/jwks.json until {until}, when every token it signed has expired",
        ),
        NoDatabaseFile => (
            "数据库文件 {path} 不存在（检查 DATABASE_URL 和当前目录）",
            "the database file {path} does not exist (check DATABASE_URL and the working directory)",
        ),
    }
}
