//! Consumer groups: the coordinator actor, the group state machine (join/sync/heartbeat), and
//! committed offsets kept in the Raft-replicated `__consumer_offsets` partitions. Reaches those
//! partitions through the partition registry only.

pub mod coordinator;
pub mod load;
pub mod ops;
pub mod persist;
pub mod state;
pub mod store;
