//! One file per Kafka API. `APIS` is the table of what is served; ApiVersions is built from it,
//! and `decode` refuses anything outside it.

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod apis;
pub mod context;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod endpoints;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leader_view;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_offsets_v0;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod produce_batch;
pub mod produce_order;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod topic_validation;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use apis::{api_name, spec, ApiSpec, Body, APIS};
use bytes::{BufMut, Bytes, BytesMut};
use context::Broker;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::sync::Arc;

/// A decoded request.
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub body: Body,
    /// A Produce request's place in its connection's order (set by the connection).
    pub produce_turn: Option<produce_order::ProduceTurn>,
    /// Who sent it, through which listener (set by the connection).
    pub session: Option<Arc<Session>>,
}

/// The principal of a connection that authenticated nobody.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Who a connection serves, and through which listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The listener the connection came in on: Metadata tells addresses on it.
    pub listener: crate::security::SecurityProtocol,
    /// `User:<name>`: the SASL user, or a client certificate's CN, or `User:ANONYMOUS`.
    pub principal: String,
    /// The SASL user the connection authenticated as, if any.
    pub sasl_user: Option<String>,
}

impl Session {
    /// A connection on `listener` that authenticated nobody.
    pub fn anonymous(listener: crate::security::SecurityProtocol) -> Session {
        Session {
            listener,
            principal: ANONYMOUS.to_string(),
            sasl_user: None,
        }
    }
}

/// What to do with a frame.
pub enum Decoded {
    /// A request to handle.
    Request(Box<Request>),
    /// Answer at once with this response frame (ApiVersions version fallback).
    Respond(Bytes),
    /// Close the connection: the frame is not a request we can answer.
    Close(String),
}

/// Decodes one frame body (the bytes after the length prefix; at least 8 long).
pub fn decode(frame: Bytes) -> Decoded {
    if frame.len() < 8 {
        return Decoded::Close("frame shorter than a request header".into());
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        return Decoded::Close(format!("unknown api key {key}"));
    };
    let Some(spec) = spec(api_key) else {
        return Decoded::Close(format!("api {api_key:?} is not served"));
    };
    if version < spec.min || version > spec.max {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 with our ranges so the client can pick a version.
            return Decoded::Respond(api_versions::unsupported_version_response(correlation_id));
        }
        return Decoded::Close(format!("{api_key:?} v{version} is not served"));
    }
    let mut buf = frame;
    let header = match RequestHeader::decode(&mut buf, api_key.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => return Decoded::Close(format!("bad request header: {e}")),
    };
    let body = match apis::decode_body(api_key, &mut buf, version) {
        Ok(b) => b,
        Err(e) => return Decoded::Close(format!("bad {api_key:?} v{version} body: {e}")),
    };
    Decoded::Request(Box::new(Request {
        header,
        api_key,
        version,
        body,
        produce_turn: None,
        session: None,
    }))
}

/// A request's answer: the response frame (none for acks=0 Produce), and whether the
/// connection closes once it is written.
pub struct Reply {
    pub bytes: Option<Bytes>,
    /// Set after a Metadata answer that named no leader for some partition, from a node that
    /// knows it cannot: the client asks another node next (`metadata::send_elsewhere`).
    pub then_close: bool,
}

/// Handles a request. `Err` means the response could not be encoded: the connection must close
/// rather than leave the client waiting for an answer that never comes.
pub async fn handle(broker: Arc<dyn Broker>, req: Request) -> Result<Reply, String> {
    let started = std::time::Instant::now();
    let api = api_name(req.api_key);
    let result = dispatch(broker, req).await;
    metrics::counter!(crate::observability::REQUESTS, "api" => api).increment(1);
    metrics::histogram!(crate::observability::REQUEST_SECONDS, "api" => api).record(started.elapsed().as_secs_f64());
    result
}

/// What a handler knows about its request besides the body.
pub struct RequestCx {
    pub key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    /// A Produce request's place in its connection's order.
    pub produce_turn: Option<produce_order::ProduceTurn>,
    /// Who sent it, through which listener.
    pub session: Arc<Session>,
}

impl RequestCx {
    /// The reply carrying `body`, encoded for this request's version.
    pub fn answer<T: Encodable>(&self, body: &T) -> anyhow::Result<Reply> {
        Ok(self.reply(encode_response(self.key, self.correlation_id, self.version, body)?))
    }

    /// The reply carrying an encoded response frame.
    pub fn reply(&self, bytes: Bytes) -> Reply {
        Reply {
            bytes: Some(bytes),
            then_close: false,
        }
    }
}

async fn dispatch(broker: Arc<dyn Broker>, req: Request) -> Result<Reply, String> {
    let mut cx = RequestCx {
        key: req.api_key,
        version: req.version,
        correlation_id: req.header.correlation_id,
        client_id: req.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        produce_turn: req.produce_turn,
        session: req
            .session
            .unwrap_or_else(|| Arc::new(Session::anonymous(crate::security::SecurityProtocol::Plaintext))),
    };
    apis::serve(broker.as_ref(), req.body, &mut cx).await.map_err(|e| {
        let (api, version) = (cx.key, cx.version);
        tracing::error!(?api, version, error = %e, "could not encode a response; closing the connection");
        format!("could not encode {api:?} v{version} response: {e}")
    })
}

/// Encodes a response frame: length, header (v0 for ApiVersions), body.
pub fn encode_response<T: Encodable>(
    key: ApiKey,
    correlation_id: i32,
    version: i16,
    body: &T,
) -> anyhow::Result<Bytes> {
    let header_version = if key == ApiKey::ApiVersions {
        0
    } else {
        key.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version)? + body.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    Ok(buf.freeze())
}
