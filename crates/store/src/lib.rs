//! Storage adapters for the ports of `portcullis-app`.
