//! Kafka's listener syntax: `listeners` and `advertised.listeners` are `NAME://host:port,…`
//! where the name is a security protocol (one listener per protocol). An empty host binds every
//! interface; IPv6 hosts are bracketed (`SSL://[::1]:9093`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a listener's clients connect: Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication.
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    /// TLS; a client certificate (mutual TLS) names the principal.
    #[serde(rename = "SSL")]
    Ssl,
    /// SASL over plain TCP.
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS.
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name of the protocol (also the listener's name).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The protocol named `name` (case-insensitive, as Kafka reads it).
    pub fn parse(name: &str) -> anyhow::Result<SecurityProtocol> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            other => anyhow::bail!(
                "unknown listener name {other:?}: a listener is named by its security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
            ),
        })
    }

    /// Whether connections are TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// One `NAME://host:port` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub protocol: SecurityProtocol,
    /// Empty: every interface (for a bind) or derived (for an advertised address).
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port` to bind (`0.0.0.0` for an empty host; IPv6 bracketed).
    pub fn bind_addr(&self) -> String {
        match self.host.as_str() {
            "" => format!("0.0.0.0:{}", self.port),
            h if h.contains(':') => format!("[{h}]:{}", self.port),
            h => format!("{h}:{}", self.port),
        }
    }
}

/// Parses a comma-separated list of `NAME://host:port` for config key `key`; each protocol at
/// most once.
pub fn parse_endpoints(list: &str, key: &str) -> anyhow::Result<Vec<Endpoint>> {
    let mut out: Vec<Endpoint> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| anyhow::anyhow!("{key}: {item:?} is not NAME://HOST:PORT"))?;
        let protocol = SecurityProtocol::parse(name).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("{key}: {item:?} has no port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| anyhow::anyhow!("{key}: {item:?} has a bad port"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        anyhow::ensure!(
            !out.iter().any(|e| e.protocol == protocol),
            "{key}: {} is listed twice (one listener per security protocol)",
            protocol.name()
        );
        out.push(Endpoint {
            protocol,
            host: host.to_string(),
            port,
        });
    }
    Ok(out)
}

/// A listener: what it binds, and what clients are told (`None`: derived from the bound
/// address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub protocol: SecurityProtocol,
    pub bind: String,
    pub advertised: Option<(String, u16)>,
}

/// The listeners from `listeners` and `advertised.listeners`; with `listeners` empty, the
/// single PLAINTEXT listener of `listen`/`advertise` (the shorthand). Every advertised name
/// must be a listener; a listener not advertised is told as bound.
pub fn listener_specs(
    listeners: &str,
    advertised_listeners: &str,
    listen: &str,
    advertise: &str,
) -> anyhow::Result<Vec<ListenerSpec>> {
    if listeners.trim().is_empty() {
        anyhow::ensure!(
            advertised_listeners.trim().is_empty(),
            "advertised.listeners needs listeners (or use listen/advertise for one PLAINTEXT listener)"
        );
        let advertised = match advertise {
            "" => None,
            a => {
                let (host, port) = a
                    .rsplit_once(':')
                    .ok_or_else(|| anyhow::anyhow!("advertise must be HOST:PORT, got {a:?}"))?;
                let port = port
                    .parse()
                    .map_err(|_| anyhow::anyhow!("advertise: bad port in {a:?}"))?;
                Some((host.trim_matches(['[', ']']).to_string(), port))
            }
        };
        return Ok(vec![ListenerSpec {
            protocol: SecurityProtocol::Plaintext,
            bind: listen.to_string(),
            advertised,
        }]);
    }
    let bound = parse_endpoints(listeners, "listeners")?;
    let told: BTreeMap<SecurityProtocol, Endpoint> = parse_endpoints(advertised_listeners, "advertised.listeners")?
        .into_iter()
        .map(|e| (e.protocol, e))
        .collect();
    for p in told.keys() {
        anyhow::ensure!(
            bound.iter().any(|b| b.protocol == *p),
            "advertised.listeners names {}, which listeners does not",
            p.name()
        );
    }
    let mut ports = std::collections::BTreeSet::new();
    for b in &bound {
        anyhow::ensure!(
            b.port == 0 || ports.insert(b.port),
            "listeners: port {} is used twice",
            b.port
        );
    }
    Ok(bound
        .into_iter()
        .map(|b| ListenerSpec {
            protocol: b.protocol,
            bind: b.bind_addr(),
            advertised: told
                .get(&b.protocol)
                .filter(|t| !t.host.is_empty())
                .map(|t| (t.host.clone(), t.port)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_listener_syntax() {
        let specs = listener_specs(
            "PLAINTEXT://:9092, SSL://127.0.0.1:9093,sasl_ssl://[::1]:9094",
            "SSL://broker.example:19093",
            "ignored:1",
            "",
        )
        .unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(specs[0].bind, "0.0.0.0:9092");
        assert_eq!(specs[0].advertised, None);
        assert_eq!(specs[1].bind, "127.0.0.1:9093");
        assert_eq!(specs[1].advertised, Some(("broker.example".into(), 19093)));
        assert_eq!(specs[2].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(specs[2].bind, "[::1]:9094");
    }

    #[test]
    fn the_shorthand_is_one_plaintext_listener() {
        let specs = listener_specs("", "", "0.0.0.0:9092", "host.example:9999").unwrap();
        assert_eq!(
            specs,
            vec![ListenerSpec {
                protocol: SecurityProtocol::Plaintext,
                bind: "0.0.0.0:9092".into(),
                advertised: Some(("host.example".into(), 9999)),
            }]
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        let bad = [
            ("FOO://:1", ""),
            ("PLAINTEXT://:1,PLAINTEXT://:2", ""),
            ("PLAINTEXT://:1,SSL://:1", ""),
            ("PLAINTEXT://:1", "SSL://h:2"),
            ("PLAINTEXT:/:1", ""),
            ("PLAINTEXT://h:port", ""),
        ];
        for (listeners, advertised) in bad {
            assert!(
                listener_specs(listeners, advertised, "", "").is_err(),
                "{listeners} / {advertised}"
            );
        }
        assert!(listener_specs("", "SSL://h:2", "0.0.0.0:1", "").is_err());
    }
}
