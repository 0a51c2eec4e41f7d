//! Caps on the connections waiting for their TLS handshake, in total and per source address.
//!
//! Until its handshake completes a connection is anonymous: it holds a file descriptor and a
//! task, and nothing says who it is. Without a cap, a client that opens more TCP connections
//! than the process may hold files (1,100 against the common soft limit of 1,024) and never
//! sends a byte makes `accept()` fail for everyone until the handshake timeout drops them. So
//! the TLS acceptor (`server::tls`) asks for a [`HandshakeSlot`] before it spends
//! anything on a connection; beyond either cap the socket is closed at once. A slot is given
//! back when the handshake ends, however it ends (done, refused, timed out), by dropping it;
//! an established connection holds none, so the caps bound only the anonymous ones.
//!
//! A source is the client's IPv4 address, or the /64 prefix of its IPv6 address (one host
//! usually holds a whole /64, so counting per IPv6 address would cap nothing).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// The two caps (`tls.max_pending_handshakes`, `tls.max_pending_handshakes_per_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeCaps {
    /// Connections waiting for their handshake, all sources together.
    pub total: usize,
    /// Connections waiting for their handshake from one source.
    pub per_source: usize,
}

/// Where a connection comes from, as far as the per-source cap counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The source of a client at `ip`: IPv4 as is (also when mapped into IPv6), IPv6 by /64.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Source(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Why a connection was refused before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeRefusal {
    /// Every slot is taken.
    #[error(
        "{cap} connections are already waiting for their TLS handshake (tls.max_pending_handshakes)"
    )]
    Total {
        /// The cap.
        cap: usize,
    },
    /// The source's slots are taken.
    #[error(
        "{cap} connections from {from} are already waiting for their TLS handshake (tls.max_pending_handshakes_per_source)"
    )]
    PerSource {
        /// The source.
        from: Source,
        /// The cap.
        cap: usize,
    },
}

/// Counts the connections waiting for their handshake and hands out slots within the caps.
#[derive(Debug)]
pub struct HandshakeLimiter {
    caps: HandshakeCaps,
    /// One short critical section per accepted connection and per finished handshake; a
    /// `std` mutex, since it is never held across an `.await`.
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    total: usize,
    /// Only sources with at least one connection waiting, so the map stays as small as the
    /// number of handshakes in progress.
    by_source: HashMap<Source, usize>,
}

impl HandshakeLimiter {
    /// A limiter with nothing pending.
    pub fn new(caps: HandshakeCaps) -> Arc<HandshakeLimiter> {
        Arc::new(HandshakeLimiter {
            caps,
            pending: Mutex::new(Pending::default()),
        })
    }

    /// The caps in force.
    pub fn caps(&self) -> HandshakeCaps {
        self.caps
    }

    /// A slot for a connection from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<HandshakeSlot, HandshakeRefusal> {
        let source = Source::of(ip);
        let mut pending = self.lock();
        if pending.total >= self.caps.total {
            return Err(HandshakeRefusal::Total {
                cap: self.caps.total,
            });
        }
        let from_source = pending.by_source.entry(source).or_insert(0);
        if *from_source >= self.caps.per_source {
            return Err(HandshakeRefusal::PerSource {
                from: source,
                cap: self.caps.per_source,
            });
        }
        *from_source += 1;
        pending.total += 1;
        Ok(HandshakeSlot {
            limiter: self.clone(),
            source,
        })
    }

    /// Connections waiting for their handshake now.
    pub fn pending(&self) -> usize {
        self.lock().total
    }

    fn release(&self, source: Source) {
        let mut pending = self.lock();
        pending.total = pending.total.saturating_sub(1);
        if let Some(count) = pending.by_source.get_mut(&source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                pending.by_source.remove(&source);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // The counts stay consistent even if a holder panicked: each update is one step.
        match self.pending.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// One connection's place among those waiting for a handshake; given back when dropped.
#[derive(Debug)]
pub struct HandshakeSlot {
    limiter: Arc<HandshakeLimiter>,
    source: Source,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.limiter.release(self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address in the test")
    }

    #[test]
    fn each_source_gets_its_cap_and_all_together_the_total() {
        let limiter = HandshakeLimiter::new(HandshakeCaps {
            total: 5,
            per_source: 2,
        });
        let a1 = limiter.admit(ip("127.0.0.2")).expect("first from a");
        let _a2 = limiter.admit(ip("127.0.0.2")).expect("second from a");
        assert_eq!(
            limiter.admit(ip("127.0.0.2")).expect_err("third from a"),
            HandshakeRefusal::PerSource {
                from: Source::of(ip("127.0.0.2")),
                cap: 2
            }
        );
        let _b1 = limiter.admit(ip("127.0.0.3")).expect("first from b");
        let _b2 = limiter.admit(ip("127.0.0.3")).expect("second from b");
        let _c1 = limiter.admit(ip("127.0.0.4")).expect("first from c");
        assert_eq!(limiter.pending(), 5);
        // The total is reached: a new source is refused too.
        assert_eq!(
            limiter.admit(ip("127.0.0.5")).expect_err("total reached"),
            HandshakeRefusal::Total { cap: 5 }
        );
        // A finished handshake gives its slot back, to its source and to the total.
        drop(a1);
        assert_eq!(limiter.pending(), 4);
        let _a3 = limiter.admit(ip("127.0.0.2")).expect("a again");
        assert!(
            limiter.admit(ip("127.0.0.5")).is_err(),
            "total reached again"
        );
    }

    #[test]
    fn released_sources_leave_no_trace() {
        let limiter = HandshakeLimiter::new(HandshakeCaps {
            total: 100,
            per_source: 1,
        });
        for i in 0..50u8 {
            let slot = limiter
                .admit(IpAddr::from([10, 0, 0, i]))
                .expect("admitted");
            drop(slot);
        }
        assert_eq!(limiter.pending(), 0);
        assert!(limiter.lock().by_source.is_empty());
    }

    #[test]
    fn ipv6_counts_by_64_prefix_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            Source::of(ip("2001:db8:1:2:aaaa::1")),
            Source::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Source::of(ip("::ffff:192.0.2.7")),
            Source::of(ip("192.0.2.7"))
        );
        assert_eq!(
            Source::of(ip("2001:db8:1:2:aaaa::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        let limiter = HandshakeLimiter::new(HandshakeCaps {
            total: 10,
            per_source: 1,
        });
        let _one = limiter.admit(ip("2001:db8::1")).expect("first");
        let refused = limiter.admit(ip("2001:db8::2")).expect_err("same /64");
        assert!(
            refused
                .to_string()
                .contains("tls.max_pending_handshakes_per_source"),
            "{refused}"
        );
    }
}
