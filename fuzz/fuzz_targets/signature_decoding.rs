//! The branch-free hex decoder of HMAC signatures against the `hex` crate (either case, exactly
//! 64 digits), and the base64 decoder of Ed25519 signatures never accepting anything that is not
//! 64 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::signing::{decode_base64_signature, decode_hex_tag};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected: Option<[u8; 32]> = (text.len() == 64)
        .then(|| hex::decode(text).ok())
        .flatten()
        .and_then(|bytes| bytes.try_into().ok());
    assert_eq!(decode_hex_tag(text), expected, "{text:?}");
    if let Some(raw) = decode_base64_signature(text) {
        assert_eq!(raw.len(), 64);
    }
});
