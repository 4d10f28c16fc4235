//! Word lists and the deterministic names built from them: customer names, domain names,
//! user-group names, and user local parts derived from a user id (a bijection, so every user
//! name is unique without storing it).

/// The documented example user (in group 109), whose name is the reference's: Abigail
/// Thompson, `abigail.thompson`.
pub(super) const FIXTURE_USER: u64 = 883_326;

/// Given names; the user-name bijection uses their count.
const FIRST: [&str; 32] = [
    "abigail", "benjamin", "chloe", "daniel", "emma", "felix", "grace", "henry", "isla", "jack",
    "kara", "liam", "maya", "noah", "olivia", "peter", "quinn", "rosa", "samuel", "tara", "uma",
    "victor", "wendy", "xavier", "yara", "zoe", "aaron", "bella", "carlos", "diana", "ethan",
    "fiona",
];

/// Family names.
const LAST: [&str; 32] = [
    "thompson", "garcia", "nguyen", "smith", "patel", "johnson", "brown", "martinez", "lee",
    "walker", "hall", "allen", "young", "king", "wright", "lopez", "hill", "scott", "green",
    "adams", "baker", "nelson", "carter", "mitchell", "perez", "roberts", "turner", "phillips",
    "campbell", "parker", "evans", "edwards",
];

const COMPANY_A: [&str; 24] = [
    "Harbor",
    "Summit",
    "Pioneer",
    "Riverside",
    "Oakwood",
    "Granite",
    "Bluebird",
    "Cedar",
    "Lakeshore",
    "Northstar",
    "Redwood",
    "Silverline",
    "Keystone",
    "Maple",
    "Ironclad",
    "Beacon",
    "Prairie",
    "Coastal",
    "Evergreen",
    "Highland",
    "Sterling",
    "Willow",
    "Cascade",
    "Liberty",
];

const COMPANY_B: [&str; 20] = [
    "Dental",
    "Legal",
    "Accounting",
    "Logistics",
    "Realty",
    "Veterinary",
    "Insurance",
    "Clinic",
    "Construction",
    "Consulting",
    "Engineering",
    "Marketing",
    "Pharmacy",
    "Auto",
    "Bakery",
    "Architects",
    "Family Medicine",
    "Charter School",
    "Credit Union",
    "Plumbing",
];

const COMPANY_C: [&str; 8] = ["Group", "LLC", "Inc.", "Partners", "Associates", "Co.", "", "Ltd"];

const TLDS: [&str; 5] = [".com", ".com", ".net", ".org", ".us"];

/// User-group names that do not name a product.
pub(super) const GROUP_NAMES: [&str; 8] =
    ["Default", "Staff", "Executives", "Sales", "Shared Mailboxes", "Operations", "Finance", "IT"];

/// Capitalises the first letter.
pub(super) fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// (first, last, numeric suffix) for a user id: a bijection on ids.
pub(super) fn user_parts(id: u64) -> (&'static str, &'static str, u64) {
    let f = FIRST.len() as u64;
    let l = LAST.len() as u64;
    let first = FIRST[(id % f) as usize];
    let last = LAST[((id / f) % l) as usize];
    (first, last, id / (f * l))
}

/// The local part of a user (`first.last` plus the id-derived suffix when not 0).
pub(super) fn user_local(id: u64) -> String {
    if id == FIXTURE_USER {
        return "abigail.thompson".to_owned();
    }
    let (first, last, n) = user_parts(id);
    if n == 0 { format!("{first}.{last}") } else { format!("{first}.{last}{n}") }
}

/// The local part of an alias of `parent`: `last.first` with the parent's suffix, unique per
/// parent.
pub(super) fn alias_local(parent: u64) -> String {
    let (first, last, n) = user_parts(parent);
    if n == 0 { format!("{last}.{first}") } else { format!("{last}.{first}{n}") }
}

/// Mailing-list words: a list's local part is `{topic}-{kind}` plus an id-derived suffix.
const LIST_TOPIC: [&str; 16] = [
    "sales",
    "support",
    "billing",
    "info",
    "office",
    "events",
    "hr",
    "marketing",
    "it",
    "news",
    "accounts",
    "orders",
    "careers",
    "press",
    "admin",
    "projects",
];

/// The second word of a mailing-list name.
const LIST_KIND: [&str; 8] = ["team", "all", "list", "group", "desk", "staff", "updates", "alerts"];

/// The local part of a mailing list (`sales-team`, `billing-desk3`, ...): a bijection on ids,
/// and never a person's `first.last` form.
pub(super) fn list_local(id: u64) -> String {
    let t = LIST_TOPIC.len() as u64;
    let k = LIST_KIND.len() as u64;
    let topic = LIST_TOPIC[(id % t) as usize];
    let kind = LIST_KIND[((id / t) % k) as usize];
    let n = id / (t * k);
    if n == 0 { format!("{topic}-{kind}") } else { format!("{topic}-{kind}{n}") }
}

/// A company name from three indexes (any values; taken modulo the list sizes).
pub(super) fn company(a: usize, b: usize, c: usize) -> String {
    let a = COMPANY_A[a % COMPANY_A.len()];
    let b = COMPANY_B[b % COMPANY_B.len()];
    let c = COMPANY_C[c % COMPANY_C.len()];
    if c.is_empty() { format!("{a} {b}") } else { format!("{a} {b} {c}") }
}

/// A DNS name for a company: its letters and digits, lowercased, plus a TLD.
pub(super) fn domain_for(company: &str, tld: usize, extra: Option<&str>) -> String {
    let mut s: String = company
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if let Some(x) = extra {
        s.push_str(x);
    }
    s.push_str(TLDS[tld % TLDS.len()]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn user_names_are_unique_for_distinct_ids() {
        let names: HashSet<String> = (1_000_000..1_020_000u64).map(user_local).collect();
        assert_eq!(names.len(), 20_000);
        assert_eq!(user_local(FIXTURE_USER), "abigail.thompson");
        let lists: HashSet<String> = (1_000_000..1_020_000u64).map(list_local).collect();
        assert_eq!(lists.len(), 20_000);
        assert!(lists.iter().all(|l| l.contains('-') && !l.contains('.')), "list-like names");
        assert_eq!(list_local(0), "sales-team");
    }

    #[test]
    fn company_and_domain_names_are_plain() {
        let c = company(0, 0, 0);
        assert_eq!(c, "Harbor Dental Group");
        assert_eq!(domain_for(&c, 2, None), "harbordentalgroup.net");
        assert_eq!(cap("abigail"), "Abigail");
    }
}
