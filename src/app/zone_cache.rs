//! The Autotask zone kept in the store's metadata, so a restarted daemon does not look it up
//! again (the billing source knows nothing of the store; this is the one place that ties the
//! two). A failure to read or keep it is logged: it only costs one lookup.

use futures_util::future::BoxFuture;

use crate::billing::autotask::{CachedZone, ZONE_KEY, ZoneCache};
use crate::store::Store;

/// [`ZoneCache`] in the store's metadata under [`ZONE_KEY`].
pub(crate) struct StoreZones(pub(crate) Store);

impl ZoneCache for StoreZones {
    fn load(&self) -> BoxFuture<'_, Option<CachedZone>> {
        Box::pin(async move {
            match self.0.get_meta::<CachedZone>(ZONE_KEY).await {
                Ok(z) => z,
                Err(e) => {
                    tracing::warn!(
                        "cannot read the kept Autotask zone (it is looked up again): {e}"
                    );
                    None
                }
            }
        })
    }

    fn save(&self, zone: CachedZone) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.0.put_meta(ZONE_KEY, &zone).await {
                tracing::warn!("cannot keep the Autotask zone (the next start looks it up): {e}");
            }
        })
    }
}
