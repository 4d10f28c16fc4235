//! Every secret the config holds, with the derived forms each client sends (Bearer header,
//! Basic pair, Gradient token), as one [`Scrubber`] for the sinks that see text from
//! anywhere: the log cuts them out of every line.
//!
//! The clients already cut their own secrets out of everything they hand on; this is the
//! second net, for text that did not come through a client (a panic message, a library's
//! error) and for a future code path that forgets.

use crate::billing::connectwise::ConnectwiseClient;
use crate::config::{BillingSource, Config, Secret};
use crate::gradient::GradientClient;
use crate::mailprotector::MailprotectorClient;
use crate::upstream::Scrubber;

/// The configured secrets of every upstream, as each client derives them.
pub fn secret_scrubber(config: &Config) -> Scrubber {
    let mut secrets: Vec<Secret> =
        MailprotectorClient::credentials(&config.mailprotector).secrets().cloned().collect();
    if let BillingSource::Connectwise(cw) = &config.billing.source {
        secrets.extend(ConnectwiseClient::credentials(cw).secrets().cloned());
    }
    let g = &config.gradient;
    match (&g.vendor_key, &g.partner_key) {
        (Some(vendor), Some(partner)) => {
            secrets.extend(GradientClient::credentials(vendor, partner).secrets().cloned());
        }
        // Only one key: no token can be built, but the key is still a secret.
        (vendor, partner) => secrets.extend(vendor.iter().chain(partner).cloned()),
    }
    Scrubber::new(secrets.iter().map(Secret::expose))
}
