//! A consistent copy of the store while it is in use (`mpsync backup`): one read transaction
//! — the last commit, as of its start; writers go on meanwhile — copied table by table into a
//! new redb file. redb has no backup facility of its own, and copying the file's bytes while
//! the daemon writes could tear; the copy is a store like any other, so restoring is putting
//! the file in place of `mpsync.redb`.
//!
//! Every table the store may hold is listed in [`copy_all`]; a table in the file that is not
//! listed fails the backup (nothing is written) rather than leaving it out silently.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use redb::{
    Key, MultimapTableHandle, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    TableError, TableHandle, Value, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::{Inner, Store, StoreError, plans, reconciliation, tables, writeback};

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    /// Rows copied, over all tables.
    pub rows: u64,
    /// Run records in the copy.
    pub runs: u64,
    /// The newest run id in the copy, if any.
    pub last_run: Option<u64>,
    /// The copy's size in bytes.
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the store to `dest`: a new file, mode 0600, created only if
    /// nothing exists there ([`StoreError::BackupExists`] otherwise). On failure the partial
    /// file is removed.
    pub async fn backup_to(&self, dest: PathBuf) -> Result<BackupReport, StoreError> {
        self.blocking("back up the store", move |inner| {
            let done = backup(inner, &dest);
            if let Err(StoreError::BackupExists { .. }) = &done {
                return done;
            }
            if done.is_err() {
                let _ = std::fs::remove_file(&dest);
            }
            done
        })
        .await
    }
}

fn backup(inner: &Inner, dest: &Path) -> Result<BackupReport, StoreError> {
    let io = |action: &'static str| {
        move |source: std::io::Error| StoreError::Io { action, path: dest.to_path_buf(), source }
    };
    let file =
        OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(dest).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    StoreError::BackupExists { path: dest.to_path_buf() }
                }
                _ => io("create the backup file")(e),
            },
        )?;
    let src = inner.read()?;
    let backend = redb::backends::FileBackend::new(file)
        .map_err(|e| StoreError::db("create the backup", dest.to_path_buf(), e))?;
    let copy = redb::Builder::new()
        .create_with_backend(backend)
        .map_err(|e| StoreError::db("create the backup", dest.to_path_buf(), e))?;
    let txn = copy
        .begin_write()
        .map_err(|e| StoreError::db("write the backup", dest.to_path_buf(), e))?;
    let rows = copy_all(&src, &txn, &inner.path, dest)?;
    txn.commit().map_err(|e| StoreError::db("commit the backup", dest.to_path_buf(), e))?;
    let (runs, last_run) = {
        let read = copy
            .begin_read()
            .map_err(|e| StoreError::db("read the backup", dest.to_path_buf(), e))?;
        let table = read
            .open_table(tables::RUNS)
            .map_err(|e| StoreError::db("read the backup", dest.to_path_buf(), e))?;
        let runs = redb::ReadableTableMetadata::len(&table)
            .map_err(|e| StoreError::db("read the backup", dest.to_path_buf(), e))?;
        let last = table
            .last()
            .map_err(|e| StoreError::db("read the backup", dest.to_path_buf(), e))?
            .map(|(k, _)| k.value());
        (runs, last)
    };
    drop(copy);
    let bytes = std::fs::metadata(dest).map_err(io("measure the backup file"))?.len();
    Ok(BackupReport { rows, runs, last_run, bytes })
}

/// Copies every known table from `src` into `dst`; fails on a table it does not know.
fn copy_all(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    path: &Path,
    dest: &Path,
) -> Result<u64, StoreError> {
    let mut c = Copier { src, dst, path, dest, names: BTreeSet::new(), rows: 0 };
    c.copy(tables::META)?;
    c.copy(tables::KV)?;
    c.copy(tables::RUNS)?;
    c.copy(tables::RUNNING)?;
    c.copy(tables::CURRENT)?;
    c.copy(tables::SNAPSHOTS)?;
    c.copy(tables::HISTORY)?;
    c.copy(tables::RENAMES)?;
    c.copy(tables::BILLED)?;
    c.copy(tables::SERVICE_CACHE)?;
    c.copy(reconciliation::ROWS)?;
    c.copy(reconciliation::EVIDENCE)?;
    c.copy(reconciliation::META)?;
    c.copy(reconciliation::OLD)?;
    c.copy(plans::PLANS)?;
    c.copy(writeback::JOURNAL)?;
    c.copy(writeback::AUDIT)?;
    c.copy(writeback::AUDIT_BY_PLAN)?;
    let err = |e| StoreError::db("list the tables", path.to_path_buf(), e);
    let mut present: Vec<String> =
        src.list_tables().map_err(err)?.map(|t| t.name().to_string()).collect();
    present.extend(src.list_multimap_tables().map_err(err)?.map(|t| t.name().to_string()));
    if let Some(table) = present.into_iter().find(|t| !c.names.contains(t)) {
        return Err(StoreError::BackupUnknownTable { path: path.to_path_buf(), table });
    }
    Ok(c.rows)
}

struct Copier<'a> {
    src: &'a ReadTransaction,
    dst: &'a WriteTransaction,
    path: &'a Path,
    dest: &'a Path,
    names: BTreeSet<String>,
    rows: u64,
}

impl Copier<'_> {
    /// Copies one table row by row; a table the store never created stays absent.
    fn copy<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        self.names.insert(def.name().to_string());
        let read = |e: redb::Error| StoreError::db("read a table to back up", self.path.into(), e);
        let write = |e: redb::Error| StoreError::db("write the backup", self.dest.into(), e);
        let from = match self.src.open_table(def) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(read(e.into())),
        };
        let mut to = self.dst.open_table(def).map_err(|e| write(e.into()))?;
        for row in from.iter().map_err(|e| read(e.into()))? {
            let (k, v) = row.map_err(|e| read(e.into()))?;
            to.insert(k.value(), v.value()).map_err(|e| write(e.into()))?;
            self.rows += 1;
        }
        Ok(())
    }
}
