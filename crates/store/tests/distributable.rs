//! The schema stays distributable (docs/scaling.md): the PostgreSQL migrations, read in
//! order, give a final schema whose every table is in the distribution plan
//! (`yuanlu_store::distribution::PLAN`) and whose distributed tables keep Citus's rules
//! (every PRIMARY KEY, UNIQUE constraint and unique index includes the distribution column;
//! every foreign key between distributed tables includes it on both sides; no reference
//! table refers to a distributed one); and every hot-path statement of the store filters
//! each distributed table it touches by its distribution column, or inserts it. Known
//! exceptions are listed with their reasons in `distribution.rs`; anything else fails, and so
//! does an exception that no longer occurs.
//!
//! The migrations are read with a small SQL tokenizer that knows the statements they use
//! (CREATE TABLE, ALTER TABLE ADD/DROP COLUMN/CONSTRAINT, CREATE [UNIQUE] INDEX, DROP
//! INDEX/TABLE); an ALTER TABLE it does not know fails the test rather than being skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use yuanlu_store::distribution::{
    HOT_FILES, HOT_PATH, PLAN, Placement, QUERY_EXCEPTIONS, SCHEMA_EXCEPTIONS,
};

// --- SQL tokens --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An identifier or keyword, lower-cased; `a.b` is one token.
    Word(String),
    /// A string literal's contents.
    Str(String),
    /// A number, a `$n` or `?` placeholder.
    Value(String),
    /// Punctuation and operators: `(`, `)`, `,`, `;`, `=`, `<>`, `::`, …
    Punct(String),
}

impl Tok {
    fn is(&self, word: &str) -> bool {
        matches!(self, Tok::Word(w) if w == word)
    }
    fn punct(&self, p: &str) -> bool {
        matches!(self, Tok::Punct(q) if q == p)
    }
    fn word(&self) -> Option<&str> {
        match self {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        text.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                text.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(text));
        } else if c == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                text.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Word(text.to_lowercase()));
        } else if c.is_alphabetic() || c == '_' {
            let mut word = String::new();
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || (chars[i] == '.'
                        && chars
                            .get(i + 1)
                            .is_some_and(|n| n.is_alphabetic() || *n == '_')))
            {
                word.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Word(word.to_lowercase()));
        } else if c.is_ascii_digit() || c == '$' || c == '?' {
            let mut value = String::from(c);
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                value.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Value(value));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["<>", "<=", ">=", "!=", "::", "||"].contains(&two.as_str()) {
                out.push(Tok::Punct(two));
                i += 2;
            } else {
                out.push(Tok::Punct(c.to_string()));
                i += 1;
            }
        }
    }
    out
}

/// Splits tokens on `;` (outside parentheses).
fn statements(tokens: Vec<Tok>) -> Vec<Vec<Tok>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0i32;
    for tok in tokens {
        if tok.punct("(") {
            depth += 1;
        } else if tok.punct(")") {
            depth -= 1;
        }
        if depth == 0 && tok.punct(";") {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(tok);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits `tokens` on commas at parenthesis depth 0.
fn split_commas(tokens: &[Tok]) -> Vec<Vec<Tok>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0i32;
    for tok in tokens {
        if tok.punct("(") {
            depth += 1;
        } else if tok.punct(")") {
            depth -= 1;
        }
        if depth == 0 && tok.punct(",") {
            out.push(Vec::new());
        } else if let Some(last) = out.last_mut() {
            last.push(tok.clone());
        }
    }
    out.retain(|part| !part.is_empty());
    out
}

/// The tokens inside the parentheses opening at `tokens[open]`, and the index after the
/// closing one.
fn parenthesised(tokens: &[Tok], open: usize) -> (Vec<Tok>, usize) {
    assert!(
        tokens.get(open).is_some_and(|t| t.punct("(")),
        "expected ( in {tokens:?} at {open}"
    );
    let mut depth = 0i32;
    for (i, tok) in tokens.iter().enumerate().skip(open) {
        if tok.punct("(") {
            depth += 1;
        } else if tok.punct(")") {
            depth -= 1;
            if depth == 0 {
                return (tokens[open + 1..i].to_vec(), i + 1);
            }
        }
    }
    panic!("unbalanced parentheses in {tokens:?}");
}

// --- The schema ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyKind {
    Primary,
    Unique,
    UniqueIndex,
}

#[derive(Debug, Clone)]
struct Key {
    name: String,
    kind: KeyKind,
    /// Column names; an expression is written `(expr)`.
    columns: Vec<String>,
}

impl Key {
    fn describe(&self) -> String {
        let columns = self.columns.join(", ");
        match self.kind {
            KeyKind::Primary => format!("PRIMARY KEY ({columns})"),
            KeyKind::Unique => format!("UNIQUE ({columns})"),
            KeyKind::UniqueIndex => format!("UNIQUE INDEX {} ({columns})", self.name),
        }
    }
}

#[derive(Debug, Clone)]
struct ForeignKey {
    name: String,
    columns: Vec<String>,
    ref_table: String,
    /// Empty: the referenced table's primary key.
    ref_columns: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Table {
    columns: Vec<String>,
    keys: Vec<Key>,
    foreign_keys: Vec<ForeignKey>,
    checks: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Schema {
    tables: BTreeMap<String, Table>,
    /// Every index (unique or not): name → table.
    indexes: BTreeMap<String, String>,
}

fn words(tokens: &[Tok]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|t| t.word().map(str::to_string))
        .collect()
}

impl Schema {
    fn apply_migration(&mut self, file: &str, sql: &str) {
        for statement in statements(tokenize(sql)) {
            self.apply(file, &statement);
        }
    }

    fn table(&mut self, file: &str, name: &str) -> &mut Table {
        self.tables
            .get_mut(name)
            .unwrap_or_else(|| panic!("{file}: table {name} is not defined"))
    }

    fn apply(&mut self, file: &str, s: &[Tok]) {
        let head: Vec<&str> = s.iter().take(3).filter_map(Tok::word).collect();
        match head.as_slice() {
            ["create", "table", ..] => self.create_table(file, s),
            ["alter", "table", ..] => self.alter_table(file, s),
            ["create", "index", ..] | ["create", "unique", "index"] => self.create_index(file, s),
            ["drop", "index", ..] => {
                for name in words(&s[2..]) {
                    if ["if", "exists", "concurrently"].contains(&name.as_str()) {
                        continue;
                    }
                    let table = self
                        .indexes
                        .remove(&name)
                        .unwrap_or_else(|| panic!("{file}: DROP INDEX {name}: no such index"));
                    if let Some(t) = self.tables.get_mut(&table) {
                        t.keys
                            .retain(|k| !(k.kind == KeyKind::UniqueIndex && k.name == name));
                    }
                }
            }
            ["drop", "table", ..] => {
                for name in words(&s[2..]) {
                    if ["if", "exists", "cascade"].contains(&name.as_str()) {
                        continue;
                    }
                    self.tables.remove(&name);
                    self.indexes.retain(|_, t| *t != name);
                }
            }
            ["create" | "drop" | "alter", ..] => {
                // Views, sequences, extensions, functions: no keys to check, but say so
                // if one appears, so the parser is extended deliberately.
                panic!("{file}: statement not understood by the checker: {s:?}")
            }
            // INSERT, UPDATE, DELETE, SELECT, COMMENT: data, not schema.
            _ => {}
        }
    }

    fn create_table(&mut self, file: &str, s: &[Tok]) {
        let mut i = 2;
        while s[i].is("if") || s[i].is("not") || s[i].is("exists") {
            i += 1;
        }
        let name = s[i].word().unwrap_or_default().to_string();
        let (body, _) = parenthesised(s, i + 1);
        assert!(
            !self.tables.contains_key(&name),
            "{file}: table {name} created twice"
        );
        self.tables.insert(name.clone(), Table::default());
        for item in split_commas(&body) {
            self.add_item(file, &name, &item, true);
        }
    }

    /// A column definition or a table constraint (of CREATE TABLE or ALTER TABLE ADD).
    fn add_item(&mut self, file: &str, table: &str, item: &[Tok], column_allowed: bool) {
        let (constraint_name, rest) = if item[0].is("constraint") {
            (item[1].word().map(str::to_string), &item[2..])
        } else {
            (None, item)
        };
        let t = self.table(file, table);
        match rest[0].word() {
            Some("primary") => {
                let (columns, _) = parenthesised(rest, 2);
                let columns = words(&columns);
                t.keys.push(Key {
                    name: constraint_name.unwrap_or_else(|| format!("{table}_pkey")),
                    kind: KeyKind::Primary,
                    columns,
                });
            }
            Some("unique") => {
                let (columns, _) = parenthesised(rest, 1);
                let columns = words(&columns);
                t.keys.push(Key {
                    name: constraint_name
                        .unwrap_or_else(|| format!("{table}_{}_key", columns.join("_"))),
                    kind: KeyKind::Unique,
                    columns,
                });
            }
            Some("foreign") => {
                let (columns, after) = parenthesised(rest, 2);
                let columns = words(&columns);
                assert!(rest[after].is("references"), "{file}: {rest:?}");
                let ref_table = rest[after + 1].word().unwrap_or_default().to_string();
                let ref_columns = if rest.get(after + 2).is_some_and(|t| t.punct("(")) {
                    words(&parenthesised(rest, after + 2).0)
                } else {
                    Vec::new()
                };
                t.foreign_keys.push(ForeignKey {
                    name: constraint_name
                        .unwrap_or_else(|| format!("{table}_{}_fkey", columns.join("_"))),
                    columns,
                    ref_table,
                    ref_columns,
                });
            }
            Some("check") => {
                let name = constraint_name.unwrap_or_else(|| format!("{table}_check"));
                t.checks.insert(name);
            }
            Some(column) if column_allowed => {
                let column = column.to_string();
                t.columns.push(column.clone());
                // Inline constraints, at depth 0 of the column definition.
                let mut depth = 0i32;
                let mut j = 1;
                while j < rest.len() {
                    let tok = &rest[j];
                    if tok.punct("(") {
                        depth += 1;
                    } else if tok.punct(")") {
                        depth -= 1;
                    } else if depth == 0 {
                        if tok.is("primary") {
                            t.keys.push(Key {
                                name: format!("{table}_pkey"),
                                kind: KeyKind::Primary,
                                columns: vec![column.clone()],
                            });
                        } else if tok.is("unique") {
                            t.keys.push(Key {
                                name: format!("{table}_{column}_key"),
                                kind: KeyKind::Unique,
                                columns: vec![column.clone()],
                            });
                        } else if tok.is("check") {
                            t.checks.insert(format!("{table}_{column}_check"));
                        } else if tok.is("references") {
                            let ref_table = rest[j + 1].word().unwrap_or_default().to_string();
                            let ref_columns = if rest.get(j + 2).is_some_and(|t| t.punct("(")) {
                                words(&parenthesised(rest, j + 2).0)
                            } else {
                                Vec::new()
                            };
                            t.foreign_keys.push(ForeignKey {
                                name: format!("{table}_{column}_fkey"),
                                columns: vec![column.clone()],
                                ref_table,
                                ref_columns,
                            });
                        }
                    }
                    j += 1;
                }
            }
            _ => panic!("{file}: ALTER TABLE {table} ADD not understood: {item:?}"),
        }
    }

    fn alter_table(&mut self, file: &str, s: &[Tok]) {
        let mut i = 2;
        while s[i].is("if") || s[i].is("exists") || s[i].is("only") {
            i += 1;
        }
        let table = s[i].word().unwrap_or_default().to_string();
        for action in split_commas(&s[i + 1..]) {
            let verb: Vec<&str> = action.iter().take(2).filter_map(Tok::word).collect();
            match verb.as_slice() {
                ["add", "column"] => {
                    let mut rest = &action[2..];
                    if rest[0].is("if") {
                        rest = &rest[3..];
                    }
                    self.add_item(file, &table, rest, true);
                }
                [
                    "add",
                    "constraint" | "primary" | "unique" | "foreign" | "check",
                ] => self.add_item(file, &table, &action[1..], false),
                ["add", _] => self.add_item(file, &table, &action[1..], true),
                ["drop", "constraint"] => {
                    let mut rest = &action[2..];
                    let if_exists = rest[0].is("if");
                    if if_exists {
                        rest = &rest[2..];
                    }
                    let name = rest[0].word().unwrap_or_default().to_string();
                    let t = self.table(file, &table);
                    let before = t.keys.len() + t.foreign_keys.len() + t.checks.len();
                    t.keys.retain(|k| k.name != name);
                    t.foreign_keys.retain(|f| f.name != name);
                    t.checks.remove(&name);
                    let after = t.keys.len() + t.foreign_keys.len() + t.checks.len();
                    assert!(
                        if_exists || after < before,
                        "{file}: ALTER TABLE {table} DROP CONSTRAINT {name}: no such constraint \
                         (the checker names unnamed constraints as PostgreSQL does)"
                    );
                }
                ["drop", "column"] | ["drop", _] => {
                    let names = words(&action[1..]);
                    let column = names
                        .iter()
                        .find(|w| !["column", "if", "exists"].contains(&w.as_str()))
                        .cloned()
                        .unwrap_or_default();
                    let t = self.table(file, &table);
                    t.columns.retain(|c| *c != column);
                    t.keys.retain(|k| !k.columns.contains(&column));
                    t.foreign_keys.retain(|f| !f.columns.contains(&column));
                }
                ["alter", _] => {} // types, defaults, NOT NULL: no keys change
                _ => panic!("{file}: ALTER TABLE {table} not understood: {action:?}"),
            }
        }
    }

    fn create_index(&mut self, file: &str, s: &[Tok]) {
        let unique = s[1].is("unique");
        let mut i = if unique { 3 } else { 2 };
        while s[i].is("concurrently") || s[i].is("if") || s[i].is("not") || s[i].is("exists") {
            i += 1;
        }
        let name = s[i].word().unwrap_or_default().to_string();
        assert!(s[i + 1].is("on"), "{file}: CREATE INDEX {name}: {s:?}");
        let mut j = i + 2;
        if s[j].is("only") {
            j += 1;
        }
        let table = s[j].word().unwrap_or_default().to_string();
        j += 1;
        if s[j].is("using") {
            j += 2;
        }
        let (elements, _) = parenthesised(s, j);
        let columns = split_commas(&elements)
            .iter()
            .map(|element| match element.as_slice() {
                [Tok::Word(column), ..] if !element.iter().any(|t| t.punct("(")) => column.clone(),
                _ => format!("({element:?})"),
            })
            .collect();
        self.table(file, &table);
        assert!(
            self.indexes.insert(name.clone(), table.clone()).is_none(),
            "{file}: index {name} created twice"
        );
        if unique {
            self.table(file, &table).keys.push(Key {
                name,
                kind: KeyKind::UniqueIndex,
                columns,
            });
        }
    }
}

fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres")
}

/// The final schema of the PostgreSQL migrations, applied in file-name order.
fn final_schema() -> Schema {
    let mut files: Vec<PathBuf> = std::fs::read_dir(migrations_dir())
        .expect("the migrations directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "migrations found: {files:?}");
    let mut schema = Schema::default();
    for file in &files {
        let sql = std::fs::read_to_string(file).expect("a migration");
        schema.apply_migration(&file.display().to_string(), &sql);
    }
    schema
}

// --- The plan's rules on a schema ----------------------------------------------------------

/// `(table, what)` for every rule the schema breaks.
fn schema_violations(schema: &Schema, plan: &[(&str, Placement)]) -> Vec<(String, String)> {
    let placement: BTreeMap<&str, Placement> = plan.iter().copied().collect();
    let mut out = Vec::new();
    for name in placement.keys() {
        if !schema.tables.contains_key(*name) {
            out.push((
                name.to_string(),
                "in the plan, not in the migrations".into(),
            ));
        }
    }
    for (name, table) in &schema.tables {
        let Some(place) = placement.get(name.as_str()) else {
            out.push((name.clone(), "not in the plan".into()));
            continue;
        };
        if let Placement::Distributed(column) = place {
            if !table.columns.iter().any(|c| c == column) {
                out.push((name.clone(), format!("no column {column}")));
            }
            for key in &table.keys {
                if !key.columns.iter().any(|c| c == column) {
                    out.push((name.clone(), key.describe()));
                }
            }
        }
        for fk in &table.foreign_keys {
            let what = format!(
                "FOREIGN KEY ({}) REFERENCES {} ({})",
                fk.columns.join(", "),
                fk.ref_table,
                fk.ref_columns.join(", ")
            );
            let Some(ref_place) = placement.get(fk.ref_table.as_str()) else {
                continue; // reported as a table not in the plan
            };
            match (place, ref_place) {
                (_, Placement::Reference) => {}
                (Placement::Reference, Placement::Distributed(_)) => out.push((
                    name.clone(),
                    format!("{what}: a reference table refers to a distributed one"),
                )),
                (Placement::Distributed(column), Placement::Distributed(ref_column)) => {
                    let ref_columns = if fk.ref_columns.is_empty() {
                        schema.tables.get(&fk.ref_table).and_then(|t| {
                            t.keys
                                .iter()
                                .find(|k| k.kind == KeyKind::Primary)
                                .map(|k| k.columns.clone())
                        })
                    } else {
                        Some(fk.ref_columns.clone())
                    };
                    let pairs_ok = ref_columns.is_some_and(|refs| {
                        fk.columns
                            .iter()
                            .zip(refs.iter())
                            .any(|(local, remote)| local == column && remote == ref_column)
                    });
                    if !pairs_ok {
                        out.push((name.clone(), what));
                    }
                }
            }
        }
    }
    out
}

fn plan_pairs() -> Vec<(&'static str, Placement)> {
    PLAN.iter().map(|p| (p.table, p.placement)).collect()
}

#[test]
fn the_plan_names_each_table_once() {
    let mut seen = BTreeSet::new();
    for entry in PLAN {
        assert!(
            seen.insert(entry.table),
            "{} twice in the plan",
            entry.table
        );
        assert!(!entry.reason.is_empty(), "{}: no reason", entry.table);
    }
}

#[test]
fn the_migrations_are_distributable() {
    let schema = final_schema();
    let violations = schema_violations(&schema, &plan_pairs());
    let excused = |(table, what): &(String, String)| {
        SCHEMA_EXCEPTIONS
            .iter()
            .any(|e| e.table == table && e.what == what)
    };
    let unexcused: Vec<_> = violations.iter().filter(|v| !excused(v)).collect();
    assert!(
        unexcused.is_empty(),
        "the schema breaks the distribution plan (docs/scaling.md); fix the migration, \
         or list the exception with its reason in distribution.rs:\n{unexcused:#?}"
    );
    for exception in SCHEMA_EXCEPTIONS {
        assert!(
            violations
                .iter()
                .any(|(t, w)| t == exception.table && w == exception.what),
            "stale exception (no longer occurs): {exception:?}"
        );
    }
}

// --- The hot path ----------------------------------------------------------------------------

/// A Rust source token: just enough to find items and their string literals.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RustTok {
    Ident(String),
    Str(String),
    Punct(char),
}

fn rust_tokens(source: &str) -> Vec<RustTok> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) {
            // A raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(RustTok::Ident("r".into()));
                i += 1;
                continue;
            }
            j += 1;
            let mut text = String::new();
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                text.push(chars[j]);
                j += 1;
            }
            out.push(RustTok::Str(text));
            i = j;
        } else if c == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    match chars.get(i + 1) {
                        Some('\n') => {
                            // A line continuation: the newline and the next line's indent go.
                            i += 2;
                            while i < chars.len() && chars[i].is_whitespace() {
                                i += 1;
                            }
                            continue;
                        }
                        Some('n') => text.push('\n'),
                        Some(other) => text.push(*other),
                        None => {}
                    }
                    i += 2;
                    continue;
                }
                text.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(RustTok::Str(text));
        } else if c == '\'' {
            // A char literal ('x', '\n') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                word.push(chars[i]);
                i += 1;
            }
            out.push(RustTok::Ident(word));
        } else {
            out.push(RustTok::Punct(c));
            i += 1;
        }
    }
    out
}

/// Items of a source file: name → the tokens of its initializer (const/static) or body (fn).
fn items(tokens: &[RustTok]) -> BTreeMap<String, Vec<RustTok>> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i + 1 < tokens.len() {
        let (RustTok::Ident(kw), RustTok::Ident(name)) = (&tokens[i], &tokens[i + 1]) else {
            i += 1;
            continue;
        };
        match kw.as_str() {
            "const" if name == "fn" => i += 1, // `const fn name`: the fn arm takes it
            "const" | "static" => {
                let mut depth = 0i32;
                let mut j = i + 2;
                while j < tokens.len() {
                    match tokens[j] {
                        RustTok::Punct('(' | '{' | '[') => depth += 1,
                        RustTok::Punct(')' | '}' | ']') => depth -= 1,
                        RustTok::Punct(';') if depth == 0 => break,
                        _ => {}
                    }
                    j += 1;
                }
                out.insert(name.clone(), tokens[i + 2..j].to_vec());
                i = j;
            }
            "fn" => {
                let mut j = i + 2;
                while j < tokens.len() && tokens[j] != RustTok::Punct('{') {
                    j += 1;
                }
                let start = j;
                let mut depth = 0i32;
                while j < tokens.len() {
                    match tokens[j] {
                        RustTok::Punct('{') => depth += 1,
                        RustTok::Punct('}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                out.insert(name.clone(), tokens[start..j.min(tokens.len())].to_vec());
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// The store's source: file → items.
fn store_items() -> BTreeMap<String, BTreeMap<String, Vec<RustTok>>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).expect("a source file");
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            out.insert(name, items(&rust_tokens(&source)));
        }
    }
    out
}

fn is_statement(text: &str) -> bool {
    let head = text.trim_start().to_ascii_uppercase();
    ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "]
        .iter()
        .any(|verb| head.starts_with(verb))
}

/// The SQL statements of an item: its statement literals, with `{NAME}` placeholders of
/// string constants filled in, and the statements of the SQL constants it names.
fn item_statements(
    all: &BTreeMap<String, BTreeMap<String, Vec<RustTok>>>,
    body: &[RustTok],
    depth: usize,
) -> Vec<String> {
    // Every const/static across the store: name → its literals joined.
    let constant = |name: &str| -> Option<&Vec<RustTok>> {
        all.values().find_map(|items| items.get(name)).filter(|_| {
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
    };
    let fill = |text: &str| -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let name = &rest[open + 1..open + close];
            if let Some(tokens) = constant(name) {
                for tok in tokens {
                    if let RustTok::Str(s) = tok {
                        out.push_str(s);
                    }
                }
            } else {
                out.push(' ');
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    };
    let mut out = Vec::new();
    for tok in body {
        match tok {
            RustTok::Str(text) if is_statement(text) => out.push(fill(text)),
            RustTok::Ident(name) if depth < 3 => {
                if let Some(tokens) = constant(name) {
                    out.extend(item_statements(all, tokens, depth + 1));
                }
            }
            _ => {}
        }
    }
    out
}

const NOT_ALIASES: &[&str] = &[
    "where",
    "set",
    "join",
    "left",
    "inner",
    "on",
    "order",
    "group",
    "limit",
    "values",
    "select",
    "returning",
    "using",
    "for",
    "default",
];

/// Whether each distributed table the statement touches is filtered by its distribution
/// column in its own query block (a conjunct of its WHERE or ON, not under an OR), or, for
/// an INSERT, is given it. Returns the tables that are not.
fn unfiltered_tables(sql: &str, placement: &BTreeMap<&str, Placement>) -> Vec<String> {
    let tokens = tokenize(sql);
    let block_of = blocks(&tokens);
    let mut missing = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        let Some(kw) = tok.word() else { continue };
        if !["from", "join", "update", "into"].contains(&kw) {
            continue;
        }
        let Some(table) = tokens.get(i + 1).and_then(Tok::word) else {
            continue;
        };
        let Some(Placement::Distributed(column)) = placement.get(table).copied() else {
            continue;
        };
        if kw == "into" {
            let given = tokens.get(i + 2).is_some_and(|t| t.punct("("))
                && words(&parenthesised(&tokens, i + 2).0)
                    .iter()
                    .any(|w| w == column);
            if !given {
                missing.push(table.to_string());
            }
            continue;
        }
        let block = block_of[i + 1];
        let mut alias = table.to_string();
        let mut k = i + 2;
        if tokens.get(k).is_some_and(|t| t.is("as")) {
            k += 1;
        }
        if let Some(word) = tokens.get(k).and_then(Tok::word)
            && !NOT_ALIASES.contains(&word)
        {
            alias = word.to_string();
        }
        let names_column = |t: &Tok| {
            t.word().is_some_and(|w| {
                w == column
                    || w.strip_suffix(column)
                        .and_then(|p| p.strip_suffix('.'))
                        .is_some_and(|p| p == alias || p == table)
            })
        };
        let mut in_condition = false;
        let mut filtered = false;
        for (j, t) in tokens.iter().enumerate() {
            if block_of[j] != block || (t.punct("(") || t.punct(")")) {
                continue;
            }
            if t.is("where") || t.is("on") {
                in_condition = true;
            } else if t.is("order") || t.is("limit") || t.is("returning") || t.is("group") {
                in_condition = false;
            } else if in_condition && t.is("or") {
                // An OR at this level: the filter is not a conjunct.
                filtered = false;
                break;
            } else if in_condition && names_column(t) {
                let before = j.checked_sub(1).and_then(|p| tokens.get(p));
                let after = tokens.get(j + 1);
                if after.is_some_and(|a| a.punct("=") || a.is("in"))
                    || before.is_some_and(|b| b.punct("="))
                {
                    filtered = true;
                }
            }
        }
        if !filtered {
            missing.push(table.to_string());
        }
    }
    missing
}

/// The query block of each token: a new block per parenthesis.
fn blocks(tokens: &[Tok]) -> Vec<usize> {
    let mut block_of = Vec::with_capacity(tokens.len());
    let mut stack = vec![0usize];
    let mut next_block = 1;
    for tok in tokens {
        if tok.punct("(") {
            stack.push(next_block);
            next_block += 1;
        }
        block_of.push(*stack.last().unwrap_or(&0));
        if tok.punct(")") {
            stack.pop();
        }
    }
    block_of
}

/// The joins between distributed tables that are not on their distribution columns
/// (`a.merchant_id = b.merchant_id`): Citus runs a join of co-located tables on each shard
/// only when it is. Returns `table JOIN table` for each.
fn non_colocated_joins(sql: &str, placement: &BTreeMap<&str, Placement>) -> Vec<String> {
    let tokens = tokenize(sql);
    // A query block, and within it each side of a UNION / EXCEPT / INTERSECT on its own.
    let mut segment: BTreeMap<usize, usize> = BTreeMap::new();
    let block_of: Vec<usize> = blocks(&tokens)
        .into_iter()
        .zip(&tokens)
        .map(|(block, tok)| {
            let n = segment.entry(block).or_default();
            if tok.is("union") || tok.is("except") || tok.is("intersect") {
                *n += 1;
            }
            block * 1000 + *n
        })
        .collect();
    // (block, table, alias, column) of each distributed table read.
    let mut refs: Vec<(usize, String, String, &str)> = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        if !(tok.is("from") || tok.is("join")) {
            continue;
        }
        let Some(table) = tokens.get(i + 1).and_then(Tok::word) else {
            continue;
        };
        let Some(Placement::Distributed(column)) = placement.get(table).copied() else {
            continue;
        };
        let mut k = i + 2;
        if tokens.get(k).is_some_and(|t| t.is("as")) {
            k += 1;
        }
        let alias = match tokens.get(k).and_then(Tok::word) {
            Some(word) if !NOT_ALIASES.contains(&word) => word.to_string(),
            _ => table.to_string(),
        };
        refs.push((block_of[i + 1], table.to_string(), alias, column));
    }
    let mut out = Vec::new();
    for (n, (block, table, alias, column)) in refs.iter().enumerate() {
        let earlier: Vec<_> = refs[..n].iter().filter(|r| r.0 == *block).collect();
        let Some(first) = earlier.first() else {
            continue;
        };
        let mine = format!("{alias}.{column}");
        let joined = (1..tokens.len().saturating_sub(1)).any(|j| {
            if block_of[j] != *block || !tokens[j].punct("=") {
                return false;
            }
            let (Some(left), Some(right)) = (tokens[j - 1].word(), tokens[j + 1].word()) else {
                return false;
            };
            let theirs = |w: &str| earlier.iter().any(|(_, _, a, c)| w == format!("{a}.{c}"));
            (left == mine && theirs(right)) || (right == mine && theirs(left))
        });
        if !joined {
            out.push(format!("{} JOIN {table}", first.1));
        }
    }
    out
}

#[test]
fn every_join_of_distributed_tables_is_colocated() {
    let all = store_items();
    let placement: BTreeMap<&str, Placement> = plan_pairs().into_iter().collect();
    let mut bad = Vec::new();
    let mut statements = 0;
    for (file, items) in &all {
        if file == "distribution.rs" {
            continue;
        }
        for (item, body) in items {
            for statement in item_statements(&all, body, 0) {
                statements += 1;
                let joins = non_colocated_joins(&statement, &placement);
                if !joins.is_empty() {
                    bad.push((file.clone(), item.clone(), joins, statement));
                }
            }
        }
    }
    assert!(
        statements > 100,
        "only {statements} statements found in the store"
    );
    assert!(
        bad.is_empty(),
        "joins of distributed tables not on merchant_id (Citus cannot run them shard by \
         shard): {bad:#?}"
    );
}

/// `(file, item, statement, tables)` for every hot-path statement that does not filter by
/// the distribution column.
fn hot_path_violations() -> Vec<(String, String, String, Vec<String>)> {
    let all = store_items();
    let placement: BTreeMap<&str, Placement> = plan_pairs().into_iter().collect();
    let mut checked: Vec<(String, String)> = HOT_PATH
        .iter()
        .map(|h| (h.file.to_string(), h.item.to_string()))
        .collect();
    for file in HOT_FILES {
        let items = all
            .get(*file)
            .unwrap_or_else(|| panic!("hot file {file} not found"));
        for name in items.keys() {
            checked.push((file.to_string(), name.clone()));
        }
    }
    let listed = HOT_PATH.len();
    let mut out = Vec::new();
    for (n, (file, item)) in checked.into_iter().enumerate() {
        let body = all
            .get(&file)
            .and_then(|items| items.get(&item))
            .unwrap_or_else(|| {
                panic!("hot-path item {file}::{item} not found: update distribution::HOT_PATH")
            });
        let statements = item_statements(&all, body, 0);
        // A listed item without SQL would pass vacuously (its statements moved elsewhere).
        assert!(
            n >= listed || !statements.is_empty(),
            "hot-path item {file}::{item} holds no SQL statement: update distribution::HOT_PATH"
        );
        for statement in statements {
            let tables = unfiltered_tables(&statement, &placement);
            if !tables.is_empty() {
                out.push((file.clone(), item.clone(), statement, tables));
            }
        }
    }
    out
}

#[test]
fn the_hot_path_filters_by_merchant() {
    let violations = hot_path_violations();
    let excused = |file: &str, item: &str| {
        QUERY_EXCEPTIONS
            .iter()
            .any(|e| e.file == file && e.item == item)
    };
    let unexcused: Vec<_> = violations
        .iter()
        .filter(|(file, item, _, _)| !excused(file, item))
        .collect();
    assert!(
        unexcused.is_empty(),
        "hot-path statements that would run on every shard (filter by merchant_id, or list \
         the exception with its reason in distribution.rs):\n{unexcused:#?}"
    );
    for exception in QUERY_EXCEPTIONS {
        assert!(
            violations
                .iter()
                .any(|(f, i, _, _)| f == exception.file && i == exception.item),
            "stale exception (the statement filters now): {exception:?}"
        );
    }
}

#[test]
fn the_hot_path_is_found_in_the_source() {
    // Guards the extractor: the create path's statements are seen, placeholders filled.
    let all = store_items();
    let body = &all["queries_refunds.rs"]["insert_refund"];
    let statements = item_statements(&all, body, 0);
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert!(
        statements[0].starts_with("INSERT INTO refunds (id, merchant_id, payment_id"),
        "{statements:?}"
    );
    let body = &all["queries_audit.rs"]["append_audit"];
    let statements = item_statements(&all, body, 0);
    assert_eq!(statements.len(), 2, "{statements:?}");
}

// --- The checker's own tests: it catches what it must -----------------------------------

fn fabricated(extra: &str) -> Vec<(String, String)> {
    let base = "
        CREATE TABLE merchants (id TEXT PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE payments (
            id TEXT NOT NULL, merchant_id TEXT NOT NULL REFERENCES merchants(id),
            rrn TEXT, PRIMARY KEY (id, merchant_id));
        CREATE TABLE refunds (
            id TEXT NOT NULL, merchant_id TEXT NOT NULL, payment_id TEXT NOT NULL,
            no TEXT NOT NULL, kind TEXT,
            PRIMARY KEY (id, merchant_id), UNIQUE (merchant_id, no),
            FOREIGN KEY (payment_id, merchant_id) REFERENCES payments (id, merchant_id));
        CREATE INDEX refunds_by_payment ON refunds (payment_id);
    ";
    let mut schema = Schema::default();
    schema.apply_migration("base", base);
    schema.apply_migration("extra", extra);
    let plan = [
        ("merchants", Placement::Reference),
        ("payments", Placement::Distributed("merchant_id")),
        ("refunds", Placement::Distributed("merchant_id")),
    ];
    schema_violations(&schema, &plan)
}

#[test]
fn the_checker_accepts_a_distributable_schema() {
    assert_eq!(fabricated(""), Vec::<(String, String)>::new());
}

#[test]
fn the_checker_catches_a_unique_index_without_the_merchant() {
    let violations = fabricated(
        "CREATE UNIQUE INDEX refunds_one_per_kind ON refunds (payment_id, kind) WHERE kind IS NOT NULL;",
    );
    assert_eq!(
        violations,
        vec![(
            "refunds".to_string(),
            "UNIQUE INDEX refunds_one_per_kind (payment_id, kind)".to_string()
        )]
    );
    // Dropped again, it is gone.
    let violations = fabricated(
        "CREATE UNIQUE INDEX refunds_one_per_kind ON refunds (payment_id, kind);
         DROP INDEX refunds_one_per_kind;",
    );
    assert!(violations.is_empty(), "{violations:?}");
}

#[test]
fn the_checker_catches_unique_and_primary_keys_without_the_merchant() {
    let violations = fabricated("ALTER TABLE payments ADD CONSTRAINT payments_rrn UNIQUE (rrn);");
    assert_eq!(
        violations,
        vec![("payments".to_string(), "UNIQUE (rrn)".to_string())]
    );
    let violations = fabricated(
        "CREATE TABLE notes (id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, body TEXT UNIQUE);",
    );
    assert_eq!(
        violations,
        vec![("notes".to_string(), "not in the plan".to_string())]
    );
    // A key moved off the merchant by dropping and re-adding the primary key.
    let violations = fabricated(
        "ALTER TABLE refunds DROP CONSTRAINT refunds_pkey;
         ALTER TABLE refunds ADD PRIMARY KEY (id);",
    );
    assert_eq!(
        violations,
        vec![("refunds".to_string(), "PRIMARY KEY (id)".to_string())]
    );
}

#[test]
fn the_checker_catches_foreign_keys_off_the_merchant() {
    let violations = fabricated(
        "ALTER TABLE refunds ADD COLUMN original_id TEXT;
         ALTER TABLE refunds ADD CONSTRAINT refunds_original FOREIGN KEY (original_id) REFERENCES refunds (id);",
    );
    assert_eq!(
        violations,
        vec![(
            "refunds".to_string(),
            "FOREIGN KEY (original_id) REFERENCES refunds (id)".to_string()
        )]
    );
    // Dropping the composite key by its PostgreSQL name works, and an id-only one is caught.
    let violations = fabricated(
        "ALTER TABLE refunds DROP CONSTRAINT refunds_payment_id_merchant_id_fkey;
         ALTER TABLE refunds ADD FOREIGN KEY (payment_id) REFERENCES payments (id);",
    );
    assert_eq!(
        violations,
        vec![(
            "refunds".to_string(),
            "FOREIGN KEY (payment_id) REFERENCES payments (id)".to_string()
        )]
    );
}

#[test]
fn the_checker_catches_statements_without_the_merchant() {
    let placement: BTreeMap<&str, Placement> = [
        ("merchants", Placement::Reference),
        ("refunds", Placement::Distributed("merchant_id")),
        ("payments", Placement::Distributed("merchant_id")),
    ]
    .into_iter()
    .collect();
    let check = |sql: &str| unfiltered_tables(sql, &placement);
    assert_eq!(
        check("UPDATE refunds SET status = $2 WHERE id = $1"),
        ["refunds"]
    );
    assert!(check("UPDATE refunds SET status = $2 WHERE id = $1 AND merchant_id = $3").is_empty());
    // An optional merchant is no filter: `$2 IS NULL` reads every shard.
    assert_eq!(
        check("SELECT id FROM refunds WHERE id = $1 AND ($2 IS NULL OR merchant_id = $2)"),
        ["refunds"]
    );
    assert_eq!(
        check("SELECT id FROM refunds WHERE id = $1 OR merchant_id = $2"),
        ["refunds"]
    );
    // Reference tables need none; each subquery needs its own.
    assert!(check("SELECT name FROM merchants WHERE id = $1").is_empty());
    assert_eq!(
        check(
            "SELECT (SELECT SUM(amount_fen) FROM payments WHERE merchant_id = $1), \
             (SELECT SUM(amount_fen) FROM refunds WHERE created_at_us > $2)"
        ),
        ["refunds"]
    );
    // A join filters each side through its alias; an insert names the column.
    assert!(
        check(
            "SELECT r.id FROM refunds r JOIN payments p ON p.id = r.payment_id \
             AND p.merchant_id = r.merchant_id WHERE r.merchant_id = $1"
        )
        .is_empty()
    );
    assert_eq!(
        check(
            "SELECT r.id FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.merchant_id = $1"
        ),
        ["payments"]
    );
    assert!(check("INSERT INTO refunds (id, merchant_id) VALUES ($1, $2)").is_empty());
    assert_eq!(check("INSERT INTO refunds (id) VALUES ($1)"), ["refunds"]);
    assert!(
        check("SELECT id FROM payments WHERE merchant_id = ANY($1) AND id = ANY($2)").is_empty()
    );
}

#[test]
fn the_checker_catches_joins_off_the_merchant() {
    let placement: BTreeMap<&str, Placement> = [
        ("merchants", Placement::Reference),
        ("refunds", Placement::Distributed("merchant_id")),
        ("payments", Placement::Distributed("merchant_id")),
        ("audit_log", Placement::Distributed("chain")),
    ]
    .into_iter()
    .collect();
    let check = |sql: &str| non_colocated_joins(sql, &placement);
    assert_eq!(
        check(
            "SELECT r.id FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.status = $1"
        ),
        ["refunds JOIN payments"]
    );
    assert!(
        check(
            "SELECT r.id FROM refunds r JOIN payments p ON p.id = r.payment_id \
             AND p.merchant_id = r.merchant_id"
        )
        .is_empty()
    );
    assert!(
        check("SELECT r.id FROM refunds r JOIN audit_log a ON a.subject_id = r.id AND a.chain = r.merchant_id")
            .is_empty()
    );
    // A reference table joins anything.
    assert!(
        check("SELECT r.id FROM refunds r JOIN merchants m ON m.id = r.merchant_id").is_empty()
    );
}

// --- The distribution script -------------------------------------------------------------

/// `(table, placement)` of each `create_reference_table` / `create_distributed_table` call
/// of docs/citus/distribute.sql, in order, with the `colocate_with` of each.
fn script_calls() -> Vec<(String, Placement, Option<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/citus/distribute.sql");
    let sql = std::fs::read_to_string(path).expect("docs/citus/distribute.sql");
    let mut out = Vec::new();
    for statement in statements(tokenize(&sql)) {
        let Some(call) = statement
            .iter()
            .position(|t| t.is("create_reference_table") || t.is("create_distributed_table"))
        else {
            continue;
        };
        let (args, _) = parenthesised(&statement, call + 1);
        let texts: Vec<String> = args
            .iter()
            .filter_map(|t| match t {
                Tok::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        if statement[call].is("create_reference_table") {
            out.push((texts[0].clone(), Placement::Reference, None));
        } else {
            let column: &'static str = PLAN
                .iter()
                .find_map(|p| match p.placement {
                    Placement::Distributed(c) if c == texts[1] => Some(c),
                    _ => None,
                })
                .unwrap_or("(a column no table of the plan is distributed by)");
            out.push((
                texts[0].clone(),
                Placement::Distributed(column),
                texts.get(2).cloned(),
            ));
        }
    }
    out
}

#[test]
fn the_script_distributes_as_planned() {
    let calls = script_calls();
    let planned: BTreeMap<&str, Placement> = plan_pairs()
        .into_iter()
        .filter(|(t, _)| *t != "_sqlx_migrations")
        .collect();
    let scripted: BTreeMap<&str, Placement> =
        calls.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
    assert_eq!(scripted, planned, "docs/citus/distribute.sql against PLAN");
    assert_eq!(calls.len(), scripted.len(), "a table distributed twice");
    // One co-location group, led by the leader; each table after the tables it refers to.
    let schema = final_schema();
    let position = |table: &str| calls.iter().position(|(t, _, _)| t == table);
    for (n, (table, placement, colocate)) in calls.iter().enumerate() {
        if let Placement::Distributed(_) = placement {
            if table == yuanlu_store::distribution::COLOCATION_LEADER {
                assert_eq!(colocate, &None, "{table}");
            } else {
                assert_eq!(
                    colocate.as_deref(),
                    Some(yuanlu_store::distribution::COLOCATION_LEADER),
                    "{table}"
                );
            }
        }
        for fk in &schema.tables[table].foreign_keys {
            if fk.ref_table == *table {
                continue;
            }
            let parent = position(&fk.ref_table);
            assert!(
                parent.is_some_and(|p| p < n),
                "{table} is distributed before {} it refers to",
                fk.ref_table
            );
        }
    }
}
