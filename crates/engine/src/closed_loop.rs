//! What one event does to its own account's state, as an exchange that follows the decision
//! would leave it (the contract's closed loop): where and when the account was seen, keys and
//! addresses put in force or left waiting, money moved, calls and reports. Nothing here reads
//! or writes what other accounts see (`Global`): that is the event's `Fact`.

use crate::amounts::Flow;
use crate::decision::Verdict;
use crate::state::{
    AccountState, AddressStatus, MAX_ADDRESSES, MAX_CALLERS, MAX_KEYS, Tag, Waiting, WaitingChange,
    normalise_contact,
};
use portcullis_core::allowlist::IpAllowList;
use portcullis_core::contract::{Attestation, ContractEvent, EventBody};
use portcullis_core::events::Effective;
use portcullis_core::scope::{Scope, ScopeSet};

/// How long an account must have known an address before a refusal can spare it (see
/// [`RefusalGrounds`]).
const ESTABLISHED_ADDRESS_MS: i64 = 86_400_000;

/// What a refused withdrawal was refused for, as far as its address is concerned. A refusal
/// blocks the address, presumed the attacker's, except an address the account has known for
/// more than a day and still uses, when either
/// - the key's own limits refused it (scope or allow-list): a bot's held key change must not
///   cost the customer their cold wallet; or
/// - nothing named the address itself and the account knew it a day before its latest widening:
///   an attacker arrives with a widening and brings a destination of their own, so a refusal of
///   a payout to where the customer sent money before it is about who withdraws, not where to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RefusalGrounds {
    /// The withdrawal's key could not make it (scope or allow-list).
    pub key_limits: bool,
    /// The address itself was named: a confirmed fraud, another account's refusal, a network
    /// mark on the event's entities.
    pub address: bool,
}

impl RefusalGrounds {
    /// Whether a refused withdrawal leaves the address, first seen at `first`, usable.
    fn spare(self, first: i64, ts: i64, last_widening: Option<i64>) -> bool {
        let known_a_day = first <= ts - ESTABLISHED_ADDRESS_MS;
        let before_widening =
            last_widening.is_none_or(|widened| first <= widened - ESTABLISHED_ADDRESS_MS);
        known_a_day && (self.key_limits || (!self.address && before_widening))
    }
}

/// Whether an event's IP and device are new to the account, or were last seen a day or more
/// before it (or after: a late event): only then does the entity graph want them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fresh {
    pub ip: bool,
    pub device: bool,
}

/// Records where and when the account was seen (for "new IP", "new device", account age).
pub(crate) fn observe(state: &mut AccountState, event: &ContractEvent) -> Fresh {
    let ts = event.ts.as_millis();
    state.first_seen.earliest(ts);
    let succeeded = !matches!(event.body, EventBody::Login { success: false, .. });
    let stale = |before: Option<i64>| {
        before.is_none_or(|last| ts - last >= crate::graph::DAY_MS || ts < last)
    };
    let mut fresh = Fresh::default();
    if succeeded {
        if let Some(ip) = &event.ctx.ip {
            fresh.ip = stale(state.touch_ip(ip, ts));
        }
        if let Some(device) = &event.ctx.device_id {
            fresh.device = stale(state.touch_device(device, ts));
        }
    }
    fresh
}

/// What a `change.applied` or `change.cancelled` did.
pub(crate) enum Closed {
    /// The event is of another type.
    NotAClosure,
    Applied,
    Cancelled,
    /// Its change was not waiting (unknown, blocked, closed already): nothing changed.
    Unmatched,
}

/// Puts a waiting change in force, or drops it, as a revision 2 event says.
pub(crate) fn close_waiting(state: &mut AccountState, event: &ContractEvent) -> Closed {
    let ts = event.ts.as_millis();
    let (event_ref, applied) = match &event.body {
        EventBody::ChangeApplied { event_ref, .. } => (event_ref, true),
        EventBody::ChangeCancelled { event_ref, .. } => (event_ref, false),
        _ => return Closed::NotAClosure,
    };
    let Some(waiting) = state.take_waiting(Tag::of(event_ref)) else {
        return Closed::Unmatched;
    };
    match (waiting.change, applied) {
        (
            WaitingChange::Key {
                key,
                scopes,
                allowlist,
            },
            true,
        ) => set_key(state, key, scopes, allowlist, ts),
        (WaitingChange::Address { address }, true) => {
            let entry = state.addresses.touch(address, ts, MAX_ADDRESSES);
            // "Since it was added" counts from when it could first be used.
            entry.added_at.latest(ts);
            entry.status = AddressStatus::Usable;
            state.last_escalation_at.latest(ts);
        }
        (WaitingChange::Address { address }, false) => {
            let entry = state.addresses.touch(address, ts, MAX_ADDRESSES);
            if entry.status == AddressStatus::Held {
                entry.status = AddressStatus::Blocked;
            }
        }
        (WaitingChange::Key { .. }, false) => {}
    }
    if applied {
        Closed::Applied
    } else {
        Closed::Cancelled
    }
}

/// Puts a key's scopes and allow-list in force at `ts`; a widening starts the windows that
/// count "since a widening".
fn set_key(state: &mut AccountState, tag: Tag, scopes: ScopeSet, allowlist: IpAllowList, ts: i64) {
    let widening = widens(state, tag, scopes, &allowlist, ts);
    let key = state.keys.touch(tag, ts, MAX_KEYS);
    key.scopes = scopes;
    key.allowlist = allowlist;
    key.known = true;
    if widening {
        key.widened_at.latest(ts);
        state.last_escalation_at.latest(ts);
    }
}

/// Whether the change of a deciding event waits for a `change.applied` to be in force.
fn waits(event: &ContractEvent) -> bool {
    matches!(
        &event.body,
        EventBody::ApiKeyCreated {
            effective: Effective::Pending,
            ..
        } | EventBody::ApiKeyUpdated {
            effective: Effective::Pending,
            ..
        } | EventBody::AddressAdded {
            effective: Effective::Pending,
            ..
        }
    )
}

/// Applies the event as an exchange following `verdict` would. A held change, and an allowed
/// one marked `effective: pending`, wait for their `change.applied`; a blocked one never
/// applies. `grounds`: what a refused withdrawal was refused for.
pub(crate) fn apply(
    state: &mut AccountState,
    event: &ContractEvent,
    verdict: Verdict,
    grounds: RefusalGrounds,
) {
    let ts = event.ts.as_millis();
    let waiting = verdict != Verdict::Block && (verdict == Verdict::Hold || waits(event));
    let proceeds = verdict <= Verdict::Challenge && !waiting;
    if event.ctx.call_active == Some(true) {
        state.seldom_mut().last_call_at.latest(ts);
    }
    if event.ctx.remote_access == Some(true) {
        state.seldom_mut().last_remote_access_at.latest(ts);
    }
    match &event.body {
        EventBody::ApiKeyCreated {
            key_id,
            scopes,
            ip_allowlist,
            ..
        }
        | EventBody::ApiKeyUpdated {
            key_id,
            scopes,
            ip_allowlist,
            ..
        } => {
            let tag = Tag::of(key_id);
            if proceeds {
                set_key(state, tag, *scopes, ip_allowlist.clone(), ts);
                return;
            }
            let key = state.keys.touch(tag, ts, MAX_KEYS);
            if !key.known {
                // A held, blocked or waiting new key exists without the money-moving scopes.
                key.scopes = scopes
                    .iter()
                    .filter(|s| !matches!(s, Scope::Withdraw | Scope::Transfer))
                    .collect();
                key.allowlist = ip_allowlist.clone();
            }
            key.known = true;
            if waiting {
                state.wait_for(Waiting {
                    event: Tag::of(&event.id),
                    requested_at: ts,
                    change: WaitingChange::Key {
                        key: tag,
                        scopes: *scopes,
                        allowlist: ip_allowlist.clone(),
                    },
                });
            }
        }
        EventBody::ApiKeyDeleted { key_id } => {
            let tag = Tag::of(key_id);
            let key = state.keys.touch(tag, ts, MAX_KEYS);
            key.known = true;
            key.scopes = ScopeSet::EMPTY;
            // A deleted key's waiting changes can never apply.
            state
                .drop_waiting(|w| matches!(w.change, WaitingChange::Key { key, .. } if key == tag));
        }
        EventBody::AddressAdded { address, .. } => {
            let tag = Tag::of_address(address);
            let entry = state.addresses.touch(tag, ts, MAX_ADDRESSES);
            entry.added_at.latest(ts);
            entry.status = match verdict {
                Verdict::Block => AddressStatus::Blocked,
                _ if waiting => AddressStatus::Held,
                _ => AddressStatus::Usable,
            };
            if proceeds {
                state.last_escalation_at.latest(ts);
            } else if waiting {
                state.wait_for(Waiting {
                    event: Tag::of(&event.id),
                    requested_at: ts,
                    change: WaitingChange::Address { address: tag },
                });
            }
        }
        EventBody::WithdrawalRequested {
            address,
            amount_usd,
            ..
        } => {
            let tag = Tag::of_address(address);
            let last_widening = state.last_escalation_at.get();
            let spared = state.addresses.get(tag).is_some_and(|(seen, entry)| {
                matches!(
                    entry.status,
                    AddressStatus::Usable | AddressStatus::UnderReview
                ) && grounds.spare(seen.first, ts, last_widening)
            });
            let entry = state.addresses.touch(tag, ts, MAX_ADDRESSES);
            entry.status = match (verdict, entry.status) {
                (Verdict::Block, _) if !spared => AddressStatus::Blocked,
                // A held withdrawal puts its address under review for the account's next sends.
                (Verdict::Hold, AddressStatus::Usable) => AddressStatus::UnderReview,
                // One that goes ahead ends it: the exchange let money reach the address.
                (_, AddressStatus::UnderReview) if proceeds => AddressStatus::Usable,
                (_, status) => status,
            };
            if proceeds {
                state.amounts.remember(Flow::Withdrawal, ts, *amount_usd);
                state.max_withdrawal_usd = state.max_withdrawal_usd.max(*amount_usd);
            }
        }
        EventBody::Deposit { amount_usd, .. } => {
            state.amounts.remember(Flow::Deposit, ts, *amount_usd)
        }
        EventBody::ContactReported { from, .. } => {
            state.seldom_mut().last_contact_reported_at.latest(ts);
            (state.seldom_mut().callers).touch(Tag::of(&normalise_contact(from)), ts, MAX_CALLERS);
        }
        EventBody::ContactInboundCall {
            from, attestation, ..
        } => {
            state.seldom_mut().last_call_at.latest(ts);
            (state.seldom_mut().callers).touch(Tag::of(&normalise_contact(from)), ts, MAX_CALLERS);
            if matches!(attestation, Attestation::C | Attestation::None) {
                state.seldom_mut().last_unverified_call_at.latest(ts);
            }
        }
        _ => {}
    }
}

/// Whether a key change widens it, as the features' `escalation` says: adds a money-moving
/// scope, or, on a key that can move money, widens its allow-list or allow-lists a network the
/// account was never seen in (a server the crew brings), at `ts`.
fn widens(
    state: &AccountState,
    key_id: Tag,
    scopes: ScopeSet,
    allowlist: &portcullis_core::allowlist::IpAllowList,
    ts: i64,
) -> bool {
    let before = state
        .keys
        .get(key_id)
        .map(|(_, k)| k.clone())
        .unwrap_or_default();
    let added = scopes.added_since(before.scopes);
    let moves_money = scopes.contains(Scope::Withdraw) || scopes.contains(Scope::Transfer);
    added.contains(Scope::Withdraw)
        || added.contains(Scope::Transfer)
        || (moves_money
            && (crate::features::allowlist_widened(
                before.known.then_some(&before.allowlist),
                allowlist,
            ) || crate::features::unseen_networks(state, allowlist, ts)
                .next()
                .is_some()))
}

#[cfg(test)]
mod tests {
    use super::RefusalGrounds;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_refusal_spares_only_an_address_known_a_day_and_not_named_itself() {
        let now = 30 * DAY;
        let key = RefusalGrounds {
            key_limits: true,
            address: false,
        };
        let shape = RefusalGrounds::default();
        let named = RefusalGrounds {
            key_limits: false,
            address: true,
        };
        // Known for ten days, the latest widening yesterday: used before it.
        let (old, widened) = (now - 10 * DAY, Some(now - DAY));
        assert!(key.spare(old, now, widened));
        assert!(shape.spare(old, now, widened));
        assert!(!named.spare(old, now, widened));
        // Met an hour before the widening, or after it: the attacker's, for all but the key's
        // own limits.
        let met_at_widening = now - DAY - 3_600_000;
        assert!(!shape.spare(met_at_widening, now, widened));
        assert!(key.spare(met_at_widening, now, widened));
        // Never widened: known a day is enough.
        assert!(shape.spare(now - DAY, now, None));
        // New today: blocked, whatever refused it.
        for grounds in [key, shape, named] {
            assert!(!grounds.spare(now - DAY + 1, now, None));
        }
    }
}
