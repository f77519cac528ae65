//! Subjects and patterns: parsing with NATS's rules, and matching one pattern against one subject.
//!
//! A subject is one or more tokens separated by `.`. Tokens are never empty and never contain
//! whitespace (space, tab, CR, LF, form feed). In a *pattern* a token that is exactly `*` matches
//! any one token and a token that is exactly `>` matches one or more trailing tokens, so it may
//! only be the last. A *subject* (what is published) has no wildcard tokens. A `*` or `>` inside
//! a longer token (`a*b`) is an ordinary character, as in NATS.
use core::fmt;

/// The longest subject or pattern accepted by [`Subject::parse`] and [`Pattern::parse`], in bytes.
pub const MAX_SUBJECT_BYTES: usize = 1024;

/// The ceiling on any configured maximum: it bounds the depth of the subscription trie (and so
/// the recursion of a match) whatever a caller configures.
pub const MAX_SUBJECT_BYTES_LIMIT: usize = 4096;

/// Why a subject or pattern was rejected, and where.
///
/// `token` is the zero-based index of the offending token; `offset` the byte offset of the
/// offending byte (for an empty token, where the token would start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubjectError {
    /// The subject is the empty string.
    Empty,
    /// The subject is longer than the maximum.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The maximum in bytes.
        max: usize,
    },
    /// Two separators in a row, or a leading or trailing separator.
    EmptyToken {
        /// Index of the empty token.
        token: usize,
        /// Byte offset where it would start.
        offset: usize,
    },
    /// A whitespace byte inside a token.
    Whitespace {
        /// Index of the token.
        token: usize,
        /// Byte offset of the whitespace.
        offset: usize,
    },
    /// A `*` or `>` token in a subject that must be literal (a publish subject, a reply subject).
    WildcardInSubject {
        /// Index of the wildcard token.
        token: usize,
        /// Byte offset of the wildcard.
        offset: usize,
    },
    /// A `>` token that is not the last token.
    FullWildcardNotLast {
        /// Index of the `>` token.
        token: usize,
        /// Byte offset of the `>`.
        offset: usize,
    },
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SubjectError::Empty => write!(f, "empty subject"),
            SubjectError::TooLong { len, max } => {
                write!(f, "subject is {len} bytes, longer than the maximum {max}")
            }
            SubjectError::EmptyToken { token, offset } => {
                write!(f, "empty token {token} at byte {offset}")
            }
            SubjectError::Whitespace { token, offset } => {
                write!(f, "whitespace in token {token} at byte {offset}")
            }
            SubjectError::WildcardInSubject { token, offset } => {
                write!(f, "wildcard token {token} at byte {offset} in a literal subject")
            }
            SubjectError::FullWildcardNotLast { token, offset } => {
                write!(f, "'>' is token {token} at byte {offset} but is not the last token")
            }
        }
    }
}

/// A validated literal subject (no wildcards), borrowed from the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject<'a>(&'a str);

/// A validated subscription pattern (may contain `*` and a trailing `>`), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern<'a>(&'a str);

/// One token of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// A literal token, matched byte for byte.
    Literal(&'a str),
    /// `*`: any one token.
    AnyOne,
    /// `>`: one or more trailing tokens.
    Rest,
}

impl<'a> Token<'a> {
    /// Classifies one token's bytes (taken from a valid pattern, so UTF-8).
    #[inline]
    pub(crate) fn of(t: &'a [u8]) -> Token<'a> {
        match t {
            b"*" => Token::AnyOne,
            b">" => Token::Rest,
            lit => Token::Literal(core::str::from_utf8(lit).unwrap_or_default()),
        }
    }
}

impl<'a> Subject<'a> {
    /// Parses a literal subject of at most [`MAX_SUBJECT_BYTES`].
    pub fn parse(s: &'a str) -> Result<Self, SubjectError> {
        Self::parse_with_max(s, MAX_SUBJECT_BYTES)
    }

    /// Parses a literal subject of at most `max_bytes` (clamped to [`MAX_SUBJECT_BYTES_LIMIT`]).
    pub fn parse_with_max(s: &'a str, max_bytes: usize) -> Result<Self, SubjectError> {
        let info = scan(s, max_bytes)?;
        if let Some((token, offset)) = info.first_wildcard {
            return Err(SubjectError::WildcardInSubject { token, offset });
        }
        Ok(Subject(s))
    }

    /// The subject text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> core::str::Split<'a, char> {
        self.0.split('.')
    }
}

impl<'a> Pattern<'a> {
    /// Parses a pattern of at most [`MAX_SUBJECT_BYTES`].
    pub fn parse(s: &'a str) -> Result<Self, SubjectError> {
        Self::parse_with_max(s, MAX_SUBJECT_BYTES)
    }

    /// Parses a pattern of at most `max_bytes` (clamped to [`MAX_SUBJECT_BYTES_LIMIT`]).
    pub fn parse_with_max(s: &'a str, max_bytes: usize) -> Result<Self, SubjectError> {
        scan(s, max_bytes)?;
        Ok(Pattern(s))
    }

    /// The pattern text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// True when the pattern has no wildcard token (it matches exactly one subject).
    pub fn is_literal(&self) -> bool {
        self.tokens().all(|t| matches!(t, Token::Literal(_)))
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> impl Iterator<Item = Token<'a>> + 'a {
        self.0.split('.').map(|t| Token::of(t.as_bytes()))
    }

    /// True when this pattern matches `subject`.
    pub fn matches(&self, subject: Subject<'_>) -> bool {
        pattern_matches(self.0.as_bytes(), subject.0.as_bytes())
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Pattern<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// What a successful scan found.
struct ScanInfo {
    /// (token index, byte offset) of the first `*` or `>` token.
    first_wildcard: Option<(usize, usize)>,
}

/// Byte classes for the scan: 0 ordinary, 1 separator, 2 whitespace.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'.' as usize] = 1;
    t[b' ' as usize] = 2;
    t[b'\t' as usize] = 2;
    t[b'\n' as usize] = 2;
    t[b'\r' as usize] = 2;
    t[0x0c] = 2;
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// 0x80 in exactly the bytes of `w` equal to `byte` (no false positives, unlike the short
/// "has zero byte" trick).
#[inline]
fn eq_mask(w: u64, byte: u8) -> u64 {
    let x = w ^ (LO * u64::from(byte));
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The little-endian words of `b`, eight bytes each, the last one padded with `a`s.
#[inline(always)]
fn words(b: &[u8], mut f: impl FnMut(usize, u64) -> bool) -> bool {
    let mut chunks = b.chunks_exact(8);
    let mut base = 0usize;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if !f(base, u64::from_le_bytes(w)) {
            return false;
        }
        base += 8;
    }
    let t = chunks.remainder().len();
    if t == 0 {
        return true;
    }
    let w = if b.len() >= 8 {
        // The last eight bytes, shifted so the tail sits low, then padded.
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[b.len() - 8..]);
        (u64::from_le_bytes(w) >> (8 * (8 - t))) | (LO * u64::from(b'a')) << (8 * t)
    } else {
        let mut w = LO * u64::from(b'a');
        for (i, &c) in b.iter().enumerate() {
            w = (w & !(0xff << (8 * i))) | u64::from(c) << (8 * i);
        }
        w
    };
    f(base, w)
}

/// Calls `f(start, end)` for every `.`-separated token of `b`, finding separators a word at a
/// time.
#[inline]
pub(crate) fn for_each_token(b: &[u8], mut f: impl FnMut(usize, usize)) {
    let mut start = 0usize;
    words(b, |base, w| {
        let mut dots = eq_mask(w, b'.');
        while dots != 0 {
            let end = base + (dots.trailing_zeros() / 8) as usize;
            f(start, end);
            start = end + 1;
            dots &= dots - 1;
        }
        true
    });
    f(start, b.len());
}

/// Validates the pattern rules eight bytes at a time. `None` when the text breaks a rule (or
/// holds a byte below `!`, which may be whitespace): [`scan`] then finds what and where, byte
/// by byte. Separators are located with exact per-byte masks, so each token costs a few
/// instructions whatever its length.
#[inline]
fn scan_fast(b: &[u8]) -> Option<ScanInfo> {
    let n = b.len();
    let mut first_wildcard = None;
    let mut token = 0usize;
    let mut start = 0usize;
    let ok = words(b, |base, w| {
        // Any byte below 0x21 (whitespace among them): let the exact scan decide.
        if (w.wrapping_sub(LO * 0x21) & !w & HI) != 0 {
            return false;
        }
        let mut dots = eq_mask(w, b'.');
        while dots != 0 {
            let end = base + (dots.trailing_zeros() / 8) as usize;
            if end == start {
                return false;
            }
            if end - start == 1 && (b[start] == b'*' || b[start] == b'>') {
                if b[start] == b'>' {
                    return false;
                }
                if first_wildcard.is_none() {
                    first_wildcard = Some((token, start));
                }
            }
            token += 1;
            start = end + 1;
            dots &= dots - 1;
        }
        true
    });
    if !ok || start >= n {
        return None;
    }
    if n - start == 1 && (b[start] == b'*' || b[start] == b'>') && first_wildcard.is_none() {
        first_wildcard = Some((token, start));
    }
    Some(ScanInfo { first_wildcard })
}

/// Validates the pattern rules: the word-at-a-time pass, or on any doubt the byte-by-byte one
/// that reports the exact error.
fn scan(s: &str, max_bytes: usize) -> Result<ScanInfo, SubjectError> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= max_bytes.min(MAX_SUBJECT_BYTES_LIMIT) {
        if let Some(info) = scan_fast(b) {
            return Ok(info);
        }
    }
    scan_exact(s, max_bytes)
}

/// Validates the pattern rules in one pass over the bytes.
fn scan_exact(s: &str, max_bytes: usize) -> Result<ScanInfo, SubjectError> {
    let b = s.as_bytes();
    let max = max_bytes.min(MAX_SUBJECT_BYTES_LIMIT);
    if b.is_empty() {
        return Err(SubjectError::Empty);
    }
    if b.len() > max {
        return Err(SubjectError::TooLong { len: b.len(), max });
    }
    let mut first_wildcard = None;
    let mut token = 0usize;
    let mut start = 0usize;
    let mut rest_at: Option<(usize, usize)> = None;
    let mut i = 0usize;
    loop {
        // Advance to the end of the current token.
        while i < b.len() {
            match CLASS[b[i] as usize] {
                0 => i += 1,
                1 => break,
                _ => return Err(SubjectError::Whitespace { token, offset: i }),
            }
        }
        if i == start {
            return Err(SubjectError::EmptyToken { token, offset: start });
        }
        if let Some((t, o)) = rest_at {
            return Err(SubjectError::FullWildcardNotLast { token: t, offset: o });
        }
        if i - start == 1 && (b[start] == b'*' || b[start] == b'>') {
            if first_wildcard.is_none() {
                first_wildcard = Some((token, start));
            }
            if b[start] == b'>' {
                rest_at = Some((token, start));
            }
        }
        if i == b.len() {
            return Ok(ScanInfo { first_wildcard });
        }
        i += 1;
        token += 1;
        start = i;
    }
}

#[inline(always)]
fn rd8(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The length of the common prefix of `a[i..]` and `b[j..]`, eight bytes at a time.
#[inline(always)]
pub(crate) fn common_prefix(a: &[u8], i: usize, b: &[u8], j: usize) -> usize {
    let (a, b) = (&a[i..], &b[j..]);
    let n = a.len().min(b.len());
    let mut k = 0usize;
    while k + 8 <= n {
        let x = rd8(a, k) ^ rd8(b, k);
        if x != 0 {
            return k + (x.trailing_zeros() / 8) as usize;
        }
        k += 8;
    }
    if k == n {
        return n;
    }
    if n >= 8 {
        // The last eight bytes (overlapping what was compared: those bytes are equal).
        let x = rd8(a, n - 8) ^ rd8(b, n - 8);
        return if x == 0 { n } else { n - 8 + (x.trailing_zeros() / 8) as usize };
    }
    while k < n && a[k] == b[k] {
        k += 1;
    }
    k
}

/// Matches pattern bytes against literal subject bytes without allocating: literal stretches
/// (which may run over several tokens) are compared eight bytes at a time, and each `*` skips
/// one subject token. Both are assumed valid; invalid input gives some answer, never a panic.
///
/// While the bytes agree, a whole `*` or `>` token of the pattern would have to be a whole `*`
/// or `>` token of the subject, which a valid subject never has; so a literal stretch stops at
/// a wildcard token starting there, at a one-byte wildcard token just before the stop (`*`
/// against a subject token that begins with `*`), or the match fails.
pub(crate) fn pattern_matches(p: &[u8], s: &[u8]) -> bool {
    let (pn, sn) = (p.len(), s.len());
    let (mut i, mut j) = (0usize, 0usize);
    loop {
        // Both at the start of a token.
        if i >= pn {
            return false;
        }
        let c = p[i];
        let whole = i + 1 == pn || p[i + 1] == b'.';
        if c == b'*' && whole {
            if j >= sn {
                return false;
            }
            j += 1;
            while j < sn && s[j] != b'.' {
                j += 1;
            }
            i += 1;
            // Both at the end of a token.
            match (i == pn, j == sn) {
                (true, true) => return true,
                (false, false) => {
                    i += 1;
                    j += 1;
                }
                _ => return false,
            }
        } else if c == b'>' && whole {
            return i + 1 == pn && j < sn;
        } else {
            // A literal stretch, compared a word at a time; it may run over several tokens.
            let k = common_prefix(p, i, s, j);
            let (pi, sj) = (i + k, j + k);
            if pi == pn && sj == sn {
                return true;
            }
            if k == 0 {
                return false;
            }
            if p[pi - 1] == b'.' {
                // Stopped at a token start of both: only a wildcard token goes on.
                if pi < pn && (p[pi] == b'*' || p[pi] == b'>') && (pi + 1 == pn || p[pi + 1] == b'.') {
                    i = pi;
                    j = sj;
                    continue;
                }
                return false;
            }
            // A one-byte `*` or `>` token just before the stop, which matched a subject token
            // beginning with the same byte: go back to it.
            let t = pi - 1;
            if (p[t] == b'*' || p[t] == b'>') && (t == i || p[t - 1] == b'.') && (pi == pn || p[pi] == b'.') {
                i = t;
                j = sj - 1;
                continue;
            }
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-by-byte matcher this module used before the word-at-a-time one: the reference.
    fn pattern_matches_bytewise(p: &[u8], s: &[u8]) -> bool {
        let (mut i, mut j) = (0usize, 0usize);
        loop {
            // Both at the start of a token.
            if i < p.len() && p[i] == b'>' && i + 1 == p.len() {
                return j < s.len();
            }
            if i < p.len() && p[i] == b'*' && (i + 1 == p.len() || p[i + 1] == b'.') {
                i += 1;
                if j >= s.len() {
                    return false;
                }
                while j < s.len() && s[j] != b'.' {
                    j += 1;
                }
            } else {
                while i < p.len() && p[i] != b'.' {
                    if j >= s.len() || s[j] != p[i] {
                        return false;
                    }
                    i += 1;
                    j += 1;
                }
                if j < s.len() && s[j] != b'.' {
                    return false;
                }
            }
            // Both at the end of a token.
            match (i == p.len(), j == s.len()) {
                (true, true) => return true,
                (false, false) => {
                    i += 1;
                    j += 1;
                }
                _ => return false,
            }
        }
    }

    #[test]
    fn valid_subjects_and_patterns() {
        for s in ["a", "foo.bar", "a*b.c>d", "_INBOX.1.2", "ü.ñ"] {
            assert_eq!(Subject::parse(s).map(|s| s.as_str()), Ok(s));
            assert!(Pattern::parse(s).is_ok());
        }
        for p in ["*", ">", "foo.*", "foo.>", "*.*.>", "a.*.c"] {
            assert!(Pattern::parse(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        use SubjectError::*;
        assert_eq!(Subject::parse(""), Err(Empty));
        assert_eq!(Subject::parse("."), Err(EmptyToken { token: 0, offset: 0 }));
        assert_eq!(Subject::parse("a..b"), Err(EmptyToken { token: 1, offset: 2 }));
        assert_eq!(Subject::parse("a.b."), Err(EmptyToken { token: 2, offset: 4 }));
        assert_eq!(Subject::parse("ab.c d"), Err(Whitespace { token: 1, offset: 4 }));
        assert_eq!(Subject::parse("a.\tb"), Err(Whitespace { token: 1, offset: 2 }));
        assert_eq!(Subject::parse("a.*.b"), Err(WildcardInSubject { token: 1, offset: 2 }));
        assert_eq!(Subject::parse("a.>"), Err(WildcardInSubject { token: 1, offset: 2 }));
        assert_eq!(Pattern::parse("a.>.b"), Err(FullWildcardNotLast { token: 1, offset: 2 }));
        assert_eq!(Pattern::parse(">.>"), Err(FullWildcardNotLast { token: 0, offset: 0 }));
        assert_eq!(Pattern::parse("a.>."), Err(EmptyToken { token: 2, offset: 4 }));
        let long = "a".repeat(MAX_SUBJECT_BYTES + 1);
        assert_eq!(Subject::parse(&long), Err(TooLong { len: MAX_SUBJECT_BYTES + 1, max: MAX_SUBJECT_BYTES }));
        assert_eq!(Subject::parse_with_max("abcd", 3), Err(TooLong { len: 4, max: 3 }));
        let huge = "a".repeat(MAX_SUBJECT_BYTES_LIMIT + 1);
        assert!(matches!(Subject::parse_with_max(&huge, usize::MAX), Err(TooLong { .. })));
    }

    /// The word-at-a-time scan agrees with the byte-by-byte one on every short text over an
    /// alphabet of separators, wildcards, whitespace, control and multi-byte characters.
    #[test]
    fn fast_scan_agrees_with_exact_scan() {
        let alphabet = ["a", ".", "*", ">", " ", "\t", "\x01", "é", "bc", "\x7f"];
        let mut count = 0;
        let mut texts = alloc::vec![alloc::string::String::new()];
        for _ in 0..5 {
            let mut next = alloc::vec::Vec::new();
            for t in &texts {
                for a in alphabet {
                    next.push(alloc::format!("{t}{a}"));
                }
            }
            for t in &next {
                // Also at other alignments and lengths around the 8-byte words.
                for pad in ["", "abcdefg.", "abcdefgh.", "x.yz."] {
                    let text = alloc::format!("{pad}{t}");
                    let exact = scan_exact(&text, MAX_SUBJECT_BYTES).map(|i| i.first_wildcard);
                    let fast = scan_fast(text.as_bytes()).map(|i| i.first_wildcard);
                    if let Some(f) = fast {
                        assert_eq!(Ok(f), exact, "{text:?}");
                    } else {
                        assert!(exact.is_err() || text.bytes().any(|c| c < 0x21), "{text:?}: fast refused a valid text");
                    }
                    assert_eq!(scan(&text, MAX_SUBJECT_BYTES).map(|i| i.first_wildcard), exact);
                    count += 1;
                }
            }
            texts = next;
        }
        assert!(count > 100_000);
    }

    /// The word-at-a-time matcher agrees with the byte-by-byte one on every valid (pattern,
    /// subject) pair over a small token alphabet (tokens around the 8-byte word size, tokens
    /// holding `*` and `>` as ordinary characters), and never panics on invalid pairs.
    #[test]
    fn word_matcher_agrees_with_bytewise_matcher() {
        let toks = ["a", "bb", "*", ">", "a*", "*x", ">y", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmnopq"];
        let mut seqs: alloc::vec::Vec<alloc::string::String> = alloc::vec::Vec::new();
        let mut level: alloc::vec::Vec<alloc::string::String> = toks.iter().map(|t| alloc::string::String::from(*t)).collect();
        for _ in 0..3 {
            seqs.extend(level.iter().cloned());
            let mut next = alloc::vec::Vec::new();
            for l in &level {
                for t in toks {
                    next.push(alloc::format!("{l}.{t}"));
                }
            }
            level = next;
        }
        let (mut checked, mut matched) = (0usize, 0usize);
        for p in &seqs {
            let pv = Pattern::parse(p).is_ok();
            for s in &seqs {
                let got = pattern_matches(p.as_bytes(), s.as_bytes());
                if pv && Subject::parse(s).is_ok() {
                    assert_eq!(got, pattern_matches_bytewise(p.as_bytes(), s.as_bytes()), "{p} vs {s}");
                    checked += 1;
                    matched += usize::from(got);
                }
            }
        }
        assert!(checked > 100_000 && matched > 1_000, "{checked} pairs, {matched} matches");
        // Invalid text on either side: some answer, no panic.
        for (p, s) in [("", ""), ("*", ""), ("", "a"), (">.a", "a.b"), ("a..b", "a..b"), ("*", "."), ("a.*", "a."), ("a.>", "a.")] {
            let _ = pattern_matches(p.as_bytes(), s.as_bytes());
        }
    }

    #[test]
    fn matching() {
        let m = |p: &str, s: &str| Pattern::parse(p).unwrap().matches(Subject::parse(s).unwrap());
        assert!(m("foo", "foo"));
        assert!(!m("foo", "foo.bar"));
        assert!(!m("foo.bar", "foo"));
        assert!(m("foo.*", "foo.bar"));
        assert!(!m("foo.*", "foo"));
        assert!(!m("foo.*", "foo.bar.baz"));
        assert!(m("foo.>", "foo.bar.baz"));
        assert!(!m("foo.>", "foo"));
        assert!(m(">", "a"));
        assert!(m("*.b.>", "a.b.c"));
        assert!(!m("*.b.>", "a.b"));
        assert!(m("a*b.c", "a*b.c"));
        assert!(!m("a*b.c", "axb.c"));
        assert!(!m("fo", "foo"));
        assert!(!m("foo", "fo"));
        assert!(m("*", "foo"));
        assert!(!m("*", "foo.bar"));
    }
}
