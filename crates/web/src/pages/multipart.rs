//! A `multipart/form-data` body, read whole (under the route's body limit) and split into
//! its named parts: what a page's file upload sends. Small on purpose: one level of parts,
//! no nested multiparts, names from `Content-Disposition`.

/// One part: its form name, the file name if it was a file, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub data: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type, or `None` for another type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let kind = pieces.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    pieces.find_map(|p| {
        let (key, value) = p.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        // RFC 2046: 1 to 70 characters.
        (!value.is_empty() && value.len() <= 70 && !value.chars().any(char::is_control))
            .then(|| value.to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        let rest = &haystack[at..];
        let next = rest.iter().position(|b| *b == first)?;
        at += next;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// `name="x"` from a `Content-Disposition` header value.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').find_map(|p| {
        let (key, v) = p.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of `body`, or `None` when it is not a well-formed multipart body.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut pos = find(body, delimiter.as_bytes())? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = body.get(pos..)?;
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        pos += rest.strip_prefix(b"\r\n").map(|_| 2)?;
        let head_len = find(body.get(pos..)?, b"\r\n\r\n")?;
        let head = std::str::from_utf8(body.get(pos..pos + head_len)?).ok()?;
        let start = pos + head_len + 4;
        let len = find(body.get(start..)?, next_delimiter.as_bytes())?;
        let data = body.get(start..start + len)?;
        pos = start + len + next_delimiter.len();
        let disposition = head.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value)
        })?;
        let name = param(disposition, "name")?;
        let filename = param(disposition, "filename");
        parts.push(Part {
            name,
            filename,
            data,
        });
        if parts.len() > 16 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_browser_body_splits_into_its_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bill.csv\"\r\n\
Content-Type: text/csv\r\n\r\nline 1\r\nline 2\r\n\r\n--XyZ--\r\n";
        let b = boundary("multipart/form-data; boundary=XyZ").unwrap();
        let parts = parse(body, &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("bill.csv"));
        assert_eq!(parts[1].data, b"line 1\r\nline 2\r\n");
    }

    #[test]
    fn malformed_bodies_and_types_are_refused() {
        assert_eq!(boundary("text/csv"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        for body in [
            &b""[..],
            b"--XyZ",
            b"--XyZ\r\nno blank line",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever closed",
            b"--XyZ\r\nX-Other: 1\r\n\r\nv\r\n--XyZ--",
            b"--XyZ\r\n\xff\xfe\r\n\r\nv\r\n--XyZ--",
        ] {
            assert_eq!(parse(body, "XyZ"), None, "{body:?}");
        }
        assert_eq!(parse(b"--XyZ--\r\n", "XyZ"), Some(Vec::new()));
    }
}
