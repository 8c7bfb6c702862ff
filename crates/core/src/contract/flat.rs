//! The fastest way in, for the two types that are nearly the whole of a feed (`api_key.used`
//! and `login`): a byte scanner for a flat JSON object whose keys are all known, whose texts
//! have no escapes and whose counts are plain integers.
//!
//! Like `wire`, it is only a shortcut and never the judge: anything outside that narrow shape
//! (another type, an unknown or repeated key, a `null`, an escape, a number with a sign,
//! fraction or exponent, a nested value other than `ctx`) makes it answer `None`, and the line
//! goes on to the general readers. Within the shape, JSON's grammar is followed exactly
//! (whitespace, literals, control characters refused in texts), so what it accepts the derived
//! reader accepts and reads the same (tested against it on every field and on mutations).
//!
//! Keys, types and login methods are not read as texts and then compared: their first bytes
//! are compared with the names the scanner knows (`Scan::name`), and a time in the contract's
//! own form is read in place (`Scan::time`); every other text is searched for its end a word
//! at a time (`text_end`).

use super::model::{ContractEvent, EventBody, LoginMethod};
use crate::events::EventContext;
use crate::time::{MinuteCache, UnixMillis};

struct Scan<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next non-space byte, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_space();
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// A text without escapes or control characters, borrowed.
    fn text(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let rest = self.bytes.get(start..)?;
        let len = text_end(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        self.text.get(start..start + len)
    }

    /// A JSON integer `0` or `[1-9][0-9]*` that fits a `u64`, ending where a number must.
    fn count(&mut self) -> Option<u64> {
        self.skip_space();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.bytes.get(self.at) {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        let ends_well = matches!(
            self.bytes.get(self.at),
            Some(b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
        );
        (digits > 0 && !leading_zero && ends_well).then_some(value)
    }

    fn boolean(&mut self) -> Option<bool> {
        self.skip_space();
        let rest = self.bytes.get(self.at..)?;
        let (value, len) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.at += len;
        matches!(
            self.bytes.get(self.at),
            Some(b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
        )
        .then_some(value)
    }

    /// A text that must be one of `names` (keys, types, methods): its index, or `None` for
    /// any other text. The text is not searched for its end: its first bytes are compared
    /// with each name and its closing quote (a name has no quote, backslash or control
    /// character, so a text that starts so is that name), starting at `first` (the name that
    /// usually comes next) and wrapping around.
    fn name(&mut self, names: &[Name], first: usize) -> Option<usize> {
        self.expect(b'"')?;
        let word = word_at(self.bytes, self.at);
        let mut at = first;
        for _ in 0..names.len() {
            if at >= names.len() {
                at = 0;
            }
            let name = names.get(at)?;
            if word & name.mask == name.word {
                self.at += name.len;
                return Some(at);
            }
            at += 1;
        }
        None
    }

    /// A time: the contract's own form read through `times`, any other text as
    /// [`UnixMillis::parse_rfc3339`] reads it.
    fn time(&mut self, times: &mut MinuteCache) -> Option<UnixMillis> {
        self.skip_space();
        let start = self.at + 1;
        if self.bytes.get(self.at) == Some(&b'"')
            && self.bytes.get(start + 24) == Some(&b'"')
            && let Some(time) = self.text.get(start..start + 24).and_then(|t| times.read(t))
        {
            self.at = start + 25;
            return Some(time);
        }
        UnixMillis::parse_rfc3339(self.text()?).ok()
    }

    /// Calls `field` with the index in `keys` of each key of an object; a key not in `keys`,
    /// `None` from `field` or bad syntax end the scan (`field` refuses a repeated key).
    fn object(
        &mut self,
        keys: &[Name],
        mut field: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Some(());
        }
        let mut next = 0;
        loop {
            let key = self.name(keys, next)?;
            next = key + 1;
            self.expect(b':')?;
            field(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }
}

/// A text the scanner knows whole (a key, a type, a method) with its closing quote, as the
/// low bytes of a little-endian word, `mask` covering them.
#[derive(Clone, Copy)]
struct Name {
    word: u128,
    mask: u128,
    len: usize,
}

const fn name(text: &[u8]) -> Name {
    assert!(text.len() < 16, "a name and its quote fit a word");
    let mut word = 0u128;
    let mut at = 0;
    while at < text.len() {
        word |= (text[at] as u128) << (8 * at);
        at += 1;
    }
    word |= (b'"' as u128) << (8 * at);
    let len = text.len() + 1;
    Name {
        word,
        mask: (1u128 << (8 * len)) - 1,
        len,
    }
}

/// The sixteen bytes of `bytes` from `at` as a little-endian word, zeros past the end.
fn word_at(bytes: &[u8], at: usize) -> u128 {
    if let Some(Ok(word)) = bytes.get(at..at + 16).map(<[u8; 16]>::try_from) {
        return u128::from_le_bytes(word);
    }
    let mut word = [0u8; 16];
    for (slot, byte) in word.iter_mut().zip(bytes.get(at..).unwrap_or_default()) {
        *slot = *byte;
    }
    u128::from_le_bytes(word)
}

/// Where the first byte that ends or breaks a plain text is (`"`, `\` or a control
/// character), eight bytes at a time. Texts here are short (ids, times, IPs: mostly 8 to 24
/// bytes), too short for a vectorised search to pay; a word at a time took 900 instructions an
/// event off the scanner's 5,080 on the replay bench's feed (2026-12-07, branch `speed2`).
///
/// In each word, `x - 0x01..01 & !x & 0x80..80` sets the top bit of the lowest zero byte of
/// `x` (a borrow only reaches the bytes above a match, so no byte below the first match is
/// set); `x` is the word with `"` and with `\` taken out, and the word itself against `0x20`
/// finds a control character the same way (bytes of `0x80` and above keep their top bit and
/// are never taken for one). The lowest byte set in any of the three is the first match.
fn text_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().ok()?);
        let found = (zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | word.wrapping_sub(ONES * 0x20) & !word)
            & TOPS;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = words.remainder();
    let len = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + len)
}

/// Sets a slot once; a second value for the same key is refused.
fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

#[derive(Default)]
struct Fields<'a> {
    id: Option<&'a str>,
    ts: Option<UnixMillis>,
    kind: Option<usize>,
    account: Option<&'a str>,
    ctx: Option<Context<'a>>,
    method: Option<LoginMethod>,
    success: Option<bool>,
    key_id: Option<&'a str>,
    endpoint: Option<&'a str>,
    count: Option<u64>,
    window_s: Option<u64>,
}

/// The keys of an event, in the order the feeds write them (the search for a key starts
/// after the one before).
const KEYS: [Name; 11] = [
    name(b"id"),
    name(b"ts"),
    name(b"account"),
    name(b"type"),
    name(b"key_id"),
    name(b"endpoint"),
    name(b"count"),
    name(b"window_s"),
    name(b"method"),
    name(b"success"),
    name(b"ctx"),
];
/// The two types the scanner reads, indexed as [`KEYS`] is.
const TYPES: [Name; 2] = [name(b"api_key.used"), name(b"login")];
const API_KEY_USED: usize = 0;
const LOGIN: usize = 1;
const METHODS: [Name; 5] = [
    name(b"password"),
    name(b"passkey"),
    name(b"totp"),
    name(b"sms"),
    name(b"email_link"),
];
const LOGIN_METHODS: [LoginMethod; 5] = [
    LoginMethod::Password,
    LoginMethod::Passkey,
    LoginMethod::Totp,
    LoginMethod::Sms,
    LoginMethod::EmailLink,
];
/// The keys of `ctx`.
const CONTEXT_KEYS: [Name; 7] = [
    name(b"ip"),
    name(b"device_id"),
    name(b"channel"),
    name(b"user_agent"),
    name(b"session_id"),
    name(b"call_active"),
    name(b"remote_access"),
];

/// An event's `ctx` as the line has it: its texts borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Context<'a> {
    pub ip: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub call_active: Option<bool>,
    pub remote_access: Option<bool>,
}

/// The type-specific part of a line the scanner takes, its texts borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body<'a> {
    Login {
        method: LoginMethod,
        success: bool,
    },
    ApiKeyUsed {
        key_id: &'a str,
        endpoint: &'a str,
        count: u64,
        window_s: u64,
    },
}

/// A line the scanner takes, read but not yet copied out of the line: [`Flat::to_event`]
/// makes the owned event, `contract::reuse` copies it into the strings of an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flat<'a> {
    pub id: &'a str,
    pub ts: UnixMillis,
    pub account: Option<&'a str>,
    pub ctx: Context<'a>,
    pub body: Body<'a>,
}

impl Flat<'_> {
    /// The owned event, as the derived reader builds it.
    pub fn to_event(self) -> ContractEvent {
        let owned = |text: Option<&str>| text.map(str::to_owned);
        let ctx = &self.ctx;
        ContractEvent {
            id: self.id.to_owned(),
            ts: self.ts,
            account: owned(self.account),
            ctx: EventContext {
                ip: owned(ctx.ip),
                device_id: owned(ctx.device_id),
                user_agent: owned(ctx.user_agent),
                channel: owned(ctx.channel),
                session_id: owned(ctx.session_id),
                call_active: ctx.call_active,
                remote_access: ctx.remote_access,
            },
            body: self.body.to_body(str::to_owned),
        }
    }
}

impl Body<'_> {
    /// The owned body, each text made into a string by `string`.
    pub fn to_body(self, mut string: impl FnMut(&str) -> String) -> EventBody {
        match self {
            Body::Login { method, success } => EventBody::Login { method, success },
            Body::ApiKeyUsed {
                key_id,
                endpoint,
                count,
                window_s,
            } => EventBody::ApiKeyUsed {
                key_id: string(key_id),
                endpoint: string(endpoint),
                count,
                window_s,
            },
        }
    }
}

fn context<'a>(scan: &mut Scan<'a>) -> Option<Context<'a>> {
    let mut ctx = Context::default();
    scan.object(&CONTEXT_KEYS, |scan, key| match key {
        0 => once(&mut ctx.ip, scan.text()),
        1 => once(&mut ctx.device_id, scan.text()),
        2 => once(&mut ctx.channel, scan.text()),
        3 => once(&mut ctx.user_agent, scan.text()),
        4 => once(&mut ctx.session_id, scan.text()),
        5 => once(&mut ctx.call_active, scan.boolean()),
        6 => once(&mut ctx.remote_access, scan.boolean()),
        _ => None,
    })?;
    Some(ctx)
}

/// Reads `line` when it has the narrow shape; `None` otherwise.
pub fn read(line: &str) -> Option<ContractEvent> {
    scan(line, &mut MinuteCache::default()).map(Flat::to_event)
}

/// Scans `line` when it has the narrow shape, borrowing its texts; `None` otherwise. `times`
/// remembers the minute of the last time read (see [`MinuteCache`]).
pub(super) fn scan<'a>(line: &'a str, times: &mut MinuteCache) -> Option<Flat<'a>> {
    let mut scan = Scan {
        bytes: line.as_bytes(),
        text: line,
        at: 0,
    };
    let mut f = Fields::default();
    // Indexed as `KEYS` is.
    scan.object(&KEYS, |scan, key| match key {
        0 => once(&mut f.id, scan.text()),
        1 => once(&mut f.ts, scan.time(times)),
        2 => once(&mut f.account, scan.text()),
        3 => once(&mut f.kind, scan.name(&TYPES, 0)),
        4 => once(&mut f.key_id, scan.text()),
        5 => once(&mut f.endpoint, scan.text()),
        6 => once(&mut f.count, scan.count()),
        7 => once(&mut f.window_s, scan.count()),
        8 => once(
            &mut f.method,
            scan.name(&METHODS, 0)
                .and_then(|at| LOGIN_METHODS.get(at).copied()),
        ),
        9 => once(&mut f.success, scan.boolean()),
        10 => once(&mut f.ctx, context(scan)),
        _ => None,
    })?;
    scan.skip_space();
    if scan.at != line.len() {
        return None;
    }
    let login_fields = f.method.is_some() || f.success.is_some();
    let used_fields =
        f.key_id.is_some() || f.endpoint.is_some() || f.count.is_some() || f.window_s.is_some();
    let body = match f.kind? {
        LOGIN if !used_fields => Body::Login {
            method: f.method?,
            success: f.success?,
        },
        API_KEY_USED if !login_fields => Body::ApiKeyUsed {
            key_id: f.key_id?,
            endpoint: f.endpoint?,
            count: f.count?,
            window_s: f.window_s?,
        },
        _ => return None,
    };
    Some(Flat {
        id: f.id?,
        ts: f.ts?,
        account: f.account,
        ctx: f.ctx.unwrap_or_default(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::text_end;

    /// The byte-at-a-time search the word-at-a-time one stands for.
    fn plain(bytes: &[u8]) -> Option<usize> {
        bytes
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
    }

    #[test]
    fn finds_the_first_end_of_a_text_as_a_byte_at_a_time_does() {
        // Every byte value at every place of texts of 0 to 24 bytes, over a background of
        // bytes that end nothing (ASCII letters, and the top of the range: UTF-8 and 0xff),
        // with a second stop later on or none.
        for background in [b'a', b'~', 0x80, 0x9f, 0xff, b'!', b'#', b'[', b']', 0x20] {
            for len in 0..=24 {
                for place in 0..len {
                    for byte in 0..=255u8 {
                        let mut text = vec![background; len];
                        text[place] = byte;
                        assert_eq!(text_end(&text), plain(&text), "{text:?}");
                        if place + 2 < len {
                            text[place + 2] = b'"';
                            assert_eq!(text_end(&text), plain(&text), "{text:?}");
                        }
                    }
                }
                let text = vec![background; len];
                assert_eq!(text_end(&text), plain(&text));
            }
        }
    }
}
