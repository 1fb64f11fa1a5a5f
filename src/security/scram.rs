//! SCRAM (RFC 5802, RFC 7677) on the server side, over RustCrypto's HMAC, SHA-2 and PBKDF2:
//! the stored credential (salt, iteration count, StoredKey, ServerKey; never a password) and
//! one exchange (client-first → server-first → client-final → server-final). An unknown user
//! is answered with a made-up salt and fails at the proof, like a wrong password: nothing tells
//! which part was wrong.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Fewest PBKDF2 iterations a credential may have (Kafka's bound).
pub const MIN_ITERATIONS: u32 = 4096;
/// Most PBKDF2 iterations a credential may have (Kafka's bound).
pub const MAX_ITERATIONS: u32 = 16384;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl Mechanism {
    /// Its SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism with SASL name `name`.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's wire code (DescribeUserScramCredentials / AlterUserScramCredentials).
    pub fn code(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    /// The mechanism of wire code `code`.
    pub fn from_code(code: i8) -> Option<Mechanism> {
        match code {
            1 => Some(Mechanism::Sha256),
            2 => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Mechanism::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// SaltedPassword = Hi(password, salt, iterations) (PBKDF2 with this mechanism's HMAC).
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Mechanism::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

/// What the broker keeps of a user's password for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The PBKDF2 salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count (4096..=16384).
    pub iterations: u32,
    /// H(HMAC(SaltedPassword, "Client Key")): what a client proof is checked against.
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key"): signs the server's last message.
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential of a salted password (what AlterUserScramCredentials carries).
    pub fn from_salted(mechanism: Mechanism, salted: &[u8], salt: Vec<u8>, iterations: u32) -> ScramCredential {
        let client_key = mechanism.hmac(salted, b"Client Key");
        ScramCredential {
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, b"Server Key"),
        }
    }

    /// The credential of `password` with a fresh random salt.
    pub fn from_password(mechanism: Mechanism, password: &str, iterations: u32) -> ScramCredential {
        let salt: [u8; 32] = rand::random();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        ScramCredential::from_salted(mechanism, &salted, salt.to_vec(), iterations)
    }

    /// Whether `password` is this credential's (PLAIN checks against the SCRAM store).
    pub fn verifies(&self, mechanism: Mechanism, password: &str) -> bool {
        let salted = mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        bool::from(mechanism.hash(&client_key).ct_eq(&self.stored_key))
    }
}

/// Why an exchange failed. Every credential failure is `BadCredentials`, whatever was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message that does not follow RFC 5802.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Unknown user, wrong password, or a proof that does not match.
    #[error("invalid credentials")]
    BadCredentials,
    /// An extension this broker does not serve (delegation tokens).
    #[error("unsupported SCRAM extension")]
    UnsupportedExtension,
}

/// One SCRAM exchange on the server side.
pub struct ScramServer {
    mechanism: Mechanism,
    state: State,
}

enum State {
    /// Waiting for client-first.
    Start,
    /// Sent server-first; waiting for client-final.
    Challenged(Exchange),
    Done,
}

/// What the next step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated `user`; send this last message.
    Done { user: String, last: Vec<u8> },
}

impl ScramServer {
    /// A new exchange of `mechanism`.
    pub fn new(mechanism: Mechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::Start,
        }
    }

    /// Takes the client's next message. `lookup` finds a user's credential; `decoy_salt` is a
    /// stable made-up salt for a user that has none.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: impl Fn(&str) -> Option<ScramCredential>,
        decoy_salt: impl Fn(&str) -> Vec<u8>,
    ) -> Result<Step, ScramError> {
        let message = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start => self.first(message, lookup, decoy_salt),
            State::Challenged(exchange) => exchange.finish(self.mechanism, message),
            State::Done => Err(ScramError::Malformed("the exchange is over")),
        }
    }

    fn first(
        &mut self,
        message: &str,
        lookup: impl Fn(&str) -> Option<ScramCredential>,
        decoy_salt: impl Fn(&str) -> Vec<u8>,
    ) -> Result<Step, ScramError> {
        let (authzid, bare) = strip_gs2_header(message)?;
        let gs2_header = message[..message.len() - bare.len()].to_string();
        let mut user = None;
        let mut client_nonce = None;
        for attr in bare.split(',') {
            match attr.split_once('=') {
                Some(("n", v)) => user = Some(unescape_user(v)?),
                Some(("r", v)) => client_nonce = Some(v.to_string()),
                Some(("tokenauth", _)) => return Err(ScramError::UnsupportedExtension),
                Some(("m", _)) => return Err(ScramError::UnsupportedExtension),
                _ => {}
            }
        }
        let user = user.ok_or(ScramError::Malformed("no user name"))?;
        // An authorization id other than the user's own is refused (as Kafka does).
        if authzid
            .strip_prefix("a=")
            .is_some_and(|a| unescape_user(a).ok().as_deref() != Some(user.as_str()))
        {
            return Err(ScramError::BadCredentials);
        }
        let client_nonce = client_nonce
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("no nonce"))?;
        let credential = lookup(&user);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (decoy_salt(&user), MIN_ITERATIONS),
        };
        let server_nonce: [u8; 24] = rand::random();
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        self.state = State::Challenged(Exchange {
            gs2_header,
            user,
            credential,
            nonce,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
        });
        Ok(Step::Continue(server_first.into_bytes()))
    }
}

/// The state of an exchange once the server-first message went out.
struct Exchange {
    /// The client-first message's GS2 header, which client-final's `c=` must repeat.
    gs2_header: String,
    user: String,
    /// `None` for an unknown user: the exchange goes on and fails at the proof.
    credential: Option<ScramCredential>,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl Exchange {
    /// Checks client-final's nonce and proof; on success answers with the server signature.
    fn finish(self, mechanism: Mechanism, message: &str) -> Result<Step, ScramError> {
        let (without_proof, proof) = message.rsplit_once(",p=").ok_or(ScramError::Malformed("no proof"))?;
        let nonce = without_proof
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if nonce != self.nonce {
            return Err(ScramError::BadCredentials);
        }
        // The channel binding must repeat the GS2 header (no channel binding is offered).
        let binding = without_proof.split(',').find_map(|a| a.strip_prefix("c="));
        if binding != Some(B64.encode(self.gs2_header.as_bytes()).as_str()) {
            return Err(ScramError::BadCredentials);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let credential = self.credential.ok_or(ScramError::BadCredentials)?;
        let auth_message = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
        let client_signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::BadCredentials);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        if !bool::from(mechanism.hash(&client_key).ct_eq(&credential.stored_key)) {
            return Err(ScramError::BadCredentials);
        }
        let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
        Ok(Step::Done {
            user: self.user,
            last: format!("v={}", B64.encode(server_signature)).into_bytes(),
        })
    }
}

/// The client-first message's authorization id field (empty, or `a=<id>`) and the message
/// without its GS2 header (`n,,`, `y,,`, or with an authorization id).
fn strip_gs2_header(message: &str) -> Result<(&str, &str), ScramError> {
    let mut parts = message.splitn(3, ',');
    let binding = parts.next().ok_or(ScramError::Malformed("empty"))?;
    if !(binding == "n" || binding == "y") {
        return Err(ScramError::Malformed("channel binding is not supported"));
    }
    let authzid = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("no client-first-bare"))?;
    Ok((authzid, bare))
}

/// A SCRAM user name with `=2C` and `=3D` decoded.
fn unescape_user(v: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
