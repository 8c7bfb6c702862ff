//! Portcullis' use cases and the ports they depend on.

pub mod ports;
