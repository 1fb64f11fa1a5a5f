//! Real network faults: every node runs in its own network namespace, joined to the harness by
//! a veth pair on a bridge of its own (`10.213.S.0/24`, the bridge at `.1`, node i at `.10+i`).
//! A partition is a set of blocked node pairs, enforced by an nftables table inside each blocked
//! node's namespace that silently drops traffic to and from the other side (connections hang
//! and time out, as on a real network). Only the namespaces, links and addresses created here
//! are ever touched; names carry the harness's pid so a crashed run's leftovers can be told
//! apart and removed.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;

/// Name prefix of everything this harness creates.
const PREFIX: &str = "rsc";

/// The namespaces, bridge and links of one run.
pub struct Net {
    run: u32,
    subnet: u8,
    nodes: Vec<i32>,
}

fn run_cmd(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_stdin(args: &[&str], input: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("stdin").write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Why namespaces cannot be used here, if they cannot (needs root or CAP_NET_ADMIN, iproute2
/// and nftables).
pub fn unavailable() -> Option<String> {
    let probe = format!("{PREFIX}probe{}", std::process::id());
    if let Err(e) = run_cmd(&["ip", "netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace ({e})"));
    }
    let nft = run_cmd(&["ip", "netns", "exec", &probe, "nft", "list", "ruleset"]);
    let _ = run_cmd(&["ip", "netns", "del", &probe]);
    nft.err().map(|e| format!("nftables unusable in a namespace ({e})"))
}

/// Removes namespaces and bridges left by harness runs whose process is gone.
pub fn remove_stale() {
    let Ok(list) = run_cmd(&["ip", "netns", "list"]) else {
        return;
    };
    let mut dead = BTreeSet::new();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('n') else { continue };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run_cmd(&["ip", "netns", "del", name]);
            dead.insert(pid.to_string());
        }
    }
    for pid in dead {
        let _ = run_cmd(&["ip", "link", "del", &format!("{PREFIX}{pid}b")]);
    }
}

impl Net {
    /// Creates a namespace per node (ids `nodes`), the bridge, and their links.
    pub fn create(nodes: &[i32]) -> anyhow::Result<Net> {
        let run = std::process::id();
        let used = run_cmd(&["ip", "-o", "-4", "addr", "show"])?;
        let subnet = (0..200u32)
            .map(|k| (20 + (run + k) % 200) as u8)
            .find(|s| !used.contains(&format!("10.213.{s}.")))
            .ok_or_else(|| anyhow::anyhow!("no free 10.213.x.0/24 subnet"))?;
        let net = Net {
            run,
            subnet,
            nodes: nodes.to_vec(),
        };
        let bridge = net.bridge();
        run_cmd(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        run_cmd(&["ip", "addr", "add", &format!("10.213.{subnet}.1/24"), "dev", &bridge])?;
        run_cmd(&["ip", "link", "set", &bridge, "up"])?;
        for &id in nodes {
            let (ns, veth) = (net.ns(id), format!("{PREFIX}{run}v{id}"));
            run_cmd(&["ip", "netns", "add", &ns])?;
            run_cmd(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            run_cmd(&["ip", "link", "set", &veth, "master", &bridge, "up"])?;
            let addr = format!("{}/24", net.addr(id));
            run_cmd(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            run_cmd(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run_cmd(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{PREFIX}{}b", self.run)
    }

    /// The namespace node `id` runs in.
    pub fn ns(&self, id: i32) -> String {
        format!("{PREFIX}{}n{id}", self.run)
    }

    /// Node `id`'s address.
    pub fn addr(&self, id: i32) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 10 + id as u8)
    }

    /// Blocks traffic between each pair in `blocked` (both directions), replacing any earlier
    /// partition. Clients (the harness, on the bridge) still reach every node.
    pub fn partition(&self, blocked: &[(i32, i32)]) -> anyhow::Result<()> {
        for &id in &self.nodes {
            let others: BTreeSet<String> = blocked
                .iter()
                .filter_map(|&(a, b)| {
                    if a == id {
                        Some(b)
                    } else if b == id {
                        Some(a)
                    } else {
                        None
                    }
                })
                .map(|o| self.addr(o).to_string())
                .collect();
            // Creating the table first makes the delete succeed whether or not it existed.
            let mut rules = String::from("table inet chaos\ndelete table inet chaos\n");
            if !others.is_empty() {
                let set = others.into_iter().collect::<Vec<_>>().join(", ");
                rules.push_str(&format!(
                    "table inet chaos {{\n chain input {{ type filter hook input priority 0; ip saddr {{ {set} }} drop; }}\n \
                     chain output {{ type filter hook output priority 0; ip daddr {{ {set} }} drop; }}\n}}\n"
                ));
            }
            run_stdin(&["ip", "netns", "exec", &self.ns(id), "nft", "-f", "-"], &rules)?;
        }
        Ok(())
    }

    /// Removes every partition.
    pub fn heal(&self) -> anyhow::Result<()> {
        self.partition(&[])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for &id in &self.nodes {
            let _ = run_cmd(&["ip", "netns", "del", &self.ns(id)]);
        }
        let _ = run_cmd(&["ip", "link", "del", &self.bridge()]);
    }
}

/// Pairs blocked when `side` is cut off from every other node of `all`.
pub fn cut_off(side: &[i32], all: &[i32]) -> Vec<(i32, i32)> {
    let mut pairs = Vec::new();
    for &a in side {
        for &b in all.iter().filter(|b| !side.contains(b)) {
            pairs.push((a, b));
        }
    }
    pairs
}

/// Pairs blocked for a bridge: `left` and `right` cannot talk to each other, but both talk to
/// every node in neither (the bridge nodes).
pub fn bridge(left: &[i32], right: &[i32]) -> Vec<(i32, i32)> {
    left.iter().flat_map(|&a| right.iter().map(move |&b| (a, b))).collect()
}
