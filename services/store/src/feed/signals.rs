//! This replica's feed wake-ups: per agency, a watch channel holding the latest cursor known
//! here. The store holds one [`FeedSignals`]; kept apart from the appends and reads so that the
//! store's own type does not depend on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use yrd_domain::AgencyId;

/// Per-agency wake-ups: a watch channel holding the latest cursor known on this replica.
#[derive(Debug, Default)]
pub(crate) struct FeedSignals {
    channels: Mutex<HashMap<AgencyId, watch::Sender<u64>>>,
}

impl FeedSignals {
    pub(crate) fn sender(&self, agency: &AgencyId) -> watch::Sender<u64> {
        let mut map = match self.channels.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(agency.clone())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    pub(crate) fn bump(&self, agency: &AgencyId, cursor: Option<u64>) {
        // A wake-up from another replica carries no cursor: it only wakes the watchers
        // (`send_modify` notifies even when the value stays the same).
        self.sender(agency).send_modify(|latest| {
            if let Some(c) = cursor {
                *latest = (*latest).max(c);
            }
        });
    }
}

/// The shared wake-up state, created with the store.
pub(crate) fn signals() -> Arc<FeedSignals> {
    Arc::new(FeedSignals::default())
}
