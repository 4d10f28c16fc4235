//! The product vocabulary (reference §12 #10): canonical names, case-insensitive, with the
//! known long forms. Anything else is kept verbatim as its own product, never dropped.

/// The canonical product names, exactly as reported.
pub const CANONICAL: [&str; 8] = [
    "CloudFilter",
    "SafeSend",
    "Bracket",
    "XtraMail",
    "SecureStore",
    "CloudMail",
    "ContinuityBundle",
    "BracketBundle",
];

/// Known long forms and their canonical names (compared case-insensitively).
const LONG_FORMS: [(&str, &str); 3] = [
    ("CloudFilter Email Security", "CloudFilter"),
    ("SafeSend Outbound", "SafeSend"),
    ("Premium Hosted Email", "CloudMail"),
];

/// The canonical name of a service as Mailprotector spelled it: canonical names in any case
/// and the known long forms map to the canonical spelling; any other value is returned
/// trimmed but otherwise verbatim (it surfaces as an unmapped product, never dropped).
pub fn canonical(name: &str) -> String {
    let trimmed = name.trim();
    // Internal whitespace is normalised only for matching ("SafeSend  Outbound").
    let key = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(c) = CANONICAL.iter().find(|c| c.eq_ignore_ascii_case(&key)) {
        return (*c).to_owned();
    }
    if let Some((_, c)) = LONG_FORMS.iter().find(|(long, _)| long.eq_ignore_ascii_case(&key)) {
        return (*c).to_owned();
    }
    trimmed.to_owned()
}

/// Whether `name` is one of the canonical product names (exact spelling).
pub fn is_canonical(name: &str) -> bool {
    CANONICAL.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_in_any_case() {
        for c in CANONICAL {
            assert_eq!(canonical(c), c);
            assert_eq!(canonical(&c.to_lowercase()), c);
            assert_eq!(canonical(&c.to_uppercase()), c);
        }
        assert_eq!(canonical("bracket"), "Bracket");
        assert_eq!(canonical("securestore"), "SecureStore");
        assert_eq!(canonical("  safesend "), "SafeSend");
    }

    #[test]
    fn long_forms_map_to_canonical_names() {
        assert_eq!(canonical("CloudFilter Email Security"), "CloudFilter");
        assert_eq!(canonical("cloudfilter email security"), "CloudFilter");
        assert_eq!(canonical("SafeSend Outbound"), "SafeSend");
        assert_eq!(canonical("SafeSend   outbound"), "SafeSend");
        assert_eq!(canonical("Premium Hosted Email"), "CloudMail");
    }

    #[test]
    fn unknown_products_are_kept_verbatim() {
        assert_eq!(canonical("other"), "other");
        assert_eq!(canonical("Exchange+ Premium"), "Exchange+ Premium");
        assert_eq!(canonical("ForceEncrypt"), "ForceEncrypt");
        assert_eq!(canonical(" Shield "), "Shield");
        assert!(!is_canonical("Shield"));
        assert!(is_canonical("XtraMail"));
    }
}
