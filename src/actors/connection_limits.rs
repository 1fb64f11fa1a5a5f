//! Connection limits that protect real clients from floods: connections per client address
//! (`max.connections.per.ip`, with `max.connections.per.ip.overrides`), connections still in
//! their TLS handshake or SASL exchange (`connections.max.unauthenticated`), each of which also
//! has a deadline, and failed authentications from one address answered ever later (doubling
//! from `connection.failed.authentication.delay.ms` up to a bound). A connection over a limit
//! is closed at once.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The node-wide limits, shared by every listener.
pub struct ConnectionLimits {
    per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    unauthenticated: Arc<Semaphore>,
    /// Recent failed authentications per address: (count, when the last one was).
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// Addresses whose failures are remembered, at most (the oldest are forgotten first).
const MAX_REMEMBERED_FAILURES: usize = 10_000;
/// Failures older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// The longest a failed authentication waits for its answer.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);

/// One address's slot; dropping it frees the slot.
pub struct IpSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    /// Limits from the settings; `overrides` is `ip:count,…`.
    pub fn new(per_ip: usize, overrides: &str, max_unauthenticated: usize) -> anyhow::Result<ConnectionLimits> {
        Ok(ConnectionLimits {
            per_ip,
            overrides: parse_overrides(overrides)?,
            open: Arc::default(),
            unauthenticated: Arc::new(Semaphore::new(max_unauthenticated.max(1))),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Notes a failed authentication from `ip`; how long to wait before answering it: `base`,
    /// doubled for each recent failure from that address, at most `MAX_FAILURE_DELAY`.
    pub fn failed(&self, ip: IpAddr, base: Duration) -> Duration {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_REMEMBERED_FAILURES && !failures.contains_key(&ip) {
            failures.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
            if failures.len() >= MAX_REMEMBERED_FAILURES {
                let oldest = failures.iter().min_by_key(|(_, (_, at))| *at).map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let count = entry.0;
        debug_assert!(failures.len() <= MAX_REMEMBERED_FAILURES);
        base.saturating_mul(1u32 << (count - 1).min(16))
            .min(MAX_FAILURE_DELAY.max(base))
    }

    /// Forgets `ip`'s failures once it authenticated.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().remove(&ip);
    }

    /// A slot for one more connection from `ip`, unless it has its limit already.
    pub fn admit(&self, ip: IpAddr) -> Option<IpSlot> {
        let limit = self.overrides.get(&ip).copied().unwrap_or(self.per_ip);
        let mut open = self.open.lock();
        let n = open.entry(ip).or_default();
        if *n >= limit {
            if *n == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            open: self.open.clone(),
        })
    }

    /// A place among the connections still authenticating, if one is free.
    pub fn authenticating(&self) -> Option<OwnedSemaphorePermit> {
        self.unauthenticated.clone().try_acquire_owned().ok()
    }
}

/// Parses `ip:count,…` (IPv6 addresses in brackets: `[::1]:5`).
fn parse_overrides(list: &str) -> anyhow::Result<HashMap<IpAddr, usize>> {
    let mut out = HashMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (ip, count) = item
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("max.connections.per.ip.overrides: {item:?} is not IP:COUNT"))?;
        let ip: IpAddr = ip
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| anyhow::anyhow!("max.connections.per.ip.overrides: bad address in {item:?}"))?;
        let count: usize = count
            .parse()
            .map_err(|_| anyhow::anyhow!("max.connections.per.ip.overrides: bad count in {item:?}"))?;
        out.insert(ip, count);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_limits_and_overrides() {
        let limits = ConnectionLimits::new(2, "10.0.0.9:0, [::1]:3", 1).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let (s1, s2) = (limits.admit(a), limits.admit(a));
        assert!(s1.is_some() && s2.is_some());
        assert!(limits.admit(a).is_none(), "a third from one address");
        drop(s1);
        assert!(limits.admit(a).is_some(), "a freed slot is reused");
        assert!(limits.admit("10.0.0.9".parse().unwrap()).is_none(), "override 0");
        let v6: IpAddr = "::1".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| limits.admit(v6)).collect();
        assert!(held.iter().all(Option::is_some) && limits.admit(v6).is_none());
        let first = limits.authenticating();
        assert!(first.is_some() && limits.authenticating().is_none());
        drop(first);
        assert!(limits.authenticating().is_some());
        assert!(ConnectionLimits::new(1, "nonsense", 1).is_err());
    }

    #[test]
    fn repeated_failures_from_one_address_wait_longer_up_to_a_bound() {
        let limits = ConnectionLimits::new(1, "", 1).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let base = Duration::from_millis(100);
        let delays: Vec<Duration> = (0..10).map(|_| limits.failed(a, base)).collect();
        assert_eq!(delays[0], base);
        assert_eq!(delays[1], base * 2);
        assert_eq!(delays[2], base * 4);
        assert_eq!(*delays.last().unwrap(), MAX_FAILURE_DELAY, "bounded");
        assert_eq!(limits.failed(b, base), base, "another address is not slowed");
        limits.succeeded(a);
        assert_eq!(limits.failed(a, base), base, "a success forgets");
    }
}
