//! SaslAuthenticate (v0–2) reaching the handlers: on a listener without SASL, or on a
//! connection that already authenticated (the connection's SASL exchange answers it before
//! that, see `actors::connection::authenticate`). Kafka answers ILLEGAL_SASL_STATE then.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

/// An authentication step that is out of place.
pub fn handle(_req: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "no SASL authentication is expected on this connection now",
        )))
}
