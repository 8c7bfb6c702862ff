//! Is this really the exchange?
pub mod error;
pub mod phone;
