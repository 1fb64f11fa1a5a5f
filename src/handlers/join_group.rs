//! JoinGroup (v0–7): joins a consumer group through the coordinator; the answer comes when the
//! rebalance completes. A first join from v4 on gets MEMBER_ID_REQUIRED and its member id
//! (KIP-394); a static member (group.instance.id, KIP-345) that restarts takes its old
//! identity and assignment back without a rebalance. A session timeout outside
//! `group.min.session.timeout.ms`..`group.max.session.timeout.ms` gets INVALID_SESSION_TIMEOUT.

use super::context::{Broker, JoinArgs};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

/// Handles a JoinGroup request.
pub async fn handle(broker: &dyn Broker, req: JoinGroupRequest, version: i16, client_id: String) -> JoinGroupResponse {
    let fail = |code: ResponseError, member: String| {
        crate::observability::note_error("JoinGroup", code);
        JoinGroupResponse::default()
            .with_error_code(code.code())
            .with_generation_id(-1)
            .with_member_id(StrBytes::from_string(member))
    };
    if req.group_id.is_empty() {
        return fail(ResponseError::InvalidGroupId, req.member_id.to_string());
    }
    if let Err(code) = broker.find_coordinator(req.group_id.to_string()).await {
        return fail(code, req.member_id.to_string());
    }
    let cfg = broker.config();
    let session_ms = u64::try_from(req.session_timeout_ms).unwrap_or(0);
    if !(cfg.group_min_session_timeout_ms..=cfg.group_max_session_timeout_ms).contains(&session_ms) {
        return fail(ResponseError::InvalidSessionTimeout, req.member_id.to_string());
    }
    // Taken as given, as Kafka does: a client's max.poll.interval.ms is its rebalance timeout
    // (at most i32::MAX ms, the client's own bound); v0 and a non-positive one: the session's.
    let rebalance_ms = match u64::try_from(req.rebalance_timeout_ms) {
        Ok(ms) if version > 0 && ms > 0 => ms,
        _ => session_ms,
    };
    let args = JoinArgs {
        group: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        client_id,
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        session_timeout: Duration::from_millis(session_ms),
        rebalance_timeout: Duration::from_millis(rebalance_ms),
        require_known_member_id: version >= 4,
        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
    };
    let joined = match broker.join_group(args).await {
        Ok(joined) => joined,
        Err(code) => return fail(code, req.member_id.to_string()),
    };
    if let Some(code) = joined.error {
        return fail(code, joined.member_id);
    }
    let mut resp = JoinGroupResponse::default()
        .with_generation_id(joined.generation)
        .with_protocol_name(Some(StrBytes::from_string(joined.protocol)))
        .with_leader(StrBytes::from_string(joined.leader))
        .with_member_id(StrBytes::from_string(joined.member_id))
        .with_members(
            joined
                .members
                .into_iter()
                .map(|(id, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(id))
                        .with_metadata(metadata)
                })
                .collect(),
        );
    // protocol_type exists from v7.
    if version >= 7 {
        resp = resp.with_protocol_type(Some(StrBytes::from_string(joined.protocol_type)));
    }
    resp
}
