//! The run's network behind one face: network namespaces with nftables (real faults), or,
//! where namespaces cannot be made, the fault-injecting proxy (`proxy.rs`) on loopback.

use super::net::{self, Net};
use super::nodes::NodeAddrs;
use super::proxy::Proxies;
use std::net::{Ipv4Addr, SocketAddr};

/// Which network to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    /// Namespaces when they can be made here, the proxy otherwise.
    Auto,
    Namespaces,
    Proxy,
}

/// The network of one run.
pub enum Network {
    Namespaces(Net),
    Proxies(Proxies),
}

impl Network {
    /// Creates the network for nodes `ids`; returns it and each node's addresses.
    pub fn create(ids: &[i32], mode: NetworkMode) -> anyhow::Result<(Network, Vec<NodeAddrs>)> {
        let use_namespaces = match mode {
            NetworkMode::Proxy => false,
            NetworkMode::Namespaces => true,
            NetworkMode::Auto => {
                net::remove_stale();
                match net::unavailable() {
                    None => true,
                    Some(why) => {
                        println!("   network namespaces are unavailable ({why}); using the fault-injecting proxy");
                        false
                    }
                }
            }
        };
        if use_namespaces {
            if let Some(why) = net::unavailable() {
                anyhow::bail!("network namespaces are unavailable here: {why} (needs root, iproute2, nftables)");
            }
            let n = Net::create(ids)?;
            let addrs = ids
                .iter()
                .map(|id| {
                    let ip = n.addr(*id);
                    NodeAddrs {
                        kafka: SocketAddr::from((ip, 9092)),
                        http: SocketAddr::from((ip, 9644)),
                        cluster_listen: SocketAddr::from((ip, 9093)),
                        cluster_advertise: SocketAddr::from((ip, 9093)),
                        netns: Some(n.ns(*id)),
                    }
                })
                .collect();
            return Ok((Network::Namespaces(n), addrs));
        }
        let ports = free_ports(ids.len() * 4)?;
        let at = |i: usize| SocketAddr::from((Ipv4Addr::LOCALHOST, ports[i]));
        let addrs: Vec<NodeAddrs> = (0..ids.len())
            .map(|k| NodeAddrs {
                kafka: at(4 * k),
                http: at(4 * k + 1),
                cluster_listen: at(4 * k + 2),
                cluster_advertise: at(4 * k + 3),
                netns: None,
            })
            .collect();
        let routes: Vec<(i32, SocketAddr, SocketAddr)> = ids
            .iter()
            .zip(&addrs)
            .map(|(id, a)| (*id, a.cluster_advertise, a.cluster_listen))
            .collect();
        Ok((Network::Proxies(Proxies::start(&routes)?), addrs))
    }

    /// Blocks traffic between each pair (both directions), replacing any earlier partition.
    pub fn partition(&self, pairs: &[(i32, i32)]) -> anyhow::Result<()> {
        match self {
            Network::Namespaces(n) => n.partition(pairs),
            Network::Proxies(p) => {
                p.partition(pairs);
                Ok(())
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&self) -> anyhow::Result<()> {
        self.partition(&[])
    }
}

/// `n` distinct free TCP ports on 127.0.0.1 (held together while choosing).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()?;
    Ok(held
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?)
}
