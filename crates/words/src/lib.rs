//! What people read, in Chinese or English.
//!
//! - [`Lang`]: the reader's language, chosen by `?lang=` first, then `Accept-Language`, then
//!   a default the caller names (the API keeps English prose by default; pages default to
//!   Chinese).
//! - [`Words`]: the Fluent message files under `locales/{en,zh-CN}/`, compiled into the
//!   binary; a translator edits those files, not Rust. Each room (`timeline.ftl` for the
//!   engine's events rendered at the edge, `pages.ftl`, `receipt.ftl`, …) keeps its own file.
//!
//! The API's stable `code`s never pass through here; only prose does.

mod lang;
mod money;
mod words;

pub use lang::Lang;
pub use money::yuan;
pub use words::{Arg, Words};
