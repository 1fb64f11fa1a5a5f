//! ApiVersions: the `APIS` table, and the KIP-511 fallback for versions above ours.

use super::APIS;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::messages::ApiKey;

/// The response listing every served API.
pub fn response(error_code: i16) -> ApiVersionsResponse {
    let keys = APIS
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.min)
                .with_max_version(s.max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(keys)
}

/// A v0 response with UNSUPPORTED_VERSION and our ranges.
pub fn unsupported_version_response(correlation_id: i32) -> Bytes {
    let body = response(ResponseError::UnsupportedVersion.code());
    super::encode_response(ApiKey::ApiVersions, correlation_id, 0, &body).expect("a v0 ApiVersions response encodes")
}
