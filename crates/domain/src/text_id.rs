//! Stable text ids: how an enum of the domain is written in the API and in storage, and how
//! a stored text is read back once, at the store's edge, with a clear error when it names no
//! known value (never guessed).

/// A text that names no value of the enum it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownId {
    /// What was being read (`refund status`, `channel`, …).
    pub what: &'static str,
    pub value: String,
}

/// `TryFrom<String>` through the enum's `parse`, for rows decoded by the store
/// (`#[sqlx(try_from = "String")]`).
macro_rules! try_from_text {
    ($name:ident, $what:literal) => {
        impl TryFrom<String> for $name {
            type Error = $crate::text_id::UnknownId;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value).ok_or($crate::text_id::UnknownId { what: $what, value })
            }
        }
    };
}

/// An enum with a stable text id per variant: `ALL`, `id`, `parse`, `Display` and
/// `TryFrom<String>`.
macro_rules! string_enum {
    ($name:ident, $what:literal { $($variant:ident => $id:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable id used in the API and in storage.
            pub fn id(self) -> &'static str {
                match self { $($name::$variant => $id),+ }
            }

            pub fn parse(id: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.id() == id)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.id())
            }
        }

        try_from_text!($name, $what);
    };
}
