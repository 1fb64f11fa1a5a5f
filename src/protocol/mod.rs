//! Sans-IO Kafka protocol pieces: framing, record-batch validation, error codes.
//! Imports no actor and no storage.

pub mod batch;
pub mod batch_rules;
pub mod compression;
pub mod frame;
pub mod record_times;

pub use kafka_protocol::error::ResponseError;

/// The Kafka error code for `e`.
pub fn code(e: ResponseError) -> i16 {
    e.code()
}
