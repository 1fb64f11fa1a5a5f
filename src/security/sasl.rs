//! SASL on a connection, without I/O: which mechanisms are offered, the handshake, and each
//! mechanism's exchange (PLAIN checked against the SCRAM store; SCRAM-SHA-256/512). The
//! connection feeds it the client's tokens and sends what it answers.

use super::scram::{Mechanism, ScramCredential, ScramError, ScramServer, Step};
use std::collections::BTreeMap;

/// A SASL mechanism this broker can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// PLAIN (RFC 4616), checked against the SCRAM store.
    Plain,
    /// SCRAM-SHA-256 or -512.
    Scram(Mechanism),
}

impl SaslMechanism {
    /// Its SASL name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }

    /// The mechanism named `name` (SASL names are case-sensitive).
    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        match name {
            "PLAIN" => Some(SaslMechanism::Plain),
            other => Mechanism::from_name(other).map(SaslMechanism::Scram),
        }
    }
}

/// Parses `sasl.enabled.mechanisms` (comma-separated; at least one).
pub fn parse_mechanisms(list: &str) -> anyhow::Result<Vec<SaslMechanism>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m = SaslMechanism::from_name(name).ok_or_else(|| {
            anyhow::anyhow!("sasl.enabled.mechanisms: {name:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        })?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    anyhow::ensure!(!out.is_empty(), "sasl.enabled.mechanisms is empty");
    Ok(out)
}

/// Parses `sasl.bootstrap.users` (`name:password,…`; a password may not hold a comma).
pub fn parse_bootstrap_users(list: &str) -> anyhow::Result<Vec<(String, String)>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (user, password) = entry
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("sasl.bootstrap.users: an entry is not name:password"))?;
            anyhow::ensure!(
                !user.is_empty() && !password.is_empty(),
                "sasl.bootstrap.users: empty user name or password"
            );
            Ok((user.to_string(), password.to_string()))
        })
        .collect()
}

/// Every user's credentials, as the replicated metadata holds them.
pub type Credentials = BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>;

/// Why authentication failed: what the client is told, the same for every credential failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Wrong user or password (or a proof that does not match).
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {0}")]
    InvalidCredentials(&'static str),
    /// A message the mechanism cannot read.
    #[error("Authentication failed: malformed {0} message")]
    Malformed(&'static str),
    /// An extension not served (delegation tokens).
    #[error("Authentication failed: unsupported extension in {0} message")]
    UnsupportedExtension(&'static str),
}

/// What one step of an exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Send this token and wait for the next.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send this last token.
    Authenticated { user: String, last: Vec<u8> },
}

/// One mechanism's exchange on a connection.
pub enum Exchange {
    /// PLAIN: one message.
    Plain,
    /// SCRAM: two round trips.
    Scram(Box<ScramServer>, Mechanism),
}

impl Exchange {
    /// A new exchange of `mechanism`.
    pub fn new(mechanism: SaslMechanism) -> Exchange {
        match mechanism {
            SaslMechanism::Plain => Exchange::Plain,
            SaslMechanism::Scram(m) => Exchange::Scram(Box::new(ScramServer::new(m)), m),
        }
    }

    /// Takes the client's next token. `decoy_key` keys the made-up salts of unknown users.
    pub fn step(&mut self, token: &[u8], users: &Credentials, decoy_key: &[u8]) -> Result<Progress, AuthFailure> {
        match self {
            Exchange::Plain => plain(token, users, decoy_key),
            Exchange::Scram(server, m) => {
                let m = *m;
                let lookup = |user: &str| users.get(user).and_then(|c| c.get(&m)).cloned();
                let decoy = |user: &str| decoy_salt(decoy_key, user);
                match server.step(token, lookup, decoy) {
                    Ok(Step::Continue(challenge)) => Ok(Progress::Challenge(challenge)),
                    Ok(Step::Done { user, last }) => Ok(Progress::Authenticated { user, last }),
                    Err(ScramError::BadCredentials) => Err(AuthFailure::InvalidCredentials(m.name())),
                    Err(ScramError::Malformed(_)) => Err(AuthFailure::Malformed(m.name())),
                    Err(ScramError::UnsupportedExtension) => Err(AuthFailure::UnsupportedExtension(m.name())),
                }
            }
        }
    }
}

/// A stable made-up salt for a user without a credential, so its challenge looks like anyone's.
fn decoy_salt(key: &[u8], user: &str) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(user.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL password`, the authorization id empty or the
/// user's own; the password is checked against the user's SCRAM credential. A user without one
/// costs the same PBKDF2 against a made-up salt, so the time taken does not tell.
fn plain(token: &[u8], users: &Credentials, decoy_key: &[u8]) -> Result<Progress, AuthFailure> {
    let malformed = AuthFailure::Malformed("PLAIN");
    let text = std::str::from_utf8(token).map_err(|_| malformed.clone())?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    let invalid = AuthFailure::InvalidCredentials("PLAIN");
    let credential = users.get(user).and_then(|creds| creds.iter().next());
    let verified = match credential {
        Some((m, c)) => c.verifies(*m, password),
        None => {
            let decoy = decoy_salt(decoy_key, user);
            let _ = Mechanism::Sha256.salted_password(password.as_bytes(), &decoy, super::scram::MIN_ITERATIONS);
            false
        }
    };
    let well_formed = !user.is_empty() && !password.is_empty() && (authzid.is_empty() || authzid == user);
    if !(verified && well_formed) {
        return Err(invalid);
    }
    Ok(Progress::Authenticated {
        user: user.to_string(),
        last: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Credentials {
        let mut creds = BTreeMap::new();
        creds.insert(
            Mechanism::Sha256,
            ScramCredential::from_password(Mechanism::Sha256, "pw", 4096),
        );
        BTreeMap::from([("alice".to_string(), creds)])
    }

    #[test]
    fn plain_checks_the_scram_store() {
        let ok = Exchange::new(SaslMechanism::Plain).step(b"\0alice\0pw", &users(), b"k");
        assert_eq!(
            ok,
            Ok(Progress::Authenticated {
                user: "alice".into(),
                last: Vec::new()
            })
        );
        for bad in [
            &b"\0alice\0nope"[..],
            b"\0bob\0pw",
            b"bob\0alice\0pw",
            b"alice\0pw",
            b"\0\0",
        ] {
            assert!(
                Exchange::new(SaslMechanism::Plain).step(bad, &users(), b"k").is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mechanisms_and_bootstrap_users_parse() {
        assert_eq!(
            parse_mechanisms("SCRAM-SHA-256, PLAIN").unwrap(),
            vec![SaslMechanism::Scram(Mechanism::Sha256), SaslMechanism::Plain]
        );
        assert!(parse_mechanisms("GSSAPI").is_err());
        assert!(parse_mechanisms("").is_err());
        assert_eq!(
            parse_bootstrap_users("a:x, b:y:z").unwrap(),
            vec![("a".into(), "x".into()), ("b".into(), "y:z".into())]
        );
        assert!(parse_bootstrap_users("a").is_err());
        assert!(parse_bootstrap_users(":x").is_err());
    }
}
