//! What a person reads of the engine's data, in their language: a refund's timeline, its
//! next step, where its money is and where it goes back to ([`refund`]), and a settlement
//! statement's explanation ([`statement`]). The words are the `timeline.ftl` and
//! `statement.ftl` files of `yuanlu-words`; the API and the pages both show [`views`], so
//! they say the same thing.
//!
//! The engine decides what each reader may see (`yuanlu_engine::audience`); this module
//! only says it.

pub mod case;
pub mod lang;
pub mod refund;
pub mod statement;
pub mod views;

pub use lang::ApiLang;

use yuanlu_words::{Arg, Lang, Words};

/// A message of the presentation files.
pub(crate) fn say(lang: Lang, id: &str, args: &[(&str, Arg<'_>)]) -> String {
    Words::get().text(lang, id, args)
}

/// An amount as the timeline and the statements write it: `1234.56` (no grouping, no sign
/// for positive amounts).
pub(crate) fn cny(fen: i64) -> String {
    yuanlu_domain::money::format_cny(fen)
}

#[cfg(test)]
mod tests;
