//! Running the simulator on a socket: [`SimServer::start`] binds, spawns the server on the
//! current runtime inside a task tracker, and returns a [`SimHandle`] that stops it (on
//! [`SimHandle::shutdown`] or drop). Hung requests are released when it stops, so a `hang`
//! fault never keeps the server from shutting down.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::control::SimControl;
use super::dataset::Dataset;
use super::faults::{Fault, FaultKind};

/// How long shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What to simulate and where.
#[derive(Debug)]
pub struct SimOptions {
    /// Listen address (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Customers under reseller 188 when the dataset is generated.
    pub customers: u32,
    /// Generator seed (also seeds fault randomness).
    pub seed: u64,
    /// Latency added to every Mailprotector answer.
    pub latency: Duration,
    /// Extra uniform random latency (0..=jitter) on every answer, seeded.
    pub jitter: Duration,
    /// Server-side rate limit in requests per second (burst ceil(rps)); `None` = off.
    pub rate_limit: Option<f64>,
    /// Faults installed from the start.
    pub faults: Vec<Fault>,
    /// Serve this dataset instead of generating one.
    pub dataset: Option<Dataset>,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            customers: 50,
            seed: 1,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_limit: None,
            faults: Vec::new(),
            dataset: None,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimStartError {
    /// The listen address could not be bound.
    #[error("simulator: cannot listen on {addr}: {source}; pick a free address with --listen")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A fault from the options is invalid.
    #[error("simulator: invalid fault: {0}")]
    Fault(String),
}

/// Starts simulators.
#[derive(Debug)]
pub struct SimServer;

impl SimServer {
    /// Generates (or takes) the dataset, binds `opts.listen` and serves until the handle stops.
    pub async fn start(opts: SimOptions) -> Result<SimHandle, SimStartError> {
        let dataset = match opts.dataset {
            Some(d) => d,
            None => {
                let (seed, n) = (opts.seed, opts.customers);
                tokio::task::spawn_blocking(move || Dataset::generate(seed, n))
                    .await
                    .unwrap_or_else(|_| Dataset::generate(seed, n))
            }
        };
        let control = SimControl::new(dataset);
        let mut faults = opts.faults;
        if !opts.latency.is_zero() || !opts.jitter.is_zero() {
            let ms = opts.latency.as_millis() as u64;
            let jitter_ms = opts.jitter.as_millis() as u64;
            faults.insert(0, Fault::new(FaultKind::Latency { ms, jitter_ms }));
        }
        if let Some(rps) = opts.rate_limit {
            faults.insert(0, Fault::new(FaultKind::RateLimit { rps, burst: None }));
        }
        for f in faults {
            f.validate().map_err(SimStartError::Fault)?;
            control.add_fault(f);
        }
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| SimStartError::Bind { addr: opts.listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimStartError::Bind { addr: opts.listen, source })?;
        let app = super::router(control.clone());
        let token = control.gate().shutdown().clone();
        let tracker = TaskTracker::new();
        tracker.spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(token.clone().cancelled_owned());
            tokio::select! {
                r = serve => if let Err(e) = r { tracing::warn!(error = %e, "simulator server ended with an error") },
                () = async { token.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                    tracing::warn!("simulator: connections still open after the grace period; dropped");
                }
            }
        });
        tracker.close();
        Ok(SimHandle { addr, control, tracker })
    }
}

/// A running simulator. Dropping it stops the server (without waiting).
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    control: SimControl,
    tracker: TaskTracker,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — the host only; the Mailprotector client appends `/api/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The control surface (data, counters, faults).
    pub fn control(&self) -> &SimControl {
        &self.control
    }

    /// Stops the server and waits for it to finish (hung requests are released).
    pub async fn shutdown(self) {
        self.control.stop();
        self.tracker.wait().await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.control.stop();
    }
}
