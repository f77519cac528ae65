//! Reading NATS header blocks: `NATS/1.0[ <status>[ <description>]]\r\n` then `Key: Value\r\n`
//! lines, then an empty line. Bytes from the network: anything malformed reads as absent.

/// The status code on the first line (`503` for "no responders"), if there is one.
pub fn status(headers: &[u8]) -> Option<u16> {
    let first = headers.split(|&b| b == b'\n').next()?;
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let rest = first.strip_prefix(b"NATS/1.0")?;
    let rest = core::str::from_utf8(rest).ok()?.trim_start();
    let code = rest.split(' ').next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// The value of the first header named `name` (compared without regard to ASCII case), with
/// surrounding blanks removed.
pub fn header<'a>(headers: &'a [u8], name: &str) -> Option<&'a str> {
    let mut lines = headers.split(|&b| b == b'\n');
    lines.next()?.starts_with(b"NATS/1.0").then_some(())?;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if line[..colon].eq_ignore_ascii_case(name.as_bytes()) {
            return core::str::from_utf8(&line[colon + 1..]).ok().map(|v| v.trim_matches(|c| c == ' ' || c == '\t'));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_headers() {
        assert_eq!(status(b"NATS/1.0 503\r\n\r\n"), Some(503));
        assert_eq!(status(b"NATS/1.0 408 Request Timeout\r\n\r\n"), Some(408));
        assert_eq!(status(b"NATS/1.0\r\nA: b\r\n\r\n"), None);
        assert_eq!(status(b"HTTP/1.1 200\r\n\r\n"), None);
        assert_eq!(status(b""), None);
        let h = b"NATS/1.0\r\nNats-Msg-Id:  abc \r\nX: 1\r\n\r\nNats-Msg-Id: no";
        assert_eq!(header(h, "nats-msg-id"), Some("abc"));
        assert_eq!(header(h, "X"), Some("1"));
        assert_eq!(header(h, "Y"), None);
        assert_eq!(header(b"garbage\r\nNats-Msg-Id: a\r\n\r\n", "Nats-Msg-Id"), None);
        assert_eq!(header(b"NATS/1.0\r\nbad line\r\nK:\xff\r\n\r\n", "K"), None);
    }
}
