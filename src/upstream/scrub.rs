//! [`Scrubber`]: replaces every configured secret — and each form an upstream could echo it
//! back in (Base64, percent-encoding, JSON and HTML escaping, any ASCII case) — with
//! `<redacted>`.
//!
//! Built once per upstream client from its credentials ([`super::UpstreamClient::scrubber`]):
//! the client cuts them out of every error it makes and every body it hands out, capture
//! bundles go through it, and the log cuts the union of every configured secret out of each
//! line. Matching is on bytes (one Aho-Corasick pass), so it also works on bodies that are
//! not UTF-8 and costs little on megabyte pages.
//!
//! Backslash escapes are seen through whatever their kind or depth: JSON's `\"` and `\\`,
//! PHP's `\/`, a JSON document inside a JSON string, Rust's `{:?}` quoting of any of these.
//! Matching runs on the text without its backslashes, and each cut spans the backslashes
//! inside the match and any run just before it (so a JSON string stays valid JSON).

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// A set of secrets, each with its derived forms, to cut out of text and bytes.
/// `Debug` shows only how many forms it holds.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// ASCII-lowercased forms without backslashes, longest first, without duplicates or
    /// empty strings.
    needles: Vec<Vec<u8>>,
    /// All of `needles` at once, ASCII case-insensitive, reporting overlapping matches.
    /// `None` when empty (or, in theory, when the automaton cannot be built: then the slow
    /// search below is used, never no search).
    matcher: Option<AhoCorasick>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} forms)", self.needles.len())
    }
}

impl Scrubber {
    /// A scrubber for `secrets`; each is added with its derived forms (see [`Scrubber::add`]).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Scrubber {
        let mut s = Scrubber::default();
        for secret in secrets {
            s.push_forms(secret.as_ref());
        }
        s.rebuild();
        s
    }

    /// Adds one secret: the value itself (and trimmed), its standard and URL-safe Base64
    /// (padded or not), its percent-encoded forms (form encoding, `%20` for spaces, RFC 3986),
    /// its ASCII-only JSON form with `<>&'` as `\u` escapes (Python, Go and Rails) and its
    /// HTML-escaped forms; every backslash-escaped form comes with matching on the text
    /// without backslashes (see the module docs). Pass
    /// composite values (a `company+public:private` pair, a `vendor:partner` token source) as
    /// their own secrets: the Base64 of a whole is not found by looking for the Base64 of its
    /// parts.
    pub fn add(&mut self, secret: &str) {
        self.push_forms(secret);
        self.rebuild();
    }

    /// Adds every form `other` holds.
    pub fn extend(&mut self, other: &Scrubber) {
        for n in &other.needles {
            if !self.needles.contains(n) {
                self.needles.push(n.clone());
            }
        }
        self.rebuild();
    }

    /// Whether no secret was added.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every secret replaced by [`REDACTED`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Forms are whole UTF-8 strings and case folding is ASCII-only, so every cut is on
            // a character boundary and the result is UTF-8.
            Cow::Owned(b) => Cow::Owned(
                String::from_utf8(b)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()),
            ),
        }
    }

    /// `bytes` with every form of every secret replaced by [`REDACTED`].
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let cuts = self.cuts(bytes);
        if cuts.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for (start, end) in cuts {
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(REDACTED.as_bytes());
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        Cow::Owned(out)
    }

    /// Whether `bytes` hold any form of any secret.
    pub fn contains_secret(&self, bytes: &[u8]) -> bool {
        match &self.matcher {
            Some(ac) => ac.is_match(Unescaped::new(bytes).text()),
            None => !self.cuts(bytes).is_empty(),
        }
    }

    fn push_forms(&mut self, secret: &str) {
        for value in [secret, secret.trim()] {
            // Blank "secrets" would cut every space out of a bundle; they cannot be keys.
            if value.trim().is_empty() {
                continue;
            }
            for form in forms(value) {
                let mut lower = form.into_bytes().to_ascii_lowercase();
                lower.retain(|&b| b != b'\\');
                if !lower.is_empty() && !self.needles.contains(&lower) {
                    self.needles.push(lower);
                }
            }
        }
    }

    fn rebuild(&mut self) {
        // Longest first: a deterministic order (and the slow search's preference).
        self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.matcher = if self.needles.is_empty() {
            None
        } else {
            // Standard semantics report overlapping matches, so two secrets that overlap in a
            // text are both cut (the ranges are merged below).
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&self.needles)
                .ok()
        };
    }

    /// The byte ranges to cut, sorted and merged.
    fn cuts(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        if self.needles.is_empty() || bytes.is_empty() {
            return Vec::new();
        }
        let view = Unescaped::new(bytes);
        let found: Vec<(usize, usize)> = match &self.matcher {
            Some(ac) => {
                ac.find_overlapping_iter(view.text()).map(|m| (m.start(), m.end())).collect()
            }
            None => {
                let lower = view.text().to_ascii_lowercase();
                let mut found = Vec::new();
                for needle in &self.needles {
                    let mut from = 0;
                    while let Some(at) = find(&lower, needle, from) {
                        found.push((at, at + needle.len()));
                        from = at + 1;
                    }
                }
                found
            }
        };
        let mut ranges: Vec<(usize, usize)> = found
            .into_iter()
            .map(|(start, end)| {
                let mut start = view.original(start);
                // The backslashes escaping the first character belong to the cut.
                while start > 0 && bytes[start - 1] == b'\\' {
                    start -= 1;
                }
                (start, view.original(end - 1) + 1)
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// Bytes without their backslashes, and the way back to positions in the original.
struct Unescaped<'a> {
    text: Cow<'a, [u8]>,
    /// For the j-th backslash of the original, its position minus j: the position in `text`
    /// of the first byte after it (non-decreasing).
    shifts: Vec<usize>,
}

impl<'a> Unescaped<'a> {
    fn new(bytes: &'a [u8]) -> Unescaped<'a> {
        let shifts: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\\')
            .enumerate()
            .map(|(j, (i, _))| i - j)
            .collect();
        let text = if shifts.is_empty() {
            Cow::Borrowed(bytes)
        } else {
            Cow::Owned(bytes.iter().copied().filter(|&b| b != b'\\').collect())
        };
        Unescaped { text, shifts }
    }

    fn text(&self) -> &[u8] {
        &self.text
    }

    /// The original position of the byte at `at` in [`Unescaped::text`].
    fn original(&self, at: usize) -> usize {
        at + self.shifts.partition_point(|&s| s <= at)
    }
}

/// Every form of `value` an upstream could echo it in.
fn forms(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut out = vec![value.to_owned()];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        out.push(engine.encode(bytes));
    }
    let form: String = url::form_urlencoded::byte_serialize(bytes).collect();
    out.push(form.replace('+', "%20"));
    out.push(form);
    out.push(percent_rfc3986(bytes));
    // JSON as serde, PHP and nested documents write it differs from `value` only by
    // backslashes, which matching ignores; these `\u` escapes it does not.
    out.push(json_ascii(value));
    out.push(html(value, "&#39;"));
    out.push(html(value, "&#x27;"));
    out
}

/// Percent-encoding that keeps only RFC 3986's unreserved characters (JavaScript's
/// `encodeURIComponent` and most URL libraries).
fn percent_rfc3986(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A JSON string body (without quotes) as an ASCII-only, HTML-safe encoder writes it.
fn json_ascii(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\'' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out
}

/// `value` as an HTML page would quote it, with `apostrophe` for `'`.
fn html(value: &str, apostrophe: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            c => out.push(c),
        }
    }
    out
}

/// The first position at or after `from` where `needle` (non-empty) occurs in `hay`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut start = from;
    while start + needle.len() <= hay.len() {
        let at = start + hay[start..].iter().position(|&b| b == first)?;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_derived_form_is_cut_in_any_ascii_case() {
        let s = Scrubber::new(["sk-Live/42+x"]);
        let forms = [
            "sk-Live/42+x".to_owned(),
            "SK-LIVE/42+X".to_owned(),
            STANDARD.encode("sk-Live/42+x"),
            URL_SAFE_NO_PAD.encode("sk-Live/42+x"),
            "sk-Live%2F42%2Bx".to_owned(),
        ];
        for form in forms {
            let text = format!("before {form} after");
            assert_eq!(s.scrub(&text), "before <redacted> after", "{form}");
            assert!(s.contains_secret(text.as_bytes()), "{form}");
        }
        assert!(!s.contains_secret(b"nothing to see"));
        assert!(matches!(s.scrub("nothing to see"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escaped_secrets_and_overlaps_are_cut_whole() {
        let s = Scrubber::new(["a\"b\\c", "company+pub:priv", "pub"]);
        let body = serde_json::json!({"echo": "x a\"b\\c y"}).to_string();
        let out = s.scrub(&body);
        assert!(!out.contains("a\\\"b"), "{out}");
        serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
        // The longer form wins over the shorter one inside it: one cut, not two.
        assert_eq!(s.scrub("[company+pub:priv]"), "[<redacted>]");
        assert_eq!(s.scrub("pubpub"), "<redacted><redacted>");
    }

    #[test]
    fn the_forms_other_encoders_write_are_cut_too() {
        let key = "k3y/\"Quote\"+<é>~'s";
        let s = Scrubber::new([key]);
        let forms = [
            // PHP's json_encode escapes slashes.
            "k3y\\/\\\"Quote\\\"+<é>~'s",
            // Python's ensure_ascii, Go's and Rails' HTML-safe JSON.
            "k3y/\\\"Quote\\\"+\\u003c\\u00e9\\u003e~\\u0027s",
            // encodeURIComponent keeps `~`; form encoding does not.
            "k3y%2F%22Quote%22%2B%3C%C3%A9%3E~%27s",
            "k3y%2F%22Quote%22%2B%3C%C3%A9%3E%7E%27s",
            // An HTML error page.
            "k3y/&quot;Quote&quot;+&lt;é&gt;~&#39;s",
            "k3y/&quot;Quote&quot;+&lt;é&gt;~&#x27;s",
        ];
        for form in forms {
            let text = format!("[{form}]");
            assert_eq!(s.scrub(&text), "[<redacted>]", "{form}");
        }
        // A serde error quotes a value with Rust's Debug escaping, which is JSON's here.
        let quoted = format!("invalid type: string {key:?}, expected u64");
        assert_eq!(s.scrub(&quoted), "invalid type: string \"<redacted>\", expected u64");
    }

    #[test]
    fn backslash_escapes_of_any_kind_and_depth_are_seen_through() {
        let key = "/k3y\"Q\\uote/";
        let s = Scrubber::new([key]);
        let json = serde_json::to_string(key).unwrap();
        let nested = serde_json::to_string(&json).unwrap();
        for text in [
            key.replace('/', "\\/"),
            format!("{json:?}"),
            format!("{nested:?}"),
            format!("{{\"error\":{nested}}}"),
        ] {
            assert!(s.contains_secret(text.as_bytes()), "{text}");
            let out = s.scrub(&text);
            assert!(!out.contains("k3y") && out.contains(REDACTED), "{text} -> {out}");
        }
        // The backslash before the first character goes with the cut: still valid JSON.
        let body = serde_json::json!({ "echo": format!("x {key}") }).to_string();
        let body = body.replace('/', "\\/");
        let out = s.scrub(&body);
        let v: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
        assert_eq!(v["echo"], "x <redacted>", "{body} -> {out}");
        assert_eq!(s.scrub("a\\\\b"), "a\\\\b", "backslashes alone are left alone");
    }

    #[test]
    fn overlapping_secrets_are_cut_whole_and_found_anywhere_in_big_bodies() {
        let s = Scrubber::new(["abcd1234", "1234wxyz"]);
        assert_eq!(s.scrub("<abcd1234wxyz>"), "<<redacted>>");
        let mut body = "x".repeat(1 << 20);
        body.push_str("ABCD1234");
        let out = s.scrub(&body);
        assert!(out.ends_with("x<redacted>") && out.len() == (1 << 20) + REDACTED.len());
        let mut grown = Scrubber::new(["first-secret"]);
        grown.extend(&Scrubber::new(["second-secret"]));
        assert_eq!(grown.scrub("first-secret second-secret"), "<redacted> <redacted>");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_scrubbed_too_and_debug_shows_nothing() {
        let s = Scrubber::new(["k3y-value"]);
        let mut raw = vec![0xff, 0xfe];
        raw.extend_from_slice(b"k3y-value");
        raw.push(0x80);
        let out = s.scrub_bytes(&raw);
        assert_eq!(&out[..], &[&[0xffu8, 0xfe][..], REDACTED.as_bytes(), &[0x80]].concat()[..]);
        assert!(!format!("{s:?}").contains("k3y"));
        assert!(Scrubber::new([" ", ""]).is_empty());
    }
}
