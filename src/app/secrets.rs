//! Every secret the config holds, with the derived forms each client sends (Bearer header,
//! Basic pair, Gradient token) and the HTTP access token with its session cookie value, as one
//! [`Scrubber`] for the sinks that see text from
//! anywhere: the log cuts them out of every line.
//!
//! The clients already cut their own secrets out of everything they hand on; this is the
//! second net, for text that did not come through a client (a panic message, a library's
//! error) and for a future code path that forgets. Like data bodies, it leaves out values
//! shorter than [`MIN_BODY_SECRET_LEN`]: a short `clientId` such as `mpsync` (an identifier,
//! not a secret, but sent beside the keys) would otherwise cut a word out of every line.

use crate::billing::autotask::AutotaskClient;
use crate::billing::connectwise::ConnectwiseClient;
use crate::billing::halopsa::HaloClient;
use crate::config::{BillingSource, Config, Secret};
use crate::gradient::GradientClient;
use crate::mailprotector::MailprotectorClient;
use crate::upstream::{MIN_BODY_SECRET_LEN, Scrubber};

/// The configured secrets of every upstream, as each client derives them.
pub fn secret_scrubber(config: &Config) -> Scrubber {
    let mut secrets: Vec<Secret> =
        MailprotectorClient::credentials(&config.mailprotector).secrets().cloned().collect();
    match &config.billing.source {
        BillingSource::Connectwise(cw) => {
            secrets.extend(ConnectwiseClient::credentials(cw).secrets().cloned());
        }
        BillingSource::Autotask(at) => {
            secrets.extend(AutotaskClient::credentials(at).secrets().cloned());
        }
        BillingSource::Halopsa(h) => {
            secrets.extend(HaloClient::credentials(h).secrets().cloned());
        }
        BillingSource::None | BillingSource::Csv(_) => {}
    }
    let g = &config.gradient;
    match (&g.vendor_key, &g.partner_key) {
        (Some(vendor), Some(partner)) => {
            secrets.extend(GradientClient::credentials(vendor, partner).secrets().cloned());
        }
        // Only one key: no token can be built, but the key is still a secret.
        (vendor, partner) => secrets.extend(vendor.iter().chain(partner).cloned()),
    }
    // The HTTP access token, and the session cookie value that stands for it.
    if let Some(token) = &config.daemon.access_token {
        let session = crate::server::session_value(token.expose());
        secrets.extend([token.clone(), Secret::new(session, token.origin())]);
    }
    let mut scrubber = Scrubber::new(
        secrets.iter().map(Secret::expose).filter(|s| s.trim().len() >= MIN_BODY_SECRET_LEN),
    );
    // Notification URLs (and their tokens) and SMTP passwords.
    for channel in &config.notify {
        scrubber.extend(&crate::notify::send::scrubber(channel));
    }
    scrubber
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use base64::Engine as _;

    use super::*;
    use crate::config::{LoadOptions, load};

    #[test]
    fn every_configured_secret_and_what_the_clients_derive_from_it_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let secret = |name: &str, value: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, value).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            p.display().to_string()
        };
        let text = format!(
            "[daemon]\nallow_remote = true\naccess_token_file = \"{}\"\n\
             [mailprotector]\napi_key_file = \"{}\"\nreseller_id = 188\n\
             [billing]\nsource = \"connectwise\"\n[billing.connectwise]\n\
             base_url = \"https://cw.example\"\ncompany_id = \"acme\"\npublic_key_file = \"{}\"\n\
             private_key_file = \"{}\"\nclient_id = \"mpsync\"\n\
             [gradient]\nenabled = true\nvendor_key_file = \"{}\"\npartner_key_file = \"{}\"\n\
             [reconcile]\nmapping_file = \"{}\"\n",
            secret("access", "http-access-token-06"),
            secret("mp", "mp-key-0001"),
            secret("pub", "cw-public-02"),
            secret("priv", "cw-private-03"),
            secret("vendor", "g-vendor-004"),
            secret("partner", "g-partner-05"),
            secret("mapping.toml", ""),
        );
        let path = dir.path().join("mpsync.toml");
        std::fs::write(&path, text).unwrap();
        let opts = LoadOptions { path, env: Default::default(), overrides: Vec::new() };
        let config = load(&opts).unwrap_or_else(|e| panic!("{e:#}"));
        let s = secret_scrubber(&config);
        let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
        for shown in [
            "Bearer mp-key-0001".to_owned(),
            "cw-public-02".to_owned(),
            "CW-PRIVATE-03".to_owned(),
            b64("acme+cw-public-02:cw-private-03"),
            "g-vendor-004:g-partner-05".to_owned(),
            b64("g-vendor-004:g-partner-05"),
            b64("g-partner-05"),
            "http-access-token-06".to_owned(),
            crate::server::session_value("http-access-token-06"),
        ] {
            assert_eq!(s.scrub(&format!("[{shown}]")), "[<redacted>]", "{shown}");
        }
        // The short clientId is not cut out of every line that says "mpsync".
        assert_eq!(s.scrub("mpsync ready"), "mpsync ready");
    }
}
