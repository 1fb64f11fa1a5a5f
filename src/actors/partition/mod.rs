//! Partitions: one supervised actor per partition replica, owning its openraft group and its
//! log; the produce path, leadership (elector, handoff), reassignment, and the registry handlers
//! read. May call storage, cluster and the committer; never the group coordinator.

pub mod actions;
pub mod actor;
pub mod confirm;
pub mod elector;
pub mod env;
pub mod group;
pub mod handoff;
pub mod produce;
pub mod reassign;
pub mod registry;
pub mod reports;
pub mod start;
pub mod supervisor;
