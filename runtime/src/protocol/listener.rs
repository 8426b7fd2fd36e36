//! What a connection knows about the listener it arrived on, and the connection limits shared by
//! all listeners (total, and per client IP).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::SecurityProtocol;

/// One bound Kafka listener.
#[derive(Debug)]
pub struct Endpoint {
    /// The configured name (e.g. `PLAINTEXT`, `EXTERNAL`).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The address actually bound (port 0 resolved).
    pub bound: SocketAddr,
    advertised_host: String,
    advertised_port: i32,
}

impl Endpoint {
    /// A listener bound at `bound` that tells clients to connect to `advertised_host:port`.
    pub fn new(name: &str, protocol: SecurityProtocol, bound: SocketAddr, advertised_host: String, advertised_port: i32) -> Self {
        Endpoint { name: name.to_string(), protocol, bound, advertised_host, advertised_port }
    }

    /// `(host, port)` that Metadata, FindCoordinator and DescribeCluster give clients of this
    /// listener: clients must stay on the listener (and security protocol) they chose.
    pub fn advertised(&self) -> (&str, i32) {
        (&self.advertised_host, self.advertised_port)
    }
}

/// Connection limits shared by every listener.
#[derive(Debug)]
pub struct ConnectionLimits {
    total: Arc<Semaphore>,
    per_ip_max: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one connection's place in the limits until dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    _total: OwnedSemaphorePermit,
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    /// At most `total` connections, at most `per_ip` from one address.
    pub fn new(total: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_ip_max: per_ip.max(1),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a free place under the total limit. Over-limit clients wait in the kernel's
    /// accept backlog, which is what Kafka clients expect from a busy broker.
    pub async fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.total).acquire_owned().await.ok()
    }

    /// Admits a connection from `ip` holding `reserved`; `None` if `ip` is at its limit (the
    /// caller closes the socket at once, so a flood from one host cannot starve others).
    pub fn admit(self: &Arc<Self>, reserved: OwnedSemaphorePermit, ip: IpAddr) -> Option<ConnectionPermit> {
        let mut per_ip = self.per_ip.lock();
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.per_ip_max {
            return None;
        }
        *count += 1;
        Some(ConnectionPermit { _total: reserved, limits: Arc::clone(self), ip })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut per_ip = self.limits.per_ip.lock();
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-IP limit refuses the extra connection from one address, not from another, and
    /// frees the place when a connection ends.
    #[tokio::test]
    async fn per_ip_limit() {
        let limits = ConnectionLimits::new(10, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = limits.admit(limits.reserve().await.expect("permit"), a).expect("first");
        let _second = limits.admit(limits.reserve().await.expect("permit"), a).expect("second");
        assert!(limits.admit(limits.reserve().await.expect("permit"), a).is_none());
        assert!(limits.admit(limits.reserve().await.expect("permit"), b).is_some());
        drop(first);
        assert!(limits.admit(limits.reserve().await.expect("permit"), a).is_some());
    }
}
