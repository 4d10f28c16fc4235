//! `mpsync backup PATH`: a consistent copy of the store, taken while the daemon runs or not.
//! With the store free, the command copies it itself (see `store/backup.rs`); while a daemon
//! holds it, the daemon copies it through the control socket into its state directory (the
//! one place the service may write) and the command moves that copy to PATH. PATH is never
//! replaced. Restoring: stop the daemon, put the file in place of `mpsync.redb`, start it.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{BackupError, CommandError, Globals, load_with_state_dir, open_store};
use crate::cli::BackupArgs;
use crate::control::{self, ControlError, Reply, Request};
use crate::exit::Exit;
use crate::store::{BackupReport, FILE_NAME, StoreError};

/// Backs the store up to `args.path`.
pub async fn run(g: &Globals, args: BackupArgs) -> Result<(), CommandError> {
    // With --state-dir the config is not needed (nor its secrets).
    let dir = match args.state_dir {
        Some(dir) => dir,
        None => load_with_state_dir(g, None)?.daemon.state_dir,
    };
    let dest = args.path;
    if dest.symlink_metadata().is_ok() {
        return Err(StoreError::BackupExists { path: dest }.into());
    }
    if !dir.join(FILE_NAME).exists() {
        return Err(BackupError::NoStore(dir.join(FILE_NAME)).into());
    }
    let (report, how) = match open_store(dir.clone()).await {
        Ok(store) => (store.backup_to(dest.clone()).await?, "the store (no daemon running)"),
        Err(CommandError::Store(StoreError::Locked { .. })) => {
            (through_daemon(&dir, &dest).await?, "the running daemon")
        }
        Err(e) => return Err(e),
    };
    println!(
        "backed up {} to {} through {how}: {} runs (the newest {}), {} bytes",
        dir.join(FILE_NAME).display(),
        dest.display(),
        report.runs,
        report.last_run.map(|r| r.to_string()).unwrap_or_else(|| "none".into()),
        report.bytes,
    );
    println!(
        "restore: stop mpsync, copy it over {} (keeping that file's owner), start mpsync",
        dir.join(FILE_NAME).display()
    );
    Ok(())
}

/// Asks the daemon for a copy and moves it to `dest`; the daemon's copy is removed either way.
async fn through_daemon(dir: &Path, dest: &Path) -> Result<BackupReport, CommandError> {
    let path = control::socket_path(dir);
    let (file, report) = match control::request(&path, &Request::Backup {}, |_| {}).await? {
        Reply::Backup { file, report } => (file, report),
        Reply::Error { message, exit } => {
            return Err(CommandError::Remote { message, exit: Exit::from_code(exit) });
        }
        other => {
            let reason = format!("expected a backup, got {other:?}");
            return Err(ControlError::Malformed { path, reason }.into());
        }
    };
    // A name with a directory in it is not one the daemon makes: never touch such a path.
    if Path::new(&file).file_name() != Some(std::ffi::OsStr::new(&file)) {
        let reason = format!("the backup file name {file:?} is not a plain file name");
        return Err(ControlError::Malformed { path, reason }.into());
    }
    let copy = dir.join(&file);
    let moved = move_out(&copy, dest);
    let _ = std::fs::remove_file(&copy);
    moved.map_err(|source| BackupError::Write { path: dest.to_path_buf(), source })?;
    Ok(report)
}

/// Copies `from` to `to` (a new file, mode 0600) and syncs it; removes `to` on failure.
fn move_out(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = std::fs::File::open(from)?;
    let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(to)?;
    let done = io::copy(&mut src, &mut out).and_then(|_| out.sync_all());
    if done.is_err() {
        let _ = std::fs::remove_file(to);
    }
    done
}
