//! The actor tree: Broker (root supervisor) → Committer, Controller, PartitionSupervisor →
//! Partition, Listener → Connection. See `docs/architecture.md`.

pub mod broken_build;
pub mod broker;
pub mod cluster_boot;
pub mod cluster_routes;
pub mod committer;
pub mod connection;
pub mod controller;
pub mod controller_group;
pub mod coordinator_load;
pub mod coordinator_store;
pub mod group_coordinator;
pub mod group_state;
pub mod http;
pub mod listener;
pub mod node;
pub mod partition;
pub mod partition_confirm;
pub mod partition_elector;
pub mod partition_group;
pub mod partition_handoff;
pub mod partition_reassign;
pub mod partition_supervisor;
pub mod registry;
