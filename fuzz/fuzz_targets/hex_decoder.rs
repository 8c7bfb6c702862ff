//! The branch-free hex decoder of HMAC signatures (`decode_hex_tag`) against the `hex` crate.
//! Random text is rarely exactly 64 characters long, so every input is also decoded as 64
//! bytes (repeated or cut to length): each run tests the digit arithmetic, not only the length
//! check. Either case, exactly 64 digits, nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::signing::decode_hex_tag;

fn check(text: &str) {
    let expected: Option<[u8; 32]> = (text.len() == 64)
        .then(|| hex::decode(text).ok())
        .flatten()
        .and_then(|bytes| bytes.try_into().ok());
    assert_eq!(decode_hex_tag(text), expected, "{text:?}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    if !data.is_empty() {
        let tiled: Vec<u8> = data.iter().copied().cycle().take(64).collect();
        if let Ok(text) = std::str::from_utf8(&tiled) {
            check(text);
        }
    }
});
