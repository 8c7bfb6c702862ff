//! Is this really the exchange?
pub mod classify;
pub mod error;
pub mod phone;
pub mod variants;
