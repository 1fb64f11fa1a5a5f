//! FindCoordinator (v0–4; v4 batches keys): the group's coordinator is the leader of its
//! `__consumer_offsets` partition (on any node); the offsets topic is created on first use, as
//! Kafka does.
//! Transaction coordinators are not offered: a transactional id gets the non-retriable
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message saying so (InitProducerId answers the
//! same), so a transactional producer fails at once instead of retrying the retriable
//! COORDINATOR_NOT_AVAILABLE until its timeout. An unknown key type is INVALID_REQUEST.

use super::context::Broker;
use crate::security::SecurityProtocol;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// A refused lookup: the error code and the message clients show.
type Refusal = (ResponseError, &'static str);

/// Why a transactional id finds no coordinator.
pub const NO_TRANSACTIONS: &str = "transactions are not supported by this broker";

/// Handles a FindCoordinator request.
pub async fn handle(
    broker: &dyn Broker,
    req: FindCoordinatorRequest,
    version: i16,
    listener: SecurityProtocol,
) -> FindCoordinatorResponse {
    if version >= 4 {
        let mut coordinators = Vec::new();
        for key in &req.coordinator_keys {
            let outcome = find(broker, req.key_type, key.to_string(), listener).await;
            let c = Coordinator::default().with_key(key.clone()).with_error_message(None);
            coordinators.push(match outcome {
                Ok((id, host, port)) => c
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port),
                Err((code, message)) => c
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_static_str(message)))
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
            });
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let outcome = find(broker, req.key_type, req.key.to_string(), listener).await;
    match outcome {
        Ok((id, host, port)) => FindCoordinatorResponse::default()
            .with_error_message(None)
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host))
            .with_port(port),
        Err((code, message)) => {
            let r = FindCoordinatorResponse::default()
                .with_error_message(None)
                .with_error_code(code.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            // error_message exists from v1.
            if version >= 1 {
                r.with_error_message(Some(StrBytes::from_static_str(message)))
            } else {
                r
            }
        }
    }
}

/// The coordinator's (node id, host, port).
async fn find(
    broker: &dyn Broker,
    key_type: i8,
    key: String,
    listener: SecurityProtocol,
) -> Result<(i32, String, i32), Refusal> {
    let outcome = match key_type {
        GROUP_KEY => group_coordinator(broker, key, listener).await,
        TRANSACTION_KEY => Err((ResponseError::TransactionalIdAuthorizationFailed, NO_TRANSACTIONS)),
        _ => Err((ResponseError::InvalidRequest, "unknown coordinator key type")),
    };
    if let Err((code, _)) = outcome {
        crate::observability::note_error("FindCoordinator", code);
    }
    outcome
}

/// The leader of the group's offsets partition, wherever it is.
async fn group_coordinator(
    broker: &dyn Broker,
    group: String,
    listener: SecurityProtocol,
) -> Result<(i32, String, i32), Refusal> {
    let unavailable = |code: ResponseError| (code, "the group coordinator is not available yet");
    let id = broker.find_coordinator(group).await.map_err(unavailable)?;
    let (host, port) = super::endpoints::broker_on(&broker.metadata(), broker.node(), id, listener)
        .ok_or(unavailable(ResponseError::CoordinatorNotAvailable))?;
    Ok((id, host, port))
}
