//! Named long-lived tasks on the app's one [`TaskTracker`], so a shutdown that runs out of
//! grace can say what was still running.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::task::TaskTracker;

/// The tracker plus the names of the tasks spawned through [`Tasks::spawn`]. Tasks that
/// others spawn on [`Tasks::tracker`] (sync runs) are counted but unnamed.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    running: Arc<Mutex<BTreeMap<u64, &'static str>>>,
    next: Arc<AtomicU64>,
}

struct Entry {
    id: u64,
    running: Arc<Mutex<BTreeMap<u64, &'static str>>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

impl Tasks {
    /// An empty set of tasks.
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// The tracker, for components that spawn their own work (the sync engine).
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Spawns `fut` on the tracker under `name`.
    pub fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, name);
        let entry = Entry { id, running: self.running.clone() };
        self.tracker.spawn(async move {
            // Removed from the list when the task ends, panics or is dropped.
            let _entry = entry;
            fut.await;
        });
    }

    /// Runs `f` on a dedicated OS thread named `mpsync-<name>`, tracked like a task: the
    /// tracker waits for the thread to end. For work that must stay responsive when the main
    /// runtime is saturated (the HTTP server on its own runtime, as linkerd runs its admin
    /// server).
    pub fn spawn_thread<F>(&self, name: &'static str, f: F) -> std::io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, name);
        let entry = Entry { id, running: self.running.clone() };
        let token = self.tracker.token();
        let spawned = std::thread::Builder::new().name(format!("mpsync-{name}")).spawn(move || {
            let _tracked = (entry, token);
            f();
        });
        spawned.map(drop)
    }

    /// Closes the tracker and waits up to `grace` for every task to end. On timeout returns
    /// what is still running (see [`Tasks::still_running`]).
    pub async fn drain(&self, grace: std::time::Duration) -> Result<(), StillRunning> {
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.still_running()),
        }
    }

    /// What is running now: the named tasks and how many unnamed ones.
    pub fn still_running(&self) -> StillRunning {
        let names: Vec<&'static str> =
            self.running.lock().unwrap_or_else(|p| p.into_inner()).values().copied().collect();
        let others = self.tracker.len().saturating_sub(names.len());
        StillRunning { names, others }
    }
}

/// The tasks a drain left running, shown as e.g. "http server, sync engine and 2 other
/// task(s) (sync runs)", or "nothing".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillRunning {
    /// The named tasks, in the order they were spawned.
    pub names: Vec<&'static str>,
    /// Unnamed tasks (sync runs).
    pub others: usize,
}

impl std::fmt::Display for StillRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = self.names.join(", ");
        if self.others > 0 {
            if !parts.is_empty() {
                parts.push_str(" and ");
            }
            parts.push_str(&format!("{} other task(s) (sync runs)", self.others));
        }
        f.write_str(if parts.is_empty() { "nothing" } else { &parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_what_is_still_running() {
        let tasks = Tasks::new();
        let stuck = tokio_util::sync::CancellationToken::new();
        let s = stuck.clone();
        tasks.spawn("http server", async move { s.cancelled().await });
        tasks.spawn("finished", async {});
        let s = stuck.clone();
        tasks.tracker().spawn(async move { s.cancelled().await });
        tasks.tracker().close();
        while tasks.tracker().len() > 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            tasks.still_running().to_string(),
            "http server and 1 other task(s) (sync runs)"
        );
        stuck.cancel();
        tasks.tracker().wait().await;
        assert_eq!(tasks.still_running().to_string(), "nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn drain_is_bounded_by_the_grace_period_and_names_the_stragglers() {
        let tasks = Tasks::new();
        let token = tokio_util::sync::CancellationToken::new();
        let t = token.clone();
        tasks.spawn("sync engine", async move { t.cancelled().await });
        tasks.spawn("ignores shutdown", std::future::pending());
        token.cancel();
        let left = tasks.drain(std::time::Duration::from_secs(20)).await;
        assert_eq!(left, Err(StillRunning { names: vec!["ignores shutdown"], others: 0 }));
        assert_eq!(left.unwrap_err().to_string(), "ignores shutdown");

        let tasks = Tasks::new();
        let t = token.clone();
        tasks.spawn("http server", async move { t.cancelled().await });
        assert_eq!(tasks.drain(std::time::Duration::from_secs(20)).await, Ok(()));
    }

    #[tokio::test]
    async fn a_thread_is_tracked_until_it_ends() {
        let tasks = Tasks::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        tasks
            .spawn_thread("http", move || {
                let _ = rx.recv();
            })
            .unwrap();
        assert_eq!(tasks.still_running().to_string(), "http");
        assert_eq!(tasks.tracker().len(), 1);
        drop(tx);
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            tasks.drain(std::time::Duration::from_secs(30)),
        );
        assert_eq!(waited.await, Ok(Ok(())));
        assert_eq!(tasks.still_running().to_string(), "nothing");
    }
}
