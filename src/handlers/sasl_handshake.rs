//! SaslHandshake (v0–1) reaching the handlers: on a listener without SASL, or on a connection
//! that already authenticated (the connection's SASL exchange answers it before that, see
//! `actors::connection::authenticate`). Kafka answers ILLEGAL_SASL_STATE then.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

/// A handshake that is out of place.
pub fn handle(_req: SaslHandshakeRequest) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}
