//! InitProducerId for idempotent producers (no transactions): a producer id unique across
//! restarts (reserved in blocks through the controller group), epoch 0; a client that sends its
//! current id and epoch (v3+, KIP-360) gets the epoch bumped.

use super::context::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

/// Handles an InitProducerId request.
pub async fn handle(broker: &dyn Broker, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default();
    match &req.transactional_id {
        None => {}
        Some(id) if id.is_empty() => return resp.with_error_code(ResponseError::InvalidRequest.code()),
        // Transactions are not offered; refusing (non-retriable, as FindCoordinator does for a
        // transactional id) is clearer than half-working.
        Some(_) => return resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        tracing::debug!(target: "raftstream::idempotence", producer = req.producer_id.0,
            epoch = req.producer_epoch + 1, "producer epoch bumped");
        return resp
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
    }
    match broker.allocate_producer_id().await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(code) => resp
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
