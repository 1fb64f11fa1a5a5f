//! raftstream: a Kafka-compatible streaming broker. Every partition is a supervised actor that owns
//! its Raft group (openraft) and its log; connection actors decode Kafka requests and route them;
//! one committer actor batches fsyncs for every log. See `docs/architecture.md`.

pub mod actors;
pub mod cluster;
pub mod config;
pub mod handlers;
pub mod protocol;
pub mod storage;
