//! AlterUserScramCredentials (v0): sets credentials from the salted passwords clients send
//! (the password itself never travels) and deletes credentials, in the controller group; one
//! result per user. As Kafka: a user named more than once is refused (DUPLICATE_RESOURCE), an
//! empty name or an iteration count outside 4096..=16384 is UNACCEPTABLE_CREDENTIAL, an
//! unknown mechanism UNSUPPORTED_SASL_MECHANISM, deleting what does not exist
//! RESOURCE_NOT_FOUND. The valid changes are applied together.

use super::context::Broker;
use crate::security::scram::{Mechanism, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::storage::meta_sm::MetaCommand;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// A refused user: the code and why.
type Refused = (ResponseError, String);

/// Handles an AlterUserScramCredentials request: for `super.users` only, until ACLs exist
/// (every user's result CLUSTER_AUTHORIZATION_FAILED otherwise).
pub async fn handle(
    broker: &dyn Broker,
    req: AlterUserScramCredentialsRequest,
    session: &super::Session,
) -> AlterUserScramCredentialsResponse {
    if !broker.config().is_super_user(&session.principal) {
        let names = req
            .deletions
            .iter()
            .map(|d| &d.name)
            .chain(req.upsertions.iter().map(|u| &u.name));
        let users: std::collections::BTreeSet<String> = names.map(|n| n.to_string()).collect();
        let refused = (ResponseError::ClusterAuthorizationFailed, String::new());
        return respond(Vec::new(), users.into_iter().map(|u| (u, refused.clone())).collect());
    }
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    let names = req
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(req.upsertions.iter().map(|u| &u.name));
    for name in names {
        *times.entry(name.to_string()).or_default() += 1;
    }
    let meta = broker.metadata();
    let mut refused: BTreeMap<String, Refused> = BTreeMap::new();
    let mut delete = Vec::new();
    let mut upsert = Vec::new();
    for d in &req.deletions {
        let user = d.name.to_string();
        let checked = check_user(&user, &times)
            .and_then(|_| mechanism(d.mechanism))
            .and_then(|m| match meta.scram.get(&user).is_some_and(|c| c.contains_key(&m)) {
                true => Ok(m),
                false => Err((
                    ResponseError::ResourceNotFound,
                    format!("Attempt to delete a user credential that does not exist: {user}"),
                )),
            });
        match checked {
            Ok(m) => delete.push((user, m)),
            Err(r) => drop(refused.entry(user).or_insert(r)),
        }
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        let checked = check_user(&user, &times)
            .and_then(|_| mechanism(u.mechanism))
            .and_then(|m| check_iterations(u.iterations).map(|i| (m, i)))
            .and_then(|(m, i)| check_sizes(m, &u.salt, &u.salted_password).map(|_| (m, i)));
        match checked {
            Ok((m, iterations)) => {
                let credential = ScramCredential::from_salted(m, &u.salted_password, u.salt.to_vec(), iterations);
                upsert.push((user, m, credential));
            }
            Err(r) => drop(refused.entry(user).or_insert(r)),
        }
    }
    let mut ok: Vec<String> = delete.iter().map(|(u, _)| u.clone()).collect();
    ok.extend(upsert.iter().map(|(u, _, _)| u.clone()));
    if !ok.is_empty() {
        let timeout_ms = broker.config().request_timeout_max_ms.min(30_000);
        if let Err((code, why)) = broker
            .propose(MetaCommand::AlterScram { upsert, delete }, timeout_ms)
            .await
        {
            for user in ok.drain(..) {
                refused.entry(user).or_insert((code, why.clone()));
            }
        }
    }
    respond(ok, refused)
}

/// The response: the users changed, then the refused ones with why.
fn respond(ok: Vec<String>, refused: BTreeMap<String, Refused>) -> AlterUserScramCredentialsResponse {
    let mut results: Vec<AlterUserScramCredentialsResult> = ok
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user))
                .with_error_message(None)
        })
        .collect();
    results.extend(refused.into_iter().map(|(user, (code, why))| {
        AlterUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user))
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(why)))
    }));
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// A salt of 1..=1024 bytes and a salted password as long as the mechanism's hash.
fn check_sizes(m: Mechanism, salt: &[u8], salted: &[u8]) -> Result<(), Refused> {
    let hash_bytes = match m {
        Mechanism::Sha256 => 32,
        Mechanism::Sha512 => 64,
    };
    if salt.is_empty() || salt.len() > 1024 || salted.len() != hash_bytes {
        return Err((
            ResponseError::UnacceptableCredential,
            "salt or salted password of a bad length".into(),
        ));
    }
    Ok(())
}

fn check_user(user: &str, times: &BTreeMap<String, usize>) -> Result<(), Refused> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    if times.get(user).copied().unwrap_or(0) > 1 {
        return Err((
            ResponseError::DuplicateResource,
            format!("A user credential cannot be altered twice in the same request: {user}"),
        ));
    }
    Ok(())
}

fn mechanism(code: i8) -> Result<Mechanism, Refused> {
    Mechanism::from_code(code).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        format!("Unknown SCRAM mechanism {code}"),
    ))
}

fn check_iterations(iterations: i32) -> Result<u32, Refused> {
    let too = |what: &str| (ResponseError::UnacceptableCredential, format!("Too {what} iterations"));
    match iterations {
        i if i < MIN_ITERATIONS as i32 => Err(too("few")),
        i if i > MAX_ITERATIONS as i32 => Err(too("many")),
        i => Ok(i as u32),
    }
}
