//! The chaos harness (`raftstream-chaos`, docs/reliability.md): a cluster of raftstream
//! processes, each in its own network namespace; a workload of idempotent librdkafka producers,
//! plain readers and a consumer group whose every invoke, acknowledgement, error, read and
//! commit goes to a history file; a nemesis injecting crashes, pauses and network partitions on
//! a schedule (where namespaces cannot be made, a fault-injecting proxy carries node-to-node
//! traffic instead); and a checker over the history plus a final read of every partition through Kafka
//! and of every replica's files.

pub mod availability;
pub mod checker;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod network;
pub mod nodes;
pub mod proxy;
pub mod replicas;
pub mod run;
pub mod scenarios;
pub mod timeline;
pub mod workload;
