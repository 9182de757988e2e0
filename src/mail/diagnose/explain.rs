//! The words: for each cause, which of the table's messages say why it
//! happened and what to change (`crate::messages::CauseText`), tailored to
//! the provider and the security mode.

use super::{Cause, Context};
use crate::config::{Provider, Security};
use crate::domain::Lang;
use crate::messages::CauseText as T;

/// Why and fix for `cause`, or `None` when there is nothing to add to the reply.
fn texts(cause: Cause, ctx: &Context) -> Option<(T, T)> {
    let tls = ctx.security == Security::Tls;
    let pick = |on_tls: T, otherwise: T| if tls { on_tls } else { otherwise };
    Some(match cause {
        Cause::Dns if ctx.server_from_preset && ctx.provider.is_some() => {
            (T::DnsWhy, T::DnsFixPreset)
        }
        Cause::Dns => (T::DnsWhy, T::DnsFixTyped),
        Cause::ConnectRefused => (T::RefusedWhy, T::RefusedFix),
        Cause::ConnectTimeout => (T::ConnectTimeoutWhy, T::OtherPortFix),
        Cause::Timeout => (T::TimeoutWhy, T::OtherPortFix),
        Cause::ReplyTimeout => (T::ReplyTimeoutWhy, T::ReplyTimeoutFix),
        Cause::GreetingTimeout => (
            pick(T::GreetingTimeoutWhyTls, T::GreetingTimeoutWhy),
            pick(T::GreetingTimeoutFixTls, T::GreetingTimeoutFix),
        ),
        Cause::SecurityMismatch => (T::MismatchWhy, pick(T::MismatchFixTls, T::MismatchFix)),
        Cause::StartTlsNotOffered => (T::StartTlsWhy, T::StartTlsFix),
        Cause::AuthOnlyAfterTls => (T::AuthAfterTlsWhy, T::AuthAfterTlsFix),
        Cause::AuthNotOffered => (T::AuthNotOfferedWhy, T::AuthNotOfferedFix),
        Cause::Certificate => (T::CertificateWhy, T::CertificateFix),
        Cause::AuthFailed => (T::AuthFailedWhy, auth_fix(ctx.provider)),
        Cause::SenderRefused if ctx.user.is_some() => {
            (T::SenderRefusedWhy, T::SenderRefusedFixUser)
        }
        Cause::SenderRefused => (T::SenderRefusedWhy, T::SenderRefusedFix),
        Cause::Spam => (T::SpamWhy, T::SpamFix),
        Cause::Throttled => (T::ThrottledWhy, T::ThrottledFix),
        Cause::RecipientRejected => (T::RecipientWhy, T::RecipientFix),
        Cause::Other => return None,
    })
}

fn auth_fix(provider: Option<Provider>) -> T {
    match provider {
        Some(p) if p.uses_authorisation_code() => T::AuthFailedFixCode,
        Some(Provider::Gmail) => T::AuthFailedFixGmail,
        _ => T::AuthFailedFix,
    }
}

fn provider_name(p: Provider) -> T {
    match p {
        Provider::Qq => T::NameQq,
        Provider::Netease163 => T::Name163,
        Provider::Gmail => T::NameGmail,
        Provider::Exmail => T::NameExmail,
    }
}

/// Where to get an authorisation code (授权码); QQ Mail's steps unless another provider's.
fn auth_code_steps(p: Provider) -> T {
    match p {
        Provider::Netease163 => T::Steps163,
        Provider::Exmail => T::StepsExmail,
        _ => T::StepsQq,
    }
}

/// The port and security of the other usual choice (465 tls or 587 starttls).
fn other_port(ctx: &Context, lang: Lang) -> String {
    let (port, sec) = match ctx.security {
        Security::Tls => (587, "starttls"),
        _ => (465, "tls"),
    };
    T::OtherPort.say(lang, &[("port", &port), ("sec", &sec)])
}

pub(super) fn explain(
    cause: Cause,
    raw: &str,
    ctx: &Context,
    lang: Lang,
) -> Option<(String, String)> {
    let (why, fix) = texts(cause, ctx)?;
    let at = format!("{}:{}", ctx.server, ctx.port);
    let provider = ctx.provider.map_or("", |p| p.as_str());
    let name = ctx.provider.map_or("", |p| provider_name(p).text(lang));
    let steps = ctx.provider.map_or("", |p| auth_code_steps(p).text(lang));
    let other_port = other_port(ctx, lang);
    let user = ctx.user.as_deref().unwrap_or("");
    let args: &crate::messages::Args = &[
        ("at", &at),
        ("server", &ctx.server),
        ("port", &ctx.port),
        ("sec", &ctx.security.as_str()),
        ("t", &ctx.timeout_secs),
        ("raw", &raw),
        ("from", &ctx.from),
        ("user", &user),
        ("provider", &provider),
        ("provider_name", &name),
        ("steps", &steps),
        ("other_port", &other_port),
    ];
    Some((why.say(lang, args), fix.say(lang, args)))
}
