//! The redb store: one file `<state_dir>/mpsync.redb` holding runs, usage and billed
//! snapshots, count history and caches, behind a cheap-to-clone async [`Store`].
//!
//! Opening is blocking (call it from `spawn_blocking`); every other method is `async` and runs
//! its redb work on the blocking pool, never holding a transaction across an `.await`.

mod backup;
mod billing;
mod cache;
mod error;
mod events;
mod history;
mod plans;
mod prune;
mod reconciliation;
mod runs;
mod snapshots;
mod tables;
mod unrecorded;
mod writeback;

use std::collections::BTreeMap;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTableMetadata, StorageBackend, TableHandle};

use crate::model::RunId;

pub use backup::BackupReport;
pub use error::StoreError;
pub use history::{HistoryPoint, Rename};
pub use plans::PlanSaved;
pub use prune::PruneStats;
pub use reconciliation::{BadCursor, Cursor, RowPage};
pub use tables::SCHEMA_VERSION;
pub use unrecorded::FILE_NAME as UNRECORDED_FILE_NAME;

/// Every schema upgrade step, keyed by the version it starts from (see
/// [`tables::Migration`]); all run at open in the one transaction that opens the store.
const MIGRATIONS: &[tables::Migration] = &[tables::Migration {
    from: 1,
    what: "the latest reconciliation moves from one value (reconciliation_v1) to a row per \
           key (reconciliation_rows_v2, reconciliation_evidence_v2, reconciliation_meta_v2)",
    run: reconciliation::migrate_step,
}];

/// The file name of the database inside the state directory.
pub const FILE_NAME: &str = "mpsync.redb";

/// A handle on the open store. Clones share one database; the file stays locked until the
/// last clone is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

/// redb's page cache. Its default (1 GiB) lets a daemon that rewrites a large reconciliation
/// grow past a gigabyte of RSS; the kernel's page cache already holds the file, so a small
/// cache costs little. 4 MiB (it was 16): at 10,000 customers the cache is a quarter of the
/// heap the daemon may use, and a page of 500 rows still reads in a few milliseconds.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug)]
struct Inner {
    db: Database,
    path: PathBuf,
    /// The head of the latest reconciliation as last saved or read: this process is the
    /// file's only user (the lock guarantees it), so health and every page skip decoding it.
    reconciliation_head: std::sync::Mutex<Option<Arc<crate::reconcile::ReconciliationHead>>>,
    /// The file's permission bits before this open restricted them to 0600, if it did.
    tightened_from: Option<u32>,
    /// The first I/O error this handle met, in words: after it redb refuses every write
    /// ([`StoreError::WritesStopped`]), so it is the reason a run's end cannot be recorded.
    first_io_error: std::sync::OnceLock<String>,
    /// The last event id committed, for [`Store::subscribe_events`].
    events: tokio::sync::watch::Sender<crate::events::EventId>,
}

impl Store {
    /// Opens (creating if missing) the store in `state_dir`, which is created with mode 0700.
    /// The file is created with mode 0600 whatever the umask; an existing file that group or
    /// others may read or write (one created by an older mpsync under a 022 umask) is
    /// tightened to 0600, and a warning says so. A file mpsync may not tighten (owned by
    /// another user) is refused. BLOCKING: call from `spawn_blocking` or before the runtime
    /// starts.
    ///
    /// Fails with [`StoreError::Locked`] when another process (or another handle in this one)
    /// has the file open, and with [`StoreError::NewerSchema`] for a file from a newer mpsync.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        DirBuilder::new().recursive(true).mode(0o700).create(state_dir).map_err(|source| {
            StoreError::Io {
                action: "create the state directory",
                path: state_dir.to_path_buf(),
                source,
            }
        })?;
        let path = state_dir.join(FILE_NAME);
        // Open the file ourselves first so a permission problem names the file clearly.
        // The mode only ever loses bits to the umask, so a new file is 0600 or tighter.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::Io {
                action: "open the store file",
                path: path.clone(),
                source,
            })?;
        let tightened_from = restrict_to_owner(&file, &path)?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::db("open the store", path.clone(), e))?;
        // Best effort, like the record itself: without it a lost run end reads as a crash.
        let _ = unrecorded::reserve(&unrecorded::path_for(&path));
        Store::init(db, path, tightened_from)
    }

    /// Opens a store on a custom redb storage backend (used by fault-injection tests);
    /// `path` only names the store in messages. BLOCKING.
    #[doc(hidden)]
    pub fn open_with_backend(
        path: &Path,
        backend: impl StorageBackend,
    ) -> Result<Store, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(backend)
            .map_err(|e| StoreError::db("open the store", path.to_path_buf(), e))?;
        Store::init(db, path.to_path_buf(), None)
    }

    fn init(db: Database, path: PathBuf, tightened_from: Option<u32>) -> Result<Store, StoreError> {
        let txn = begin_write(&db, &path)?;
        tables::init_schema(&txn, &path, MIGRATIONS)?;
        txn.commit().map_err(|e| StoreError::db("initialise the schema", path.clone(), e))?;
        let mut inner = Inner {
            db,
            path,
            reconciliation_head: Default::default(),
            tightened_from,
            first_io_error: Default::default(),
            events: tokio::sync::watch::Sender::new(0),
        };
        let last = events::last_id(&inner, &inner.read()?)?;
        inner.events = tokio::sync::watch::Sender::new(last);
        Ok(Store { inner: Arc::new(inner) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// When opening found the file readable or writable by group or others and restricted
    /// it to 0600: what to tell the operator (the log already says it where there is one).
    pub fn tightened(&self) -> Option<String> {
        self.inner.tightened_from.map(|mode| tightened_note(&self.inner.path, mode))
    }

    /// Rows per table, by table name (for tests and diagnostics).
    #[doc(hidden)]
    pub async fn row_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let stats = self.table_stats().await?;
        Ok(stats.into_iter().map(|(name, s)| (name, s.rows)).collect())
    }

    /// Rows, payload bytes and pages per table, by table name (for tests and diagnostics).
    #[doc(hidden)]
    pub async fn table_stats(&self) -> Result<BTreeMap<String, TableStat>, StoreError> {
        self.blocking("measure tables", |inner| {
            let txn = inner.read()?;
            let mut out = BTreeMap::new();
            for handle in txn.list_tables().map_err(inner.err("list tables"))? {
                let name = handle.name().to_string();
                let table = txn.open_untyped_table(handle).map_err(inner.err("open a table"))?;
                let stats = table.stats().map_err(inner.err("measure a table"))?;
                let stat = TableStat {
                    rows: table.len().map_err(inner.err("count rows"))?,
                    stored_bytes: stats.stored_bytes(),
                    pages: stats.leaf_pages() + stats.branch_pages(),
                };
                out.insert(name, stat);
            }
            Ok(out)
        })
        .await
    }

    /// Runs `f` on the blocking pool with the database.
    async fn blocking<T, F>(&self, action: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|source| StoreError::Task { action, source })?
    }

    /// [`Store::blocking`] for a write that ends run `id`. When the store cannot be written
    /// (disk full, a file-size limit), the run stays `running` in it; its reason then goes to
    /// the side record (see `unrecorded`) so the next start records it instead of "crash".
    async fn blocking_run_end<T, F>(
        &self,
        id: RunId,
        action: &'static str,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(action, move |inner| {
            let result = f(inner);
            if let Err(e @ (StoreError::Io { .. } | StoreError::WritesStopped { .. })) = &result {
                let reason = inner.unwritable(e);
                if let Err(note) = unrecorded::add(&unrecorded::path_for(&inner.path), id, &reason)
                {
                    tracing::warn!(
                        run = id,
                        "cannot keep why run {id} could not be recorded ({note}); the next start \
                         will call it an interrupted run"
                    );
                }
            }
            result
        })
        .await
    }
}

impl Inner {
    /// A short read transaction.
    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db.begin_read().map_err(|e| StoreError::db("begin a read", self.path.clone(), e))
    }

    /// A write transaction with quick repair on.
    fn write(&self) -> Result<redb::WriteTransaction, StoreError> {
        begin_write(&self.db, &self.path).map_err(|e| self.seen(e))
    }

    /// Maps a redb error of `action` to a [`StoreError`] naming this store.
    fn err<E: Into<redb::Error>>(&self, action: &'static str) -> impl FnOnce(E) -> StoreError + '_ {
        move |e| self.seen(StoreError::db(action, self.path.clone(), e))
    }

    /// Remembers the first I/O error (the cause of every later [`StoreError::WritesStopped`]).
    fn seen(&self, e: StoreError) -> StoreError {
        if let StoreError::Io { action, source, .. } = &e {
            let _ = self.first_io_error.set(format!(
                "{source} ({}); writes stopped at: {action} in {}",
                error::space_hint(source),
                self.path.display()
            ));
        }
        e
    }

    /// Why a run's end could not be written, for its record: the store's first I/O error
    /// (else `e`) and what it means for the run.
    fn unwritable(&self, e: &StoreError) -> String {
        let cause = match (self.first_io_error.get(), e) {
            (Some(first), _) => first.clone(),
            (None, StoreError::Io { action, source, .. }) => format!(
                "{source} ({}); writes stopped at: {action} in {}",
                error::space_hint(source),
                self.path.display()
            ),
            (None, other) => format!("{other} (disk full or a file-size limit, or a disk error)"),
        };
        format!(
            "the store could not be written: {cause}. The end of this run was not recorded and \
             nothing it collected was stored"
        )
    }
}

/// The store holds upstream answers and names: only its owner may read it. Tightens a file
/// group or others may read or write to 0600 (the daemon owns its state directory, and
/// refusing would stop every install made before files were created 0600), logging the
/// change; fails when the mode cannot be changed.
fn restrict_to_owner(file: &std::fs::File, path: &Path) -> Result<Option<u32>, StoreError> {
    let meta = file.metadata().map_err(|source| StoreError::Io {
        action: "read the mode of the store file",
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    file.set_permissions(Permissions::from_mode(0o600)).map_err(|source| StoreError::Exposed {
        path: path.to_path_buf(),
        mode,
        source,
    })?;
    tracing::warn!("{}", tightened_note(path, mode));
    Ok(Some(mode))
}

fn tightened_note(path: &Path, mode: u32) -> String {
    format!(
        "the store file {} was readable or writable by group or others (mode {mode:o}); its \
         mode is now 600 (owner only)",
        path.display()
    )
}

/// Every write uses quick repair: commits cost a little more (two-phase), but reopening after
/// a kill -9 or power cut is almost instant instead of a walk over the whole file (B2-4).
fn begin_write(db: &Database, path: &Path) -> Result<redb::WriteTransaction, StoreError> {
    let mut txn =
        db.begin_write().map_err(|e| StoreError::db("begin a write", path.to_path_buf(), e))?;
    txn.set_quick_repair(true);
    Ok(txn)
}

/// Size of one table, from [`Store::table_stats`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStat {
    /// Number of rows.
    pub rows: u64,
    /// Bytes of keys and values stored.
    pub stored_bytes: u64,
    /// B-tree pages (leaf and branch) the table occupies.
    pub pages: u64,
}

/// Table names this build creates, in a stable order.
#[doc(hidden)]
pub fn table_names() -> &'static [&'static str] {
    &tables::ALL_TABLE_NAMES
}
