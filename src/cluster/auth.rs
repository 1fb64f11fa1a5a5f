//! Node-to-node authentication by a shared secret (`cluster.secret`). The accepting node sends
//! a fresh random challenge as the first bytes of every connection; the connecting node's Hello
//! carries HMAC-SHA256(secret, challenge ‖ its node id). Nothing but a Hello with a valid proof
//! is read from a peer: a connection without one is closed before any Raft RPC.

use crate::types::NodeId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the challenge an accepting node sends first.
pub const CHALLENGE_BYTES: usize = 32;

/// The cluster's shared secret.
pub struct ClusterSecret(Vec<u8>);

impl ClusterSecret {
    /// The secret `cluster.secret` names (`None` when empty).
    pub fn from_config(secret: &str) -> Option<ClusterSecret> {
        (!secret.is_empty()).then(|| ClusterSecret(secret.as_bytes().to_vec()))
    }

    /// A fresh challenge.
    pub fn challenge() -> [u8; CHALLENGE_BYTES] {
        rand::random()
    }

    /// The proof node `node_id` answers `challenge` with.
    pub fn proof(&self, challenge: &[u8], node_id: NodeId) -> Vec<u8> {
        self.mac(challenge, node_id).finalize().into_bytes().to_vec()
    }

    /// Whether `proof` answers `challenge` for `node_id` (constant time).
    pub fn verifies(&self, challenge: &[u8], node_id: NodeId, proof: &[u8]) -> bool {
        self.mac(challenge, node_id).verify_slice(proof).is_ok()
    }

    fn mac(&self, challenge: &[u8], node_id: NodeId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"raftstream cluster hello\0");
        mac.update(challenge);
        mac.update(&node_id.to_be_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_for_its_challenge_node_and_secret_only() {
        let secret = ClusterSecret::from_config("s3cret").unwrap();
        let challenge = ClusterSecret::challenge();
        let proof = secret.proof(&challenge, 2);
        assert!(secret.verifies(&challenge, 2, &proof));
        assert!(!secret.verifies(&challenge, 3, &proof), "another node");
        assert!(
            !secret.verifies(&ClusterSecret::challenge(), 2, &proof),
            "another challenge"
        );
        let other = ClusterSecret::from_config("other").unwrap();
        assert!(!other.verifies(&challenge, 2, &proof), "another secret");
        assert!(!secret.verifies(&challenge, 2, &[]), "no proof");
        assert!(ClusterSecret::from_config("").is_none());
    }
}
