//! The words the CLI and the SMTP diagnoses print, in zh-CN and en side by
//! side: one table per area (`cli`, `diagnosis`), each keyed by a message id.
//!
//! Why a Rust table and not a JSON or TOML file like the pages'
//! `i18n.json`: the ids are enum variants and each table is one `match`
//! (written by `table!`), so an unknown id or a message without both
//! languages does not compile, nothing is parsed at start, and a placeholder
//! one language lacks is caught by the unit test below. `{name}`
//! placeholders are filled by [`fill`].

use std::fmt::Display;

use crate::domain::Lang;

mod cli;
mod diagnosis;
pub use cli::CliText;
pub use diagnosis::CauseText;

/// A message table: `Id => ("zh-CN", "en"),` per message. It writes the
/// enum of ids, `say` and `text`, and (for the tests) the list of every id.
macro_rules! table {
    ($name:ident { $($(#[$doc:meta])* $id:ident => ($zh:expr, $en:expr $(,)?),)* }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$doc])* $id,)*
        }

        impl $name {
            #[cfg(test)]
            pub(super) const ALL: &'static [$name] = &[$($name::$id,)*];

            /// The message in `lang`, its `{name}`s filled from `args`.
            pub fn say(self, lang: crate::domain::Lang, args: &super::Args) -> String {
                super::fill(self.text(lang), args)
            }

            /// The message in `lang`, as written.
            pub fn text(self, lang: crate::domain::Lang) -> &'static str {
                super::pick(self.pair(), lang)
            }

            /// (zh-CN, en)
            pub(super) fn pair(self) -> (&'static str, &'static str) {
                match self {
                    $($name::$id => ($zh, $en),)*
                }
            }
        }
    };
}
use table;

/// The values a message's `{name}` placeholders stand for.
pub type Args<'a> = [(&'a str, &'a dyn Display)];

/// `template` with each `{name}` in `args` replaced by its value; anything
/// else (an unknown name, a lone brace) is left as written. Values are not
/// scanned again, so a server reply holding braces is shown as it came.
pub fn fill(template: &str, args: &Args) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after
            .find('}')
            .and_then(|close| Some((close, args.iter().find(|(n, _)| *n == &after[..close])?)));
        match value {
            Some((close, (_, value))) => {
                out.push_str(&value.to_string());
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text of a `(zh-CN, en)` pair in `lang`.
fn pick(pair: (&'static str, &'static str), lang: Lang) -> &'static str {
    match lang {
        Lang::ZhCn => pair.0,
        Lang::En => pair.1,
    }
}

/// The `{name}`s a template uses, in order.
#[cfg(test)]
fn placeholders(template: &str) -> Vec<&str> {
    let mut names: Vec<&str> = template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
        .collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_names_once() {
        let args: &Args = &[("a", &1), ("raw", &"{a}")];
        assert_eq!(fill("x {a} y {raw} {b} {", args), "x 1 y {a} {b} {");
    }

    #[test]
    fn both_languages_name_the_same_placeholders() {
        let pairs = CliText::ALL
            .iter()
            .map(|m| m.pair())
            .chain(CauseText::ALL.iter().map(|m| m.pair()));
        for (zh, en) in pairs {
            assert_eq!(placeholders(zh), placeholders(en), "{zh} / {en}");
        }
    }
}
