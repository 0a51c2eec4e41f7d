//! The sequencer lock: at most one replica extends the Merkle tree at a time.
//!
//! On PostgreSQL it is a **session-level** advisory lock (`pg_try_advisory_lock`), which
//! belongs to the connection that took it. A pooled connection would be wrong twice over: back
//! in the pool it would keep the lock for whoever borrows it next (a leak), and when the pool
//! closes it the lock vanishes under the sequencer (a loss). So the guard opens a connection of
//! its own, outside the pools, and holds it for as long as it lives. Dropping the guard drops
//! that connection, and PostgreSQL frees the lock as soon as it sees the session end — and does
//! the same when the holding process dies, which is how another replica takes over within
//! seconds.
//!
//! On SQLite the guard always succeeds: the embedded store is one process that owns its file,
//! so there is no second sequencer to exclude. (Were a second process to sequence the same
//! file anyway, the unique keys on `leaf_index`, `audit_nodes` and `tree_heads` would refuse
//! its conflicting commits.)

use sqlx::{AnyConnection, Connection};

use crate::{Backend, Store, StoreError};

/// The advisory-lock key of the audit sequencer (ASCII "yrdL"), as it appears in `pg_locks`
/// (`classid` 0, `objid` this value, `objsubid` 1).
pub const SEQUENCER_LOCK_KEY: i64 = 0x7972_644c;

/// Proof that this process may sequence the audit log. Dropping it releases the lock.
#[derive(Debug)]
pub struct SequencerLock {
    /// PostgreSQL: the dedicated session holding the advisory lock. SQLite: none.
    conn: Option<AnyConnection>,
}

impl Store {
    /// Takes the sequencer lock if no one holds it: `None` when another sequencer (another
    /// replica, or another guard in this process) has it.
    pub async fn try_sequencer_lock(&self) -> Result<Option<SequencerLock>, StoreError> {
        match self.backend() {
            Backend::Sqlite => Ok(Some(SequencerLock { conn: None })),
            Backend::Postgres => {
                let options = self.write.connect_options();
                let mut conn = AnyConnection::connect_with(&options).await?;
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(SEQUENCER_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                if taken {
                    Ok(Some(SequencerLock { conn: Some(conn) }))
                } else {
                    conn.close().await?;
                    Ok(None)
                }
            }
        }
    }
}

impl SequencerLock {
    /// Whether the lock is still held: asks PostgreSQL whether this guard's session holds it,
    /// so a sequencer can stop before each step once its connection was lost. An error means
    /// the session is unusable: treat it as lost. Always true on SQLite.
    pub async fn is_held(&mut self) -> Result<bool, StoreError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(true);
        };
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND pid = pg_backend_pid() AND classid::bigint = $1 AND objid::bigint = $2 \
             AND objsubid = 1",
        )
        .bind(SEQUENCER_LOCK_KEY >> 32)
        .bind(SEQUENCER_LOCK_KEY & 0xffff_ffff)
        .fetch_one(&mut *conn)
        .await?;
        Ok(held > 0)
    }

    /// Releases the lock and closes its session, waiting until PostgreSQL confirmed both (a
    /// plain drop releases it too, as soon as the server sees the connection close).
    pub async fn release(mut self) -> Result<(), StoreError> {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(SEQUENCER_LOCK_KEY)
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        Ok(())
    }
}
