//! Event kinds and causes by name, and the words events use.

use super::*;

#[test]
fn kinds_parse_back_from_their_names() {
    for k in EventKind::ALL {
        assert_eq!(EventKind::parse(k.as_str()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    assert_eq!(EventKind::parse("discrepancy"), None);
}

#[test]
fn money_and_spans_read_as_words() {
    assert_eq!(money_words(24.0, true), "24.00 a month missed");
    assert_eq!(money_words(-3.5, false), "3.50 overcharged");
    assert_eq!(span_words(3 * 86_400 + 5), "3 days");
    assert_eq!(span_words(5 * 3600), "5 hours");
    assert_eq!(span_words(60), "1 minute");
}
