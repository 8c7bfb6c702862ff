//! The replay guard's open-addressing table (56-bit tags, expiries in whole seconds, rebuilds,
//! reused slots) under any sequence of uses with a clock that only moves forward: a signature
//! presented again before its window ends is always refused, and the table never panics.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis_core::replay::{Fingerprint, ReplayGuard};
use std::collections::HashMap;

#[derive(Debug, Arbitrary)]
struct Use {
    /// Which of a few dozen signatures (so repeats are common).
    signature: u8,
    /// How far the clock moves first, in milliseconds (up to about 65 s).
    advance_ms: u16,
    /// The window the signature's `recvWindow` gives, up to a minute.
    window_ms: u16,
}

fuzz_target!(|uses: Vec<Use>| {
    let mut guard = ReplayGuard::new();
    let mut now = 1_700_000_000_000i64;
    // When each signature was first let through, and until when it must stay refused.
    let mut live: HashMap<u8, i64> = HashMap::new();
    for step in uses {
        now += i64::from(step.advance_ms);
        let signature = step.signature % 48;
        let fingerprint: Fingerprint = u64::from(signature).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let expires = now + i64::from(step.window_ms.min(60_000));
        let accepted = guard.first_use(fingerprint, expires, now);
        match live.get(&signature) {
            Some(&until) if now <= until => {
                assert!(
                    !accepted,
                    "signature {signature} replayed at {now}, live until {until}"
                );
            }
            _ => {
                if accepted {
                    live.insert(signature, expires);
                }
            }
        }
    }
});
