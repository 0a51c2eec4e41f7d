//! The process's open-file limit (`RLIMIT_NOFILE`), raised at start.
//!
//! Every connection holds a file descriptor, and so does every database connection. Many
//! systems start services with a soft limit of 1,024 although the hard limit allows far more;
//! at the soft limit `accept()` fails for every client. So the server raises its soft limit to
//! the hard limit once, before it binds, and logs both. This needs no privilege (only raising
//! the hard limit would). The `rlimit` crate makes the system calls, so our crates stay free
//! of `unsafe`; on macOS it also respects the kernel's per-process ceiling.

use std::sync::OnceLock;

/// The open-file limits found and set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimits {
    /// The soft limit the process was started with.
    pub soft_before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (`u64::MAX`: unlimited).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, once per process (later calls answer
/// the first call's outcome). On a platform without the limit, answers why not.
pub fn raise_soft_to_hard() -> Result<FdLimits, String> {
    static RAISED: OnceLock<Result<FdLimits, String>> = OnceLock::new();
    RAISED.get_or_init(raise).clone()
}

#[cfg(unix)]
fn raise() -> Result<FdLimits, String> {
    let (soft_before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map_err(|e| format!("cannot read RLIMIT_NOFILE: {e}"))?;
    let soft = rlimit::increase_nofile_limit(hard)
        .map_err(|e| format!("cannot raise RLIMIT_NOFILE from {soft_before} to {hard}: {e}"))?;
    Ok(FdLimits {
        soft_before,
        soft,
        hard,
    })
}

#[cfg(not(unix))]
fn raise() -> Result<FdLimits, String> {
    Err("no RLIMIT_NOFILE on this platform".to_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limits = raise_soft_to_hard().expect("raised");
        assert!(limits.soft >= limits.soft_before, "{limits:?}");
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("read back");
        assert_eq!((soft, hard), (limits.soft, limits.hard));
        assert_eq!(raise_soft_to_hard(), Ok(limits), "once per process");
    }
}
