//! The actor tree: Broker (root supervisor) → Committer, Controller, GroupCoordinator,
//! PartitionSupervisor → Partition, Listener → Connection. See `docs/architecture.md`.
//!
//! The node and I/O actors live here; each subsystem has a folder: `partition/` (partition
//! actors, their Raft groups and supervision), `group/` (consumer groups and committed offsets),
//! `controller/` (the metadata Raft group and the routes to the other nodes).

pub mod ask;
pub mod broken_build;
pub mod broker;
pub mod broker_start;
pub mod committer;
pub mod connection;
pub mod connection_limits;
pub mod controller;
pub mod group;
pub mod http;
pub mod listener;
pub mod node;
pub mod partition;
