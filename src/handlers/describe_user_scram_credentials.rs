//! DescribeUserScramCredentials (v0): each user's SCRAM mechanisms and iteration counts (never
//! a salt or key), from the replicated metadata. As Kafka: an unknown user gets
//! RESOURCE_NOT_FOUND, a user named twice one DUPLICATE_RESOURCE result; no names (or null)
//! lists every user with a credential. Only `super.users` may ask until ACLs exist.

use super::context::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// Handles a DescribeUserScramCredentials request: for `super.users` only, until ACLs exist
/// (CLUSTER_AUTHORIZATION_FAILED otherwise).
pub fn handle(
    broker: &dyn Broker,
    req: DescribeUserScramCredentialsRequest,
    session: &super::Session,
) -> DescribeUserScramCredentialsResponse {
    if !broker.config().is_super_user(&session.principal) {
        // As Kafka: the error at the top and in a result (without a name) per user named.
        let denied = ResponseError::ClusterAuthorizationFailed.code();
        let results = req
            .users
            .unwrap_or_default()
            .into_iter()
            .map(|_| {
                DescribeUserScramCredentialsResult::default()
                    .with_error_code(denied)
                    .with_error_message(None)
            })
            .collect();
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(denied)
            .with_error_message(None)
            .with_results(results);
    }
    let meta = broker.metadata();
    let named: Vec<String> = req
        .users
        .unwrap_or_default()
        .iter()
        .map(|u| u.name.to_string())
        .collect();
    let wanted: Vec<String> = if named.is_empty() {
        meta.scram.keys().cloned().collect()
    } else {
        named.clone()
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &named {
        *counts.entry(n).or_default() += 1;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut results = Vec::new();
    for user in &wanted {
        if !seen.insert(user.clone()) {
            continue;
        }
        let r = DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.clone()))
            .with_error_message(None);
        results.push(if counts.get(user.as_str()).copied().unwrap_or(1) > 1 {
            r.with_error_code(ResponseError::DuplicateResource.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                ))))
        } else {
            match meta.scram.get(user) {
                Some(creds) => r.with_credential_infos(
                    creds
                        .iter()
                        .map(|(m, c)| {
                            CredentialInfo::default()
                                .with_mechanism(m.code())
                                .with_iterations(c.iterations as i32)
                        })
                        .collect(),
                ),
                None => r
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )))),
            }
        });
    }
    DescribeUserScramCredentialsResponse::default()
        .with_error_message(None)
        .with_results(results)
}
