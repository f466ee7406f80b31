//! Lists: `WHERE … ORDER BY id DESC LIMIT n` built from optional filters, with numbered
//! placeholders valid on both backends, and their binding. Every list of the store uses it.

/// A value bound to a dynamically built query.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Builds `WHERE … ORDER BY id DESC LIMIT n` with numbered placeholders valid on both backends.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub(crate) conditions: Vec<String>,
    pub(crate) binds: Vec<Bind>,
}

impl ListQuery {
    pub(crate) fn push(&mut self, condition_with_placeholder: &str, value: Bind) {
        self.binds.push(value);
        let n = self.binds.len();
        self.conditions
            .push(condition_with_placeholder.replace('?', &format!("${n}")));
    }

    /// Adds `condition` on `value` when it is set.
    pub(crate) fn push_text(&mut self, condition_with_placeholder: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.push(condition_with_placeholder, Bind::Text(value.clone()));
        }
    }

    pub(crate) fn sql(&self, columns: &str, table: &str, limit: i64) -> String {
        let filter = if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        };
        format!("SELECT {columns} FROM {table}{filter} ORDER BY id DESC LIMIT {limit}")
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                $crate::list::Bind::Text(text) => query.bind(text.clone()),
                $crate::list::Bind::Int(int) => query.bind(*int),
            };
        }
        query
    }};
}

pub(crate) use bind_all;
