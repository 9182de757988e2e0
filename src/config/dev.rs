//! `DEV_MAILBOX`: whether codes go to the dev mailbox instead of SMTP, and
//! only where that cannot expose them.

use std::net::SocketAddr;

use super::smtp::is_loopback;
use super::{bad, ConfigError, Source};

/// Whether mail goes to the dev mailbox instead of SMTP (`DEV_MAILBOX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevMailbox {
    /// Dev mode only with no SMTP server and a loopback `BIND`.
    Auto,
    On,
    Off,
}

/// Decides dev mode. The dev mailbox shows every code to whoever can reach
/// it, so `auto` only ever picks it on a loopback address, and a missing SMTP
/// server anywhere else stops start-up instead of silently exposing codes.
pub(super) fn dev_mailbox(
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
