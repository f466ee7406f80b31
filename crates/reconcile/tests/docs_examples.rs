//! The examples in docs/statements.md parse as documented.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use yuanlu_reconcile::{StatementChannel, parse};

const DOC: &str = include_str!("../../../docs/statements.md");

/// The last ```text block of the section whose heading ends with `(`id`)`.
fn example(id: &str) -> String {
    let heading = format!("(`{id}`)\n");
    let start = DOC
        .find(&heading)
        .unwrap_or_else(|| panic!("no section {id}"));
    let section = &DOC[start..];
    let section = &section[..section[heading.len()..]
        .find("\n## ")
        .map_or(section.len(), |e| e + heading.len())];
    let block = section.rsplit("```text\n").next().unwrap();
    block.split("```").next().unwrap().to_owned()
}

#[test]
fn documented_examples_parse() {
    for (id, channel, lines) in [
        ("wechat", StatementChannel::Wechat, 2),
        ("alipay", StatementChannel::Alipay, 2),
        ("card", StatementChannel::Card, 3),
        ("yuanlu", StatementChannel::Yuanlu, 2),
    ] {
        let text = example(id);
        let bytes = if channel == StatementChannel::Alipay {
            encoding_rs::GBK.encode(&text).0.into_owned()
        } else {
            text.into_bytes()
        };
        let statement = parse(channel, &bytes, &mut |_| {}).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(statement.lines.len(), lines, "{id}");
    }
}
