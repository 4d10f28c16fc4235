//! The rule every paged listing (Mailprotector, ConnectWise) applies to its pages: an item
//! already seen (by id) is dropped, and a later page made only of items already seen means the
//! server ignores the page parameter — the walk stops with an error instead of looping.

use std::collections::BTreeMap;

use super::error::Malformed;

/// A listed resource with an integer id (for de-duplication across pages).
pub trait HasId {
    /// The id.
    fn id(&self) -> u64;
}

/// The ids one listing walk has seen so far, in blocks of 65,536 consecutive ids: a block
/// holds its ids as a sorted list while few, and as a bitmap (8 KiB) from [`DENSE_AT`] on. A
/// listing of half a million users (ids mostly dense) costs well under a megabyte, where a hash
/// set of them took 9 MiB.
#[derive(Debug, Default)]
pub struct SeenIds(BTreeMap<u64, Block>);

/// Ids in a sparse block at which it turns into a bitmap (the sizes are then equal).
const DENSE_AT: usize = 4096;

/// The seen ids of one block of 65,536 (their low 16 bits).
#[derive(Debug)]
enum Block {
    Sparse(Vec<u16>),
    Dense(Box<[u64; 1024]>),
}

impl Block {
    /// Adds `low`; false if it was there.
    fn insert(&mut self, low: u16) -> bool {
        match self {
            Block::Sparse(ids) => {
                let Err(at) = ids.binary_search(&low) else { return false };
                ids.insert(at, low);
                if ids.len() >= DENSE_AT {
                    let mut bits = Box::new([0u64; 1024]);
                    for &id in ids.iter() {
                        bits[usize::from(id >> 6)] |= 1 << (id & 63);
                    }
                    *self = Block::Dense(bits);
                }
                true
            }
            Block::Dense(bits) => {
                let (word, bit) = (usize::from(low >> 6), 1u64 << (low & 63));
                let fresh = bits[word] & bit == 0;
                bits[word] |= bit;
                fresh
            }
        }
    }
}

impl SeenIds {
    /// A walk before its first page.
    pub fn new() -> SeenIds {
        SeenIds::default()
    }

    /// Adds `id`; false if it was seen before.
    fn insert(&mut self, id: u64) -> bool {
        let block = self.0.entry(id >> 16).or_insert_with(|| Block::Sparse(Vec::new()));
        block.insert((id & 0xffff) as u16)
    }

    /// The items of page `page` (1-based) not seen before, in their order. Refuses, saying
    /// why, a page after the first that has items but none new.
    pub fn fresh<T: HasId>(&mut self, page: u64, items: Vec<T>) -> Result<Vec<T>, Malformed> {
        let had = items.len();
        let fresh: Vec<T> = items.into_iter().filter(|i| self.insert(i.id())).collect();
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

    #[test]
    fn ids_are_told_apart_across_blocks_and_when_a_block_turns_dense() {
        let mut seen = SeenIds::new();
        // Dense ids (past DENSE_AT in one block), ids in far-apart blocks, and the extremes.
        let ids: Vec<u64> = (0..10_000u64)
            .map(|i| i * 3)
            .chain([u64::MAX, 1 << 40, (1 << 40) + 65_536, 65_535, 65_536])
            .collect();
        for &id in &ids {
            assert!(seen.insert(id), "{id} is new");
        }
        for &id in &ids {
            assert!(!seen.insert(id), "{id} was seen");
        }
        for id in [1u64, 2, 29_998 + 2, u64::MAX - 1, (1 << 40) + 1, 65_537] {
            assert!(seen.insert(id), "{id} was never added");
        }
    }
}
