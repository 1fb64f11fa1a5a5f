//! Applying the SCRAM credential commands: what AlterUserScramCredentials and the bootstrap
//! users change in the replicated metadata.

use super::ClusterMeta;
use crate::security::scram::{Mechanism, ScramCredential};
use crate::types::meta_error::MetaError;

/// Upserts and deletes credentials; refused as a whole if a deletion names a credential that
/// does not exist (AlterUserScramCredentials answers per user; the handler checks first).
pub fn alter_scram(
    meta: &mut ClusterMeta,
    upsert: Vec<(String, Mechanism, ScramCredential)>,
    delete: Vec<(String, Mechanism)>,
) -> Result<i64, MetaError> {
    for (user, mechanism) in &delete {
        if !meta.scram.get(user).is_some_and(|m| m.contains_key(mechanism)) {
            return Err(MetaError::UnknownScramCredential {
                user: user.clone(),
                mechanism: mechanism.name().to_string(),
            });
        }
    }
    for (user, mechanism) in delete {
        if let Some(creds) = meta.scram.get_mut(&user) {
            creds.remove(&mechanism);
            if creds.is_empty() {
                meta.scram.remove(&user);
            }
        }
    }
    for (user, mechanism, credential) in upsert {
        meta.scram.entry(user).or_default().insert(mechanism, credential);
    }
    Ok(0)
}

/// The bootstrap users of the cluster's first start; a no-op once any bootstrap applied.
pub fn bootstrap_users(
    meta: &mut ClusterMeta,
    users: Vec<(String, Mechanism, ScramCredential)>,
    secret: Vec<u8>,
) -> Result<i64, MetaError> {
    if meta.users_bootstrapped {
        return Ok(0);
    }
    meta.users_bootstrapped = true;
    meta.sasl_secret = secret;
    for (user, mechanism, credential) in users {
        meta.scram.entry(user).or_default().insert(mechanism, credential);
    }
    Ok(0)
}
