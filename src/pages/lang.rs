//! Which language a page speaks: `?lang=`, then the cookie a page sets when
//! `?lang=` picks one, then `Accept-Language`, then `MAIL_LANG`.

use crate::domain::Lang;

pub const COOKIE: &str = "authmail_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub lang: Lang,
    /// `?lang=` chose a language the cookie does not hold yet: set the cookie.
    pub remember: bool,
}

/// An unsupported `?lang=` or cookie value is ignored, not an error: a page
/// should always render.
pub fn choose(
    query: Option<&str>,
    cookie: Option<&str>,
    accept_language: Option<&str>,
    default: Lang,
) -> Choice {
    let from_cookie = cookie.and_then(Lang::parse);
    if let Some(lang) = query.and_then(Lang::parse) {
        return Choice {
            lang,
            remember: from_cookie != Some(lang),
        };
    }
    let lang = from_cookie
        .or_else(|| accept_language.and_then(Lang::from_accept_language))
        .unwrap_or(default);
    Choice {
        lang,
        remember: false,
    }
}

/// The value of `name` in a raw query string, if present and plain.
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZH: Lang = Lang::ZhCn;
    const EN: Lang = Lang::En;

    #[test]
    fn query_wins_and_is_remembered_when_new() {
        assert_eq!(
            choose(Some("en"), Some("zh-CN"), Some("zh"), ZH),
            Choice {
                lang: EN,
                remember: true
            }
        );
        assert_eq!(
            choose(Some("en"), Some("en"), None, ZH),
            Choice {
                lang: EN,
                remember: false
            }
        );
    }

    #[test]
    fn cookie_beats_accept_language_which_beats_the_default() {
        assert_eq!(choose(None, Some("en"), Some("zh-CN"), ZH).lang, EN);
        assert_eq!(choose(None, None, Some("zh-TW,en;q=0.5"), EN).lang, ZH);
        assert_eq!(choose(None, None, Some("fr"), EN).lang, EN);
        assert_eq!(choose(None, None, None, ZH).lang, ZH);
    }

    #[test]
    fn unsupported_values_fall_through() {
        let c = choose(Some("fr"), Some("de"), Some("en"), ZH);
        assert_eq!(
            c,
            Choice {
                lang: EN,
                remember: false
            }
        );
        assert_eq!(choose(Some("EN"), None, None, ZH).lang, ZH);
    }

    #[test]
    fn query_param_finds_exact_names() {
        assert_eq!(query_param(Some("mode=code&lang=en"), "lang"), Some("en"));
        assert_eq!(query_param(Some("xlang=en"), "lang"), None);
        assert_eq!(query_param(None, "lang"), None);
    }
}
