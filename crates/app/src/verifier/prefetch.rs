//! Asking the processor to start loading a cache line: the one `unsafe` call in the workspace.
//!
//! A replay guard's slot is a random place in a table of megabytes, so finding it waits on
//! main memory for about as long as the rest of a verification's bookkeeping takes. Its
//! address is known before the signature is computed; a prefetch lets the load run while the
//! HMAC does. The benchmark that justifies the exception is in docs/design/decisions.md
//! ("Prefetching the replay slot").
//!
//! Stable Rust offers no safe prefetch: `_mm_prefetch` is a `#[target_feature(enable = "sse")]`
//! function, callable without `unsafe` only from functions that enable the feature themselves.

/// Hints that the cache line holding `address` will be read soon. Any address is fine: the
/// instruction never faults and nothing is read on the program's behalf, so a stale or
/// invalid address costs at most a wasted load.
#[inline(always)]
pub fn prefetch(address: usize) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: PREFETCHT0 belongs to SSE, which every x86-64 processor implements (it is part
    // of the architecture's baseline, `target_feature = "sse"` on every x86_64 target). It has
    // no architectural effect: it does not fault, whatever the address, and writes nothing.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::without_provenance(address));
    }
    // Elsewhere the hint is simply not given (aarch64's prefetch is not yet stable).
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
