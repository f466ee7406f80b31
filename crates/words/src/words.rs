//! The compiled message files and rendering a message with its arguments.

use std::{collections::HashMap, sync::OnceLock};

use fluent_bundle::{FluentArgs, FluentResource, FluentValue, concurrent::FluentBundle};

use crate::Lang;

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// An argument to a message: text, or a number Fluent may use for plurals.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Str(&'a str),
    Num(i64),
}

/// Every language's bundle, built once from the embedded files.
pub struct Words {
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
    /// The message ids of each language, for the parity check.
    ids: HashMap<Lang, Vec<String>>,
}

impl Words {
    /// The process-wide catalogue. The files are part of the binary and checked by the tests,
    /// so a parse error here is a build defect: it is reported on stderr and the bad file
    /// skipped rather than failing a request.
    pub fn get() -> &'static Words {
        static WORDS: OnceLock<Words> = OnceLock::new();
        WORDS.get_or_init(|| {
            Words::load().unwrap_or_else(|problems| {
                for p in &problems {
                    eprintln!("yuanlu-words: {p}");
                }
                Words::load_lenient()
            })
        })
    }

    /// Builds the catalogue, or lists every problem in the message files.
    pub fn load() -> Result<Words, Vec<String>> {
        let mut problems = Vec::new();
        let words = Words::build(&mut problems);
        if problems.is_empty() {
            Ok(words)
        } else {
            Err(problems)
        }
    }

    fn load_lenient() -> Words {
        Words::build(&mut Vec::new())
    }

    fn build(problems: &mut Vec<String>) -> Words {
        let mut bundles = HashMap::new();
        let mut ids: HashMap<Lang, Vec<String>> = HashMap::new();
        for lang in Lang::ALL {
            let mut bundle =
                FluentBundle::new_concurrent(vec![lang.tag().parse().unwrap_or_default()]);
            // Isolation marks (U+2068/U+2069) around arguments would end up in receipts,
            // CSV and JSON; all our scripts are left-to-right.
            bundle.set_use_isolating(false);
            for (folder, name, source) in FILES.iter().filter(|(f, _, _)| *f == lang.tag()) {
                let resource = match FluentResource::try_new((*source).to_string()) {
                    Ok(r) => r,
                    Err((r, errors)) => {
                        problems.push(format!("{folder}/{name}: {errors:?}"));
                        r
                    }
                };
                for entry in resource.entries() {
                    if let fluent_syntax::ast::Entry::Message(m) = entry {
                        ids.entry(lang).or_default().push(m.id.name.to_string());
                    }
                }
                if let Err(errors) = bundle.add_resource(resource) {
                    problems.push(format!("{folder}/{name}: {errors:?}"));
                }
            }
            bundles.insert(lang, bundle);
        }
        for list in ids.values_mut() {
            list.sort();
        }
        Words { bundles, ids }
    }

    /// Whether `id` is a message in `lang`.
    pub fn has(&self, lang: Lang, id: &str) -> bool {
        self.bundles.get(&lang).is_some_and(|b| b.has_message(id))
    }

    /// The message ids of `lang`, sorted.
    pub fn ids(&self, lang: Lang) -> &[String] {
        self.ids.get(&lang).map_or(&[], Vec::as_slice)
    }

    /// Renders message `id` in `lang`. A missing message renders as its id, so a gap shows
    /// on the page instead of failing it; the parity test keeps gaps out of releases.
    pub fn text(&self, lang: Lang, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let Some(bundle) = self.bundles.get(&lang) else {
            return id.to_string();
        };
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_string();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Str(s) => fluent_args.set(*name, FluentValue::from(*s)),
                Arg::Num(n) => fluent_args.set(*name, FluentValue::from(*n)),
            }
        }
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors)
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_parses_and_both_languages_have_the_same_messages() {
        let words = Words::load().unwrap_or_else(|p| panic!("message files: {p:#?}"));
        assert_eq!(words.ids(Lang::Zh), words.ids(Lang::En));
        assert!(!words.ids(Lang::En).is_empty());
    }

    #[test]
    fn renders_arguments_without_isolation_marks() {
        let words = Words::get();
        let en = words.text(Lang::En, "language-name", &[]);
        let zh = words.text(Lang::Zh, "language-name", &[]);
        assert_eq!((en.as_str(), zh.as_str()), ("English", "中文"));
        let amount = words.text(Lang::Zh, "money-yuan", &[("amount", Arg::Str("12.30"))]);
        assert_eq!(amount, "¥12.30");
        assert!(!amount.contains('\u{2068}'));
    }

    #[test]
    fn a_missing_message_renders_as_its_id() {
        assert_eq!(
            Words::get().text(Lang::En, "no-such-message", &[]),
            "no-such-message"
        );
    }
}
