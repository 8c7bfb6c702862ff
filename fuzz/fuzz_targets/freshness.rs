//! The signed payload's freshness scanner (eight bytes at a time, judging each parameter by its
//! first byte) against a plain reading parameter by parameter: the same `timestamp` and
//! `recvWindow`, and the same error, first in payload order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::signing::{
    DEFAULT_RECV_WINDOW_MS, Freshness, MAX_RECV_WINDOW_MS, PayloadError,
};

/// Digits only, at least one and at most eighteen.
fn number(value: &str) -> Option<i64> {
    let fine = !value.is_empty() && value.len() <= 18 && value.bytes().all(|b| b.is_ascii_digit());
    fine.then(|| value.parse().ok()).flatten()
}

fn reference(payload: &str) -> Result<(i64, i64), PayloadError> {
    let (mut timestamp, mut window, mut duplicate) = (None, None, None);
    for parameter in payload.split('&') {
        let (slot, name, value) = if let Some(value) = parameter.strip_prefix("timestamp=") {
            (&mut timestamp, "timestamp", value)
        } else if let Some(value) = parameter.strip_prefix("recvWindow=") {
            (&mut window, "recvWindow", value)
        } else {
            continue;
        };
        if slot.is_some() {
            duplicate.get_or_insert(name);
        } else {
            *slot = Some(value);
        }
    }
    if let Some(name) = duplicate {
        return Err(PayloadError::DuplicateParameter(name));
    }
    let timestamp = timestamp.ok_or(PayloadError::MissingTimestamp)?;
    let timestamp = number(timestamp).ok_or(PayloadError::MalformedTimestamp)?;
    let window = match window {
        None => DEFAULT_RECV_WINDOW_MS,
        Some(text) => number(text)
            .filter(|w| (1..=MAX_RECV_WINDOW_MS).contains(w))
            .ok_or(PayloadError::RecvWindowOutOfRange)?,
    };
    Ok((timestamp, window))
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    let scanned = Freshness::from_payload(payload).map(|f| (f.timestamp_ms, f.recv_window_ms));
    assert_eq!(scanned, reference(payload), "{payload:?}");
});
