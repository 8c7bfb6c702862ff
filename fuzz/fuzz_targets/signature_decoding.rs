//! The signature and key decoders that are not the hex tag (which has its own target,
//! `hex_decoder`): the base64 decoder of Ed25519 signatures never accepts anything that is not
//! 64 bytes and agrees with the `base64` crate's standard engine; the Ed25519 public key reader
//! (hex, base64 or PEM) never panics and only ever yields 32 bytes that read back the same.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portcullis_core::signing::{Ed25519PublicKey, decode_base64_signature};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected: Option<[u8; 64]> = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok());
    assert_eq!(decode_base64_signature(text), expected, "{text:?}");
    if let Ok(key) = Ed25519PublicKey::parse(text) {
        assert_eq!(Ed25519PublicKey::parse(&key.to_hex()), Ok(key));
    }
});
