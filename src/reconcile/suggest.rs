//! Mapping suggestions: PSA accounts whose normalized name equals an unmapped customer's.
//! Shown with the evidence and a line to paste; never applied (a wrong automatic mapping
//! would bill the wrong company, which is worse than an unmapped row).

use std::collections::{BTreeMap, HashMap};

use super::Suggestion;
use crate::config::Mapping;
use crate::model::{Account, CustomerId, CustomerUsage};

/// Legal-form words ignored at the end of a name ("Acme Pty Ltd" → "acme").
const LEGAL_SUFFIXES: [&str; 14] = [
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "llp",
    "plc",
    "pty",
    "lp",
];

/// The form two names are compared in: lower case, punctuation and whitespace ignored, legal
/// suffixes (Inc, LLC, Ltd, Corp, Co, GmbH, LLP, PLC, Pty, ...) dropped from the end.
/// "Acme, Inc." and "ACME  Inc" both give "acme". A name that is only a suffix keeps it.
pub fn normalize_name(name: &str) -> String {
    // Dots and apostrophes join ("L.L.C." → "llc", "O'Brien" → "obrien"); any other
    // non-alphanumeric character separates words.
    let cleaned: String = name
        .chars()
        .filter(|c| !matches!(c, '.' | '\'' | '’'))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let mut words: Vec<&str> = cleaned.split_whitespace().collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.contains(w)) {
        words.pop();
    }
    words.concat()
}

/// Suggestions for every customer that is neither mapped nor excluded, by customer id.
/// Customers without a matching account get no entry.
pub fn suggestions(
    customers: &[CustomerUsage],
    accounts: &[Account],
    mapping: &Mapping,
) -> BTreeMap<CustomerId, Vec<Suggestion>> {
    let mut by_name: HashMap<String, Vec<&Account>> = HashMap::new();
    for a in accounts {
        let n = normalize_name(&a.name);
        if !n.is_empty() {
            by_name.entry(n).or_default().push(a);
        }
    }
    let mut out = BTreeMap::new();
    for c in customers {
        if mapping.customers.contains_key(&c.id) || mapping.exclude_customers.contains(&c.id) {
            continue;
        }
        let normalized = normalize_name(&c.name);
        let Some(matches) = by_name.get(&normalized) else {
            continue;
        };
        let mut list: Vec<Suggestion> = matches
            .iter()
            .map(|a| Suggestion {
                account: a.id.clone(),
                account_name: a.name.clone(),
                customer_name: c.name.clone(),
                normalized: normalized.clone(),
                stanza: stanza(c.id, &c.name, a),
            })
            .collect();
        list.sort_by(|a, b| a.account.cmp(&b.account));
        out.insert(c.id, list);
    }
    out
}

/// `329 = "250"  # Acme, Inc. ↔ ACME Inc`: valid TOML for the `[customers]` table.
fn stanza(customer: CustomerId, customer_name: &str, account: &Account) -> String {
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    format!(
        "{customer} = {}  # {} ↔ {}",
        toml_string(&account.id),
        one_line(customer_name),
        one_line(&account.name)
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differing_in_case_punctuation_spacing_and_legal_form_match() {
        for (a, b) in [
            ("Acme, Inc.", "ACME Inc"),
            ("Acme Inc", "acme"),
            ("Smith-Jones LLC", "Smith Jones, L.L.C."),
            ("Bright  Dental   Pty Ltd", "Bright Dental"),
            ("Müller GmbH", "MÜLLER"),
            ("O'Brien & Sons Co.", "OBrien & Sons"),
            ("Contoso Corp", "contoso corporation"),
        ] {
            assert_eq!(normalize_name(a), normalize_name(b), "{a:?} vs {b:?}");
        }
        assert_eq!(normalize_name("Acme, Inc."), "acme");
    }

    #[test]
    fn different_names_and_inner_suffix_words_do_not_match() {
        assert_ne!(normalize_name("Acme Inc"), normalize_name("Acme Labs Inc"));
        // "Co" only counts at the end: "Co Op Foods" is not "Op Foods".
        assert_eq!(normalize_name("Co Op Foods"), "coopfoods");
        // A name that is only a legal word stays comparable.
        assert_eq!(normalize_name("Inc"), "inc");
        assert_eq!(normalize_name("  ...  "), "");
    }

    fn usage(id: u64, name: &str) -> CustomerUsage {
        CustomerUsage { id, name: name.into(), counts: Default::default() }
    }

    #[test]
    fn suggestions_show_evidence_and_a_pasteable_stanza_for_unmapped_customers_only() {
        let accounts = vec![
            Account { id: "250".into(), name: "ACME Inc".into() },
            Account { id: "251".into(), name: "Globex".into() },
            Account { id: "9\"x".into(), name: "Initech".into() },
        ];
        let mut mapping = Mapping::default();
        mapping.customers.insert(2, "251".into());
        mapping.exclude_customers.insert(4);
        let customers = vec![
            usage(329, "Acme, Inc."),
            usage(2, "Globex"),
            usage(3, "Umbrella"),
            usage(4, "Initech LLC"),
            usage(5, "initech"),
        ];
        let s = suggestions(&customers, &accounts, &mapping);
        assert_eq!(s.keys().copied().collect::<Vec<_>>(), vec![5, 329]);
        let acme = &s[&329][0];
        assert_eq!(acme.account, "250");
        assert_eq!(acme.normalized, "acme");
        assert_eq!(acme.customer_name, "Acme, Inc.");
        assert_eq!(acme.account_name, "ACME Inc");
        assert_eq!(acme.stanza, "329 = \"250\"  # Acme, Inc. ↔ ACME Inc");
        // The stanza is valid TOML even with a quote in the account id.
        let parsed: toml::Table = toml::from_str(&s[&5][0].stanza).unwrap();
        assert_eq!(parsed["5"].as_str(), Some("9\"x"));
    }
}
