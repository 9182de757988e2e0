//! What other sites may do with authmail in a browser: call `/api/auth/*`
//! (`CORS_ORIGINS`) and receive people back after they sign in on the pages
//! (`RETURN_TO_ORIGINS`).

use super::{bad, ConfigError, Source};
use crate::domain::{InvalidOrigin, Origin, ReturnTo};

#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// Browsers on these origins may call `/api/auth/*`, without cookies.
    pub cors_origins: Vec<Origin>,
    /// The pages send a browser back to these origins after it signs in.
    pub return_to_origins: Vec<Origin>,
    /// `PUBLIC_URL`'s origin: always a place to return to.
    pub public_origin: Origin,
}

impl BrowserSettings {
    pub(super) fn from_source(src: &Source, public_url: &str) -> Result<Self, ConfigError> {
        let public_origin = Origin::of_url(public_url).ok_or_else(|| {
            bad(
                "PUBLIC_URL",
                format!("{public_url:?} is not a URL like https://auth.example.com"),
                format!("{public_url:?} 不是 https://auth.example.com 这样的网址"),
            )
        })?;
        Ok(Self {
            cors_origins: origins(src, "CORS_ORIGINS")?,
            return_to_origins: origins(src, "RETURN_TO_ORIGINS")?,
            public_origin,
        })
    }

    /// `raw` as a place to send a signed-in browser: on `PUBLIC_URL`'s origin
    /// or a listed one, else `None` (and the pages use `/account`).
    pub fn return_to(&self, raw: &str) -> Option<ReturnTo> {
        ReturnTo::parse(raw, |origin| {
            *origin == self.public_origin || self.return_to_origins.contains(origin)
        })
    }
}

/// A comma-separated list of origins; empty entries are skipped.
fn origins(src: &Source, name: &'static str) -> Result<Vec<Origin>, ConfigError> {
    let Some(raw) = src.get(name) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Origin::parse(s).map_err(|why| not_an_origin(name, s, why)))
        .collect()
}

fn not_an_origin(name: &'static str, raw: &str, why: InvalidOrigin) -> ConfigError {
    let (en, zh) = match why {
        InvalidOrigin::Wildcard => (
            "no wildcards: name each origin",
            "不支持通配符，请逐一写出每个来源",
        ),
        InvalidOrigin::NotHttp => ("not an http or https origin", "不是 http 或 https 来源"),
        InvalidOrigin::Userinfo => ("an origin has no user@ part", "来源中不能有 user@ 部分"),
        InvalidOrigin::Path => (
            "an origin has no path, query or fragment",
            "来源中不能有路径、查询参数或片段",
        ),
    };
    bad(
        name,
        format!("{raw:?} is not an origin like https://app.example.com ({en})"),
        format!("{raw:?} 不是 https://app.example.com 这样的来源（{zh}）"),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::Settings;
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_source(&Source::from_map(vars))
    }

    #[test]
    fn origins_are_a_comma_separated_list() {
        let s = settings(&[
            (
                "CORS_ORIGINS",
                " https://app.example.com, http://localhost:3000 ,",
            ),
            ("RETURN_TO_ORIGINS", "https://App.Example.com:443/"),
        ])
        .unwrap();
        let listed = |v: &[Origin]| v.iter().map(|o| o.to_string()).collect::<Vec<_>>();
        assert_eq!(
            listed(&s.browsers.cors_origins),
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(
            listed(&s.browsers.return_to_origins),
            ["https://app.example.com"]
        );
        let none = settings(&[]).unwrap();
        assert!(none.browsers.cors_origins.is_empty());
        assert_eq!(
            none.browsers.public_origin.as_str(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_bad_origin_stops_start_up_naming_the_setting() {
        for (name, raw, says) in [
            ("CORS_ORIGINS", "https://a.example, *", "no wildcards"),
            ("CORS_ORIGINS", "https://a.example/app", "no path"),
            ("RETURN_TO_ORIGINS", "a.example", "not an http or https"),
            ("RETURN_TO_ORIGINS", "https://u@a.example", "no user@"),
        ] {
            let err = settings(&[(name, raw)]).unwrap_err();
            let line = err.to_string();
            assert!(line.starts_with(&format!("{name}: ")), "{line}");
            assert!(line.contains(says), "{line}");
            assert!(!line.contains('\n'), "one line: {line}");
            let zh = err.render(crate::domain::Lang::ZhCn);
            assert!(
                zh.starts_with(&format!("{name}: ")) && zh.contains("来源"),
                "{zh}"
            );
        }
    }

    #[test]
    fn return_to_goes_to_the_public_origin_or_a_listed_one() {
        let s = settings(&[
            ("PUBLIC_URL", "https://auth.example.com/"),
            ("RETURN_TO_ORIGINS", "https://app.example.com"),
        ])
        .unwrap();
        let b = &s.browsers;
        assert!(b.return_to("https://auth.example.com/account").is_some());
        assert!(b.return_to("https://app.example.com/welcome").is_some());
        assert!(b.return_to("https://other.example.com/").is_none());
        assert!(b.return_to("http://app.example.com/").is_none());
    }
}
