//! Reading a file of lines into one event over and over: [`EventBuffer`] copies the texts of
//! each line the byte scanner (`flat`) takes into the strings of the event before it, instead
//! of allocating new ones. A replay reads a million lines in a row and needs each event only
//! until the engine has applied it; allocating and freeing the six texts of an `api_key.used`
//! line (id, account, IP, channel, key id, endpoint) was a fifth of the scanner's instructions.
//!
//! What it reads is exactly what [`parse_line`] reads, refusals and their reasons included:
//! it uses the same scanner and falls back to `parse_line` itself for every other line.

use super::batch::{MAX_LINE_BYTES, parse_line};
use super::flat::{self, Body, Flat};
use super::model::{ContractEvent, EventBody};
use crate::events::EventContext;
use crate::time::MinuteCache;

/// Strings kept aside for a later line (a `login` has no key id or endpoint, so an
/// `api_key.used` after it takes theirs from here); more than this are dropped.
const MAX_SPARE: usize = 8;

/// One event, read again for each line (see the module documentation).
#[derive(Debug, Default)]
pub struct EventBuffer {
    event: Option<ContractEvent>,
    spare: Vec<String>,
    times: MinuteCache,
}

impl EventBuffer {
    /// Parses and validates one line as [`parse_line`] does; the event is valid until the
    /// next call.
    pub fn parse(&mut self, line: &str) -> Result<&ContractEvent, String> {
        let flat = if line.len() <= MAX_LINE_BYTES {
            flat::scan(line, &mut self.times)
        } else {
            None
        };
        let event = match flat {
            Some(flat) => self.fill(flat),
            None => {
                let event = parse_line(line)?;
                if let Some(old) = self.event.take() {
                    self.keep_strings_of(old);
                }
                return Ok(self.event.insert(event));
            }
        };
        event.validate().map_err(|e| e.to_string())?;
        Ok(event)
    }

    /// The event `flat` reads, in the strings of the one before where it had them.
    fn fill(&mut self, flat: Flat<'_>) -> &ContractEvent {
        let spare = &mut self.spare;
        // The first line is copied twice: once to have an event, once into it.
        let event = self.event.get_or_insert_with(|| flat.to_event());
        // Named field by field, so that a field added to the event cannot be left out here.
        let ContractEvent {
            id,
            ts,
            account,
            ctx,
            body,
        } = &mut *event;
        copy_into(id, flat.id);
        *ts = flat.ts;
        set(account, flat.account, spare);
        fill_context(ctx, &flat.ctx, spare);
        match (body, flat.body) {
            (
                EventBody::ApiKeyUsed {
                    key_id,
                    endpoint,
                    count,
                    window_s,
                },
                Body::ApiKeyUsed {
                    key_id: new_key,
                    endpoint: new_endpoint,
                    count: new_count,
                    window_s: new_window,
                },
            ) => {
                copy_into(key_id, new_key);
                copy_into(endpoint, new_endpoint);
                (*count, *window_s) = (new_count, new_window);
            }
            (body, new) => {
                let new = new.to_body(|value| text(spare, value));
                if let EventBody::ApiKeyUsed {
                    key_id, endpoint, ..
                } = std::mem::replace(body, new)
                {
                    keep(spare, key_id);
                    keep(spare, endpoint);
                }
            }
        }
        event
    }

    /// Keeps the id, account and context texts of an event that another replaces.
    fn keep_strings_of(&mut self, old: ContractEvent) {
        let ctx = old.ctx;
        keep(&mut self.spare, old.id);
        let texts = [old.account, ctx.ip, ctx.device_id, ctx.channel];
        for text in texts.into_iter().flatten() {
            keep(&mut self.spare, text);
        }
    }
}

/// Every field of `ctx` set from `flat` (named one by one, as in `fill`).
fn fill_context(ctx: &mut EventContext, flat: &flat::Context<'_>, spare: &mut Vec<String>) {
    let EventContext {
        ip,
        device_id,
        user_agent,
        channel,
        session_id,
        call_active,
        remote_access,
    } = ctx;
    set(ip, flat.ip, spare);
    set(device_id, flat.device_id, spare);
    set(user_agent, flat.user_agent, spare);
    set(channel, flat.channel, spare);
    set(session_id, flat.session_id, spare);
    *call_active = flat.call_active;
    *remote_access = flat.remote_access;
}

fn copy_into(string: &mut String, value: &str) {
    string.clear();
    string.push_str(value);
}

/// `value` in a spare string when there is one.
fn text(spare: &mut Vec<String>, value: &str) -> String {
    match spare.pop() {
        Some(mut string) => {
            copy_into(&mut string, value);
            string
        }
        None => value.to_owned(),
    }
}

fn keep(spare: &mut Vec<String>, string: String) {
    if spare.len() < MAX_SPARE {
        spare.push(string);
    }
}

/// Sets an optional text: in its own string when it had one, else in a spare one; a text
/// that goes away leaves its string aside.
fn set(slot: &mut Option<String>, value: Option<&str>, spare: &mut Vec<String>) {
    match (slot.as_mut(), value) {
        (Some(string), Some(value)) => copy_into(string, value),
        (None, Some(value)) => *slot = Some(text(spare, value)),
        (Some(_), None) => {
            if let Some(string) = slot.take() {
                keep(spare, string);
            }
        }
        (None, None) => {}
    }
}
