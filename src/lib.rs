//! raftstream: a Kafka-compatible streaming broker. Every partition is a supervised actor that owns
//! its Raft group (openraft) and its log; connection actors decode Kafka requests and route them;
//! one committer actor batches fsyncs for every log. See `docs/architecture.md`.

// openraft's StorageError is large by design; every storage callback returns it.
#![allow(clippy::result_large_err)]

pub mod actors;
pub mod cluster;
pub mod config;
pub mod handlers;
pub mod inspect;
pub mod observability;
pub mod protocol;
pub mod security;
pub mod server;
pub mod storage;
pub mod tasks;
pub mod topic_config;
pub mod types;
