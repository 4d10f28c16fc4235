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

    /// A description of what is still running, e.g. "http server, sync engine and 2 other
    /// task(s) (sync runs)".
    pub fn describe_running(&self) -> String {
        let names: Vec<&str> =
            self.running.lock().unwrap_or_else(|p| p.into_inner()).values().copied().collect();
        let others = self.tracker.len().saturating_sub(names.len());
        let mut parts = names.join(", ");
        if others > 0 {
            if !parts.is_empty() {
                parts.push_str(" and ");
            }
            parts.push_str(&format!("{others} other task(s) (sync runs)"));
        }
        if parts.is_empty() { "nothing".to_owned() } else { parts }
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
        assert_eq!(tasks.describe_running(), "http server and 1 other task(s) (sync runs)");
        stuck.cancel();
        tasks.tracker().wait().await;
        assert_eq!(tasks.describe_running(), "nothing");
    }
}
