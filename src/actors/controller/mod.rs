//! The controller: the metadata Raft group (topics, brokers, assignments, producer ids), the
//! cluster's boot and join, and the routes that reach the other nodes' groups. May call storage
//! and cluster; partitions are reached through their messages only.

pub mod actor;
pub mod boot;
pub mod group;
pub mod routes;
