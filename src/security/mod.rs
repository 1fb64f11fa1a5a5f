//! Security: the listeners clients connect to (each with its security protocol) and TLS on
//! them. Owns parsing of `listeners`/`advertised.listeners` and the TLS material; imports
//! nothing of the actors or handlers.

pub mod listeners;
pub mod sasl;
pub mod scram;
pub mod tls;

pub use listeners::{ListenerSpec, SecurityProtocol};
