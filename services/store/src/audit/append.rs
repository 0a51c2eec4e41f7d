//! A leaf written alone: the exchange-log entry of a call that writes nothing else (a read, a
//! refused call). It goes through the write primitive like every write, so it joins the next
//! group-committed batch.

use yrd_domain::audit::LeafData;

use super::leaves::AppendedLeaf;
use crate::write::{NoRows, Write, WriteError};
use crate::{Store, StoreError};

impl Store {
    /// Appends one leaf in a write of its own (for calls that write nothing else: reads and
    /// refused calls); it joins the next group-committed batch and returns once that is
    /// durable. Its Merkle index comes later, from the sequencer.
    pub async fn append_leaf(&self, leaf: &LeafData) -> Result<AppendedLeaf, StoreError> {
        let done = self
            .commit(Write::new(NoRows).leaf(Some(leaf.clone())))
            .await
            .map_err(WriteError::into_store)?;
        done.written()
            .and_then(|w| w.leaf)
            .ok_or_else(|| StoreError::corrupt("audit leaf", "a leaf write appended no leaf"))
    }
}
