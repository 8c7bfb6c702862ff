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

use super::model::{ContractEvent, EventBody, LoginMethod};
use crate::events::EventContext;
use crate::time::UnixMillis;

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

    /// Calls `field` for each key of an object; `None` from it, a repeated key or bad syntax
    /// end the scan.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.text()?.as_bytes();
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
    ts: Option<&'a str>,
    kind: Option<&'a str>,
    account: Option<&'a str>,
    ctx: Option<Context<'a>>,
    method: Option<&'a str>,
    success: Option<bool>,
    key_id: Option<&'a str>,
    endpoint: Option<&'a str>,
    count: Option<u64>,
    window_s: Option<u64>,
}

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
    // Keys are matched as bytes: a `match` on `str` compares arm by arm through `memcmp`.
    scan.object(|scan, key| match key {
        b"ip" => once(&mut ctx.ip, scan.text()),
        b"device_id" => once(&mut ctx.device_id, scan.text()),
        b"user_agent" => once(&mut ctx.user_agent, scan.text()),
        b"channel" => once(&mut ctx.channel, scan.text()),
        b"session_id" => once(&mut ctx.session_id, scan.text()),
        b"call_active" => once(&mut ctx.call_active, scan.boolean()),
        b"remote_access" => once(&mut ctx.remote_access, scan.boolean()),
        _ => None,
    })?;
    Some(ctx)
}

/// Reads `line` when it has the narrow shape; `None` otherwise.
pub fn read(line: &str) -> Option<ContractEvent> {
    scan(line).map(Flat::to_event)
}

/// Scans `line` when it has the narrow shape, borrowing its texts; `None` otherwise.
pub(super) fn scan(line: &str) -> Option<Flat<'_>> {
    let mut scan = Scan {
        bytes: line.as_bytes(),
        text: line,
        at: 0,
    };
    let mut f = Fields::default();
    scan.object(|scan, key| match key {
        b"id" => once(&mut f.id, scan.text()),
        b"ts" => once(&mut f.ts, scan.text()),
        b"type" => once(&mut f.kind, scan.text()),
        b"account" => once(&mut f.account, scan.text()),
        b"ctx" => once(&mut f.ctx, context(scan)),
        b"method" => once(&mut f.method, scan.text()),
        b"success" => once(&mut f.success, scan.boolean()),
        b"key_id" => once(&mut f.key_id, scan.text()),
        b"endpoint" => once(&mut f.endpoint, scan.text()),
        b"count" => once(&mut f.count, scan.count()),
        b"window_s" => once(&mut f.window_s, scan.count()),
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
        "login" if !used_fields => Body::Login {
            method: match f.method? {
                "password" => LoginMethod::Password,
                "passkey" => LoginMethod::Passkey,
                "totp" => LoginMethod::Totp,
                "sms" => LoginMethod::Sms,
                "email_link" => LoginMethod::EmailLink,
                _ => return None,
            },
            success: f.success?,
        },
        "api_key.used" if !login_fields => Body::ApiKeyUsed {
            key_id: f.key_id?,
            endpoint: f.endpoint?,
            count: f.count?,
            window_s: f.window_s?,
        },
        _ => return None,
    };
    Some(Flat {
        id: f.id?,
        ts: UnixMillis::parse_rfc3339(f.ts?).ok()?,
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
