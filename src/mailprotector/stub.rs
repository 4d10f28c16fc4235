//! For the unit tests: an axum app served on 127.0.0.1:0 as a Mailprotector stub, and the
//! client config pointing at it.

use std::time::Duration;

use crate::config::{CountedTypes, MailprotectorConfig, Schedule, Secret, UpstreamLimits};

/// A running stub; dropping it stops the server.
pub(super) struct Served {
    /// The config pointing at it (reseller 188, generous limits).
    pub(super) config: MailprotectorConfig,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` on 127.0.0.1:0; the config carries `key`, `max_in_flight` and `types`.
pub(super) async fn serve(
    app: axum::Router,
    key: &str,
    max_in_flight: usize,
    types: CountedTypes,
) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = MailprotectorConfig {
        base_url: format!("http://{addr}/").parse().unwrap(),
        api_key: Secret::new(key, "test"),
        reseller_id: 188,
        schedule: Schedule::parse("0 0 0 1 1 *").unwrap(),
        limits: UpstreamLimits {
            rate_limit: 1000.0,
            burst: 50,
            max_in_flight,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        },
        services_refresh: Duration::from_secs(3600),
        count_each_product: true,
        count_user_types: types,
        counts: Vec::new(),
    };
    Served { config, task }
}
