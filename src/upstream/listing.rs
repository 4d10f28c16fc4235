//! The rule every paged listing (Mailprotector, ConnectWise) applies to its pages: an item
//! already seen (by id) is dropped, and a later page made only of items already seen means the
//! server ignores the page parameter — the walk stops with an error instead of looping.

use std::collections::HashSet;

use super::error::Malformed;

/// A listed resource with an integer id (for de-duplication across pages).
pub trait HasId {
    /// The id.
    fn id(&self) -> u64;
}

/// The ids one listing walk has seen so far.
#[derive(Debug, Default)]
pub struct SeenIds(HashSet<u64>);

impl SeenIds {
    /// A walk before its first page.
    pub fn new() -> SeenIds {
        SeenIds::default()
    }

    /// The items of page `page` (1-based) not seen before, in their order. Refuses, saying
    /// why, a page after the first that has items but none new.
    pub fn fresh<T: HasId>(&mut self, page: u64, items: Vec<T>) -> Result<Vec<T>, Malformed> {
        let had = items.len();
        let fresh: Vec<T> = items.into_iter().filter(|i| self.0.insert(i.id())).collect();
        if had > 0 && fresh.is_empty() && page > 1 {
            return Err(Malformed(format!(
                "page {page} repeats items of earlier pages; the server seems to ignore the page \
                 parameter"
            )));
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Item(u64);
    impl HasId for Item {
        fn id(&self) -> u64 {
            self.0
        }
    }

    fn ids(items: &[Item]) -> Vec<u64> {
        items.iter().map(|i| i.0).collect()
    }

    #[test]
    fn repeats_are_dropped_and_a_page_of_only_repeats_is_refused() {
        let mut seen = SeenIds::new();
        let first = seen.fresh(1, vec![Item(1), Item(2), Item(2), Item(3)]).unwrap();
        assert_eq!(ids(&first), [1, 2, 3], "a repeat within a page is dropped too");
        let second = seen.fresh(2, vec![Item(3), Item(4)]).unwrap();
        assert_eq!(ids(&second), [4], "an overlap between pages is dropped");
        let err = seen.fresh(3, vec![Item(1), Item(4)]).unwrap_err();
        assert!(
            err.0.contains("page 3 repeats items") && err.0.contains("page parameter"),
            "{err}"
        );
        assert!(
            seen.fresh(4, Vec::<Item>::new()).unwrap().is_empty(),
            "an empty page is no repeat"
        );
    }
}
