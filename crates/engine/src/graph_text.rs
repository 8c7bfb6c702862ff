//! The entity graph's texts (`graph`): values and event ids in one paged arena, each after its
//! length in one byte, except an IPv4 address in its canonical form, which is its four bytes
//! after a length byte of 0. No text is empty: values are canonical (`links::canonical`
//! refuses an empty one) and the contract's ids have 1 to 200 characters; an empty one would
//! not be kept (its link not made). Five bytes where an IPv4 address's text took 8 to 16: most
//! of a roaming account's entities are IPs.

use super::{Arena, TEXT_PAGE};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// The length byte of an IPv4 address kept as its four bytes.
const V4: u8 = 0;

/// The stored form of a text: an IPv4 address (the only form the standard reader accepts is
/// the canonical one) as its bytes, any other text as itself.
enum Stored<'a> {
    V4([u8; 4]),
    Text(&'a str),
}

fn stored(text: &str) -> Option<Stored<'_>> {
    if let Some(ip) = crate::ipv4::parse_v4(text) {
        return Some(Stored::V4(ip.octets()));
    }
    u8::try_from(text.len())
        .is_ok_and(|len| len != V4)
        .then_some(Stored::Text(text))
}

impl Stored<'_> {
    fn len(&self) -> usize {
        match self {
            Stored::V4(octets) => 1 + octets.len(),
            Stored::Text(text) => 1 + text.len(),
        }
    }
}

/// The text at `at` in the arena.
pub(super) fn text_at(arena: &Arena, at: u32) -> Cow<'_, str> {
    let at = at as usize;
    match arena.get(at) {
        Some(&V4) => match arena.slice(at + 1, 4) {
            Some(&[a, b, c, d]) => Cow::Owned(Ipv4Addr::new(a, b, c, d).to_string()),
            _ => Cow::Borrowed(""),
        },
        Some(&len) => Cow::Borrowed(
            arena
                .slice(at + 1, usize::from(len))
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .unwrap_or(""),
        ),
        None => Cow::Borrowed(""),
    }
}

/// Whether the text at `at` is `text` (without writing out an IPv4 address).
pub(super) fn text_is(arena: &Arena, at: u32, text: &str) -> bool {
    let at = at as usize;
    match (arena.get(at), stored(text)) {
        (Some(&V4), Some(Stored::V4(octets))) => arena.slice(at + 1, 4) == Some(&octets[..]),
        (Some(&len), Some(Stored::Text(text))) if len != V4 => {
            arena.slice(at + 1, usize::from(len)) == Some(text.as_bytes())
        }
        _ => false,
    }
}

/// Bytes the text at `at` takes in the arena, with its length byte.
pub(super) fn stored_len(arena: &Arena, at: u32) -> usize {
    match arena.get(at as usize) {
        Some(&V4) => 5,
        Some(&len) => 1 + usize::from(len),
        None => 0,
    }
}

/// Writes a text into the arena, in one page; `None` when it cannot hold it.
pub(super) fn put_text(arena: &mut Arena, text: &str) -> Option<u32> {
    put_texts(arena, &[text])
}

/// Writes texts into the arena one right after the other, in one page; returns the first
/// one's place (`None` when the arena cannot hold them, or one is longer than 255 bytes).
pub(super) fn put_texts(arena: &mut Arena, texts: &[&str]) -> Option<u32> {
    let mut forms = [Stored::Text(""), Stored::Text("")];
    let forms = forms.get_mut(..texts.len())?;
    for (form, text) in forms.iter_mut().zip(texts) {
        *form = stored(text)?;
    }
    let total: usize = forms.iter().map(Stored::len).sum();
    // The end after padding, at most, must be a 32-bit place.
    u32::try_from(arena.len() + TEXT_PAGE + total).ok()?;
    let at = arena.alloc(total)?;
    let mut place = arena.slice_mut(at, total)?;
    for form in forms.iter() {
        let (len, bytes) = match form {
            Stored::V4(octets) => (V4, &octets[..]),
            Stored::Text(text) => (u8::try_from(text.len()).ok()?, text.as_bytes()),
        };
        place[0] = len;
        place[1..=bytes.len()].copy_from_slice(bytes);
        place = &mut place[1 + bytes.len()..];
    }
    u32::try_from(at).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_address_is_kept_in_five_bytes_and_read_back_as_written() {
        let mut arena = Arena::default();
        let at = put_texts(&mut arena, &["203.0.113.200", "e1"]).unwrap_or(u32::MAX);
        assert_eq!(arena.len(), 5 + 3);
        assert_eq!(text_at(&arena, at), "203.0.113.200");
        assert_eq!(stored_len(&arena, at), 5);
        assert_eq!(text_at(&arena, at + 5), "e1");
        assert!(text_is(&arena, at, "203.0.113.200"));
        assert!(!text_is(&arena, at, "203.0.113.201"));
        assert!(!text_is(&arena, at + 5, "203.0.113.200"));
        // Other spellings are other texts, kept as written.
        let other = put_text(&mut arena, "::ffff:203.0.113.200").unwrap_or(u32::MAX);
        assert_eq!(text_at(&arena, other), "::ffff:203.0.113.200");
        assert!(!text_is(&arena, other, "203.0.113.200"));
        assert_eq!(put_text(&mut arena, &"x".repeat(256)), None);
        assert_eq!(put_text(&mut arena, &"x".repeat(255)).map(|_| ()), Some(()));
    }
}
