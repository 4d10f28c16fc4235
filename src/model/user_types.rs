//! Who is counted: Mailprotector's user types (reference §5: User 1, Alias 2, Mailing List 3,
//! Unlicensed User 11) and the configured set of counted types (`count_user_types`).
//!
//! The rule is applied per user, identically by every walk. A type id outside the known four is
//! never counted unless the operator lists it; the run reports how many users carry it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The user types the public record names: (id, display name, accepted spellings).
pub const KNOWN_TYPES: [(u64, &str, &[&str]); 4] = [
    (1, "User", &["user"]),
    (2, "Alias", &["alias"]),
    (3, "Mailing List", &["mailing_list", "mailing list", "mailinglist", "list"]),
    (11, "Unlicensed User", &["unlicensed_user", "unlicensed user", "unlicensed"]),
];

/// The type id of a user of type User.
pub const USER: u64 = 1;

/// The display name of a known type id ("User", "Mailing List", ...).
pub fn type_name(id: u64) -> Option<&'static str> {
    KNOWN_TYPES.iter().find(|t| t.0 == id).map(|t| t.1)
}

/// The id of a known type from any accepted spelling (case, `_` or space insensitive).
pub fn type_id(name: &str) -> Option<u64> {
    let key = name.trim().to_ascii_lowercase().replace(['-', '_'], " ");
    let key = key.split_whitespace().collect::<Vec<_>>().join(" ");
    KNOWN_TYPES
        .iter()
        .find(|(_, display, spellings)| {
            display.eq_ignore_ascii_case(&key)
                || spellings.iter().any(|s| s.replace('_', " ") == key)
        })
        .map(|t| t.0)
}

/// Whether a type id is one the public record names.
pub fn is_known(id: u64) -> bool {
    type_name(id).is_some()
}

/// A `count_user_types` entry that names no user type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a Mailprotector user type; use \"user\", \"alias\", \"mailing_list\", \
     \"unlicensed_user\" or a type id such as 11"
)]
pub struct UnknownUserType(pub String);

/// The set of user type ids that are counted. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CountedTypes(BTreeSet<u64>);

impl Default for CountedTypes {
    /// Users of type User only.
    fn default() -> Self {
        CountedTypes(BTreeSet::from([USER]))
    }
}

impl CountedTypes {
    /// A set from ids; `None` when empty.
    pub fn new(ids: impl IntoIterator<Item = u64>) -> Option<CountedTypes> {
        let set: BTreeSet<u64> = ids.into_iter().collect();
        (!set.is_empty()).then_some(CountedTypes(set))
    }

    /// Parses one entry of `count_user_types`: a known name or any type id.
    pub fn parse_entry(entry: &str) -> Result<u64, UnknownUserType> {
        let t = entry.trim();
        if let Ok(id) = t.parse::<u64>() {
            return Ok(id);
        }
        type_id(t).ok_or_else(|| UnknownUserType(entry.to_owned()))
    }

    /// Whether users of type `id` are counted.
    pub fn counts(&self, id: u64) -> bool {
        self.0.contains(&id)
    }

    /// The ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.0.iter().copied().collect()
    }

    /// Config spellings: known types by name (`user`, `mailing_list`), others by id.
    pub fn config_names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|id| match KNOWN_TYPES.iter().find(|t| t.0 == *id) {
                Some((_, _, spellings)) => spellings[0].to_owned(),
                None => id.to_string(),
            })
            .collect()
    }
}

impl fmt::Display for CountedTypes {
    /// "User (1)", "User (1), Mailing List (3)", "type 7".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|id| match type_name(*id) {
                Some(n) => format!("{n} ({id})"),
                None => format!("type {id}"),
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_of_the_known_types() {
        assert_eq!(type_id("user"), Some(1));
        assert_eq!(type_id("User"), Some(1));
        assert_eq!(type_id("Alias"), Some(2));
        assert_eq!(type_id("Mailing List"), Some(3));
        assert_eq!(type_id("mailing_list"), Some(3));
        assert_eq!(type_id("mailing-list"), Some(3));
        assert_eq!(type_id("Unlicensed User"), Some(11));
        assert_eq!(type_id("unlicensed_user"), Some(11));
        assert_eq!(type_id("shared mailbox"), None);
        assert_eq!(type_name(11), Some("Unlicensed User"));
        assert!(is_known(3) && !is_known(7));
    }

    #[test]
    fn entries_are_names_or_ids() {
        assert_eq!(CountedTypes::parse_entry("user"), Ok(1));
        assert_eq!(CountedTypes::parse_entry(" 7 "), Ok(7));
        let err = CountedTypes::parse_entry("users").unwrap_err().to_string();
        assert!(err.contains("\"users\" is not a Mailprotector user type"), "{err}");
        assert!(err.contains("mailing_list"), "{err}");
    }

    #[test]
    fn the_default_counts_users_only() {
        let d = CountedTypes::default();
        assert!(d.counts(1) && !d.counts(2) && !d.counts(3) && !d.counts(11));
        assert_eq!(d.to_string(), "User (1)");
        assert_eq!(d.config_names(), vec!["user"]);
        let wide = CountedTypes::new([11, 1, 7]).unwrap();
        assert_eq!(wide.to_string(), "User (1), type 7, Unlicensed User (11)");
        assert_eq!(wide.config_names(), vec!["user", "7", "unlicensed_user"]);
        assert!(CountedTypes::new([]).is_none());
    }
}
