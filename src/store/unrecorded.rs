//! The side record of runs whose end the store could not write.
//!
//! When the disk is full (or a file-size limit is reached) redb refuses the commit that ends
//! a run, and every write after it, so the run stays `running` in the store and the next start
//! would call it a crash. The daemon is alive and knows better, so it writes the reason into
//! a small file next to the store, `mpsync-unrecorded-runs.json`; the next start's
//! [`abort_leftover_runs`](super::Store::abort_leftover_runs) records the aborted run with
//! that reason and empties the file.
//!
//! The file has a fixed size, reserved (really written, not sparse) when the store opens and
//! then only overwritten in place: on a full disk a new file or a longer one could not be
//! written, but blocks a file already owns can (on ext4 and xfs; copy-on-write filesystems
//! may still refuse, and then the next start says "crash" as before). It is also far below
//! any sane file-size limit. JSON padded with spaces; a torn or foreign file is ignored.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::model::RunId;

/// The file name, next to the store file.
pub const FILE_NAME: &str = "mpsync-unrecorded-runs.json";

/// The file's fixed size in bytes.
const SIZE: usize = 2048;

/// Reasons are cut to this many bytes as JSON, so that [`MAX_RUNS`] of them always fit.
const MAX_REASON: usize = 600;

/// At most this many runs are kept (the newest): only runs under way when the store stopped
/// taking writes end up here, one per job.
const MAX_RUNS: usize = 3;

/// The side record's path for the store file `store`.
pub(crate) fn path_for(store: &Path) -> PathBuf {
    store.with_file_name(FILE_NAME)
}

/// Makes sure the file exists at its full size with its blocks allocated, keeping what it
/// holds. Best effort: the record is a fallback.
pub(crate) fn reserve(path: &Path) -> std::io::Result<()> {
    let mut file = open(path)?;
    if file.metadata()?.len() >= SIZE as u64 {
        return Ok(());
    }
    let held = read_from(&mut file);
    write_to(&file, &held)
}

/// Adds (or replaces) the reason for run `id`.
pub(crate) fn add(path: &Path, id: RunId, reason: &str) -> std::io::Result<()> {
    let mut file = open(path)?;
    let mut runs = read_from(&mut file);
    runs.insert(id, cut(reason));
    while runs.len() > MAX_RUNS {
        runs.pop_first();
    }
    write_to(&file, &runs)
}

/// `reason`, cut (ending in `…`) so that it takes at most [`MAX_REASON`] bytes as JSON.
fn cut(reason: &str) -> String {
    // What a character costs inside a JSON string (control characters at worst `\u00XX`).
    let cost = |c: char| match c {
        '"' | '\\' => 2,
        c if c.is_control() => 6,
        c => c.len_utf8(),
    };
    if reason.chars().map(cost).sum::<usize>() <= MAX_REASON {
        return reason.to_owned();
    }
    let mut used = '…'.len_utf8();
    let kept = reason.chars().take_while(|c| {
        used += cost(*c);
        used <= MAX_REASON
    });
    kept.chain(std::iter::once('…')).collect()
}

/// Every run with its reason; empty when the file is missing, empty or unreadable.
pub(crate) fn read(path: &Path) -> BTreeMap<RunId, String> {
    match File::open(path) {
        Ok(mut f) => read_from(&mut f),
        Err(_) => BTreeMap::new(),
    }
}

/// Forgets every run (the file keeps its size).
pub(crate) fn clear(path: &Path) -> std::io::Result<()> {
    write_to(&open(path)?, &BTreeMap::new())
}

/// Opens (creating with mode 0600, like the store) the side record.
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
}

fn read_from(file: &mut File) -> BTreeMap<RunId, String> {
    let mut text = Vec::new();
    if file.read_to_end(&mut text).is_err() {
        return BTreeMap::new();
    }
    // Only spaces (an empty record) or a torn write: nothing to go by.
    serde_json::from_slice(&text).unwrap_or_default()
}

/// Overwrites the file in place with `runs`, padded to [`SIZE`], and syncs it.
fn write_to(file: &File, runs: &BTreeMap<RunId, String>) -> std::io::Result<()> {
    // MAX_RUNS reasons of at most MAX_REASON bytes each, plus ids and punctuation, fit.
    let mut bytes = serde_json::to_vec(runs).map_err(std::io::Error::other)?;
    if bytes.len() > SIZE {
        return Err(std::io::Error::other("the record outgrew its reserved size"));
    }
    bytes.resize(SIZE, b' ');
    file.write_all_at(&bytes, 0)?;
    if file.metadata()?.len() > SIZE as u64 {
        file.set_len(SIZE as u64)?;
    }
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_the_file_keeps_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("mpsync.redb"));
        assert!(read(&path).is_empty(), "no file, no runs");
        reserve(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE as u64);
        assert!(read(&path).is_empty());
        add(&path, 7, "the store could not be written: File too large").unwrap();
        add(&path, 8, &"x".repeat(5000)).unwrap();
        let runs = read(&path);
        assert_eq!(runs[&7], "the store could not be written: File too large");
        assert_eq!(runs[&8], format!("{}…", "x".repeat(MAX_REASON - 3)));
        for id in 9..20 {
            add(&path, id, &"x".repeat(1000)).unwrap();
        }
        let runs = read(&path);
        assert_eq!(runs.keys().copied().collect::<Vec<_>>(), [17, 18, 19], "the newest stay");
        // Wide characters and escapes take more room: they are cut by their JSON size.
        add(&path, 20, &"😀".repeat(1000)).unwrap();
        add(&path, 21, &"\u{1}\"".repeat(1000)).unwrap();
        let runs = read(&path);
        assert_eq!(runs.keys().copied().collect::<Vec<_>>(), [19, 20, 21]);
        assert_eq!(runs[&20].chars().count(), (MAX_REASON - 3) / 4 + 1);
        assert!(serde_json::to_string(&runs[&21]).unwrap().len() <= MAX_REASON + 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE as u64);
        let before = read(&path);
        reserve(&path).unwrap();
        assert_eq!(read(&path), before, "reserving keeps what the file holds");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE as u64);
        clear(&path).unwrap();
        assert!(read(&path).is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE as u64);
    }

    #[test]
    fn a_torn_or_foreign_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "{\"7\": \"the store could").unwrap();
        assert!(read(&path).is_empty());
        add(&path, 9, "why").unwrap();
        assert_eq!(read(&path).into_iter().collect::<Vec<_>>(), [(9, "why".to_owned())]);
    }
}
