//! The features a rule can read, computed for one event from the account's state before the
//! event is applied. Times are minutes or days of event time; "never" is a very large number so
//! that `minutes_since_call <= 60` is simply false.

use crate::amounts::Flow;
use crate::state::{AccountState, AddressStatus, Global, Tag};
use cel::common::value::CowVal;
use cel::context::VariableResolver;
use portcullis_core::allowlist::{IpAllowList, IpNet};
use portcullis_core::contract::{ContractEvent, EventBody};
use portcullis_core::events::StepUp;
use portcullis_core::scope::Scope;
use std::net::IpAddr;

/// "Never happened", in minutes or days.
pub const NEVER: f64 = 1e9;
const MINUTE_MS: f64 = 60_000.0;
const DAY_MS: i64 = 86_400_000;
/// How long a held withdrawal keeps its address under review for the account's next sends,
/// counted from the latest time the account named the address: the day an exchange takes to
/// review a hold. The contract has no event for a withdrawal's release, so it ends by itself.
pub const REVIEW_MS: i64 = DAY_MS;

/// Every feature, by name, as rules see them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Features {
    pub event_type: String,
    pub amount_usd: f64,
    pub via_api: bool,
    pub adds_withdraw: bool,
    pub allowlist_loosened: bool,
    pub allowlist_removed: bool,
    pub allowlist_unseen_ips: i64,
    pub escalation: bool,
    pub step_up: String,
    pub step_up_weak: bool,
    pub call_active: bool,
    pub remote_access: bool,
    pub minutes_since_call: f64,
    pub minutes_since_unverified_call: f64,
    pub minutes_since_remote_access: f64,
    pub days_since_contact_reported: f64,
    pub minutes_since_escalation: f64,
    pub ip_new: bool,
    /// Minutes since the event's IP was first seen on the account (0 when new).
    pub ip_minutes_known: f64,
    pub device_new: bool,
    /// A number that called or was reported by this customer is in a confirmed fraud.
    pub fraud_caller_contact: bool,
    pub key_known: bool,
    pub key_lacks_withdraw: bool,
    pub ip_outside_key_allowlist: bool,
    pub key_minutes_since_widened: f64,
    pub address_new: bool,
    pub address_minutes_since_added: f64,
    /// Minutes since the account first named the address (added it, or withdrew to it; 0 when
    /// new): how long a destination has been the customer's, whether or not it was ever added.
    pub address_minutes_known: f64,
    pub address_blocked: bool,
    pub address_held: bool,
    /// A withdrawal of this account to the address was held, and the account named the address
    /// within the last day (`REVIEW_MS`): the address is under review with it.
    pub address_under_review: bool,
    pub address_fraud: bool,
    /// Another account's held or blocked withdrawal or allow-listing named this address this
    /// past week (see `network`).
    pub address_flagged_elsewhere: bool,
    /// The key's new allow-list holds an IP, not seen on this account before, that another
    /// account's held or blocked key change or API withdrawal used this past week.
    pub allowlist_ip_flagged_elsewhere: bool,
    /// The event comes from such an IP.
    pub ip_flagged_elsewhere: bool,
    pub amount_vs_max: f64,
    pub prior_withdrawals_30d: i64,
    pub withdrawn_24h_usd: f64,
    pub deposits_7d_usd: f64,
    pub share_of_deposits: f64,
    pub market_volume_ratio: f64,
    pub market_volatility: f64,
    pub account_age_days: f64,
    /// Unrelated accounts of the largest open campaign alert on the event's address,
    /// allow-listed IPs, IP or device (0: none).
    pub campaign_accounts: i64,
    /// The same for the numbers that called the customer or that they reported.
    pub caller_campaign_accounts: i64,
    /// The event's address, allow-listed IPs, IP or device carry a confirmed-fraud mark (or a
    /// `force` override).
    pub network_marked: bool,
    /// Hops from the confirmed entity to the nearest of them: 0 the entity itself, 1 an IP the
    /// defrauded account allow-listed, 2 an entity of a linked account; 99 when not marked.
    pub network_hops: i64,
    /// The event's account carries a confirmed-fraud mark.
    pub account_marked: bool,
    /// Hops from the confirmed entity to the account (1: it is linked to it); 99 when not.
    pub account_network_hops: i64,
    /// The path of the nearest mark, `kind:value > ...` from the confirmed entity (provenance).
    pub network_path: String,
}

/// Declares the names rules may use and each one's reader, in one list (one order).
macro_rules! feature_table {
    ($($name:ident),* $(,)?) => {
        /// The names rules may use (anything else is refused when a policy is loaded).
        pub const FEATURE_NAMES: &[&str] = &[$(stringify!($name)),*];

        /// Each feature's reader, in the order of `FEATURE_NAMES`.
        const READERS: &[Reader] = &[$(read::$name),*];

        /// One reader per feature, named after it.
        mod read {
            use super::{Features, Scalar};
            $(pub(super) fn $name(f: &Features) -> Scalar<'_> {
                Scalar::from(&f.$name)
            })*
        }
    };
}

feature_table!(
    event_type,
    amount_usd,
    via_api,
    adds_withdraw,
    allowlist_loosened,
    allowlist_removed,
    allowlist_unseen_ips,
    escalation,
    step_up,
    step_up_weak,
    call_active,
    remote_access,
    minutes_since_call,
    minutes_since_unverified_call,
    minutes_since_remote_access,
    days_since_contact_reported,
    minutes_since_escalation,
    ip_new,
    ip_minutes_known,
    fraud_caller_contact,
    device_new,
    key_known,
    key_lacks_withdraw,
    ip_outside_key_allowlist,
    key_minutes_since_widened,
    address_new,
    address_minutes_since_added,
    address_minutes_known,
    address_blocked,
    address_held,
    address_under_review,
    address_fraud,
    address_flagged_elsewhere,
    allowlist_ip_flagged_elsewhere,
    ip_flagged_elsewhere,
    amount_vs_max,
    prior_withdrawals_30d,
    withdrawn_24h_usd,
    deposits_7d_usd,
    share_of_deposits,
    market_volume_ratio,
    market_volatility,
    account_age_days,
    campaign_accounts,
    caller_campaign_accounts,
    network_marked,
    network_hops,
    account_marked,
    account_network_hops,
    network_path,
);

/// Reads one feature's value (see [`Features::reader`]).
pub(crate) type Reader = fn(&Features) -> Scalar<'_>;

/// A feature's value, read without CEL (policy gates, plain rules; the CEL resolver converts it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(&'a str),
}

impl From<&bool> for Scalar<'_> {
    fn from(value: &bool) -> Self {
        Scalar::Bool(*value)
    }
}

impl From<&i64> for Scalar<'_> {
    fn from(value: &i64) -> Self {
        Scalar::Int(*value)
    }
}

impl From<&f64> for Scalar<'_> {
    fn from(value: &f64) -> Self {
        Scalar::Float(*value)
    }
}

impl<'a> From<&'a String> for Scalar<'a> {
    fn from(value: &'a String) -> Self {
        Scalar::Text(value)
    }
}

impl Features {
    /// The reader of the feature `name`, if it is one of `FEATURE_NAMES`.
    pub(crate) fn reader(name: &str) -> Option<Reader> {
        let index = FEATURE_NAMES.iter().position(|known| *known == name)?;
        READERS.get(index).copied()
    }

    /// The value of the feature `name` (one of `FEATURE_NAMES`).
    pub(crate) fn scalar(&self, name: &str) -> Option<Scalar<'_>> {
        Features::reader(name).map(|read| read(self))
    }
}

impl VariableResolver for Features {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        use cel::Value;
        let value: Value = match self.scalar(variable)? {
            Scalar::Bool(b) => b.into(),
            Scalar::Int(n) => n.into(),
            Scalar::Float(x) => x.into(),
            Scalar::Text(text) => Value::String(text.to_owned().into()),
        };
        value.try_into().ok().map(CowVal::Owned)
    }
}

fn minutes_since(at: Option<i64>, ts: i64) -> f64 {
    at.map_or(NEVER, |at| ((ts - at) as f64 / MINUTE_MS).max(0.0))
}

/// Market reports from the hour around `ts`.
fn recent_markets(global: &Global, ts: i64) -> impl Iterator<Item = &crate::state::Market> {
    global
        .markets
        .values()
        .map(|(_, market)| market)
        .filter(move |m| (ts - m.ts).abs() <= 3_600_000)
}

/// Whether `ip` was seen on this account before `ts`.
fn seen_before(state: &AccountState, ip: &str, ts: i64) -> bool {
    state.ip_seen(ip).is_some_and(|seen| seen.first < ts)
}

/// The networks of an allow-list that hold no address this account was seen using before `ts`.
pub(crate) fn unseen_networks<'a>(
    state: &'a AccountState,
    allowlist: &'a IpAllowList,
    ts: i64,
) -> impl Iterator<Item = &'a IpNet> + 'a {
    allowlist.networks().iter().filter(move |net| {
        !state
            .ip_addresses()
            .any(|(seen, ip)| seen.first < ts && ip.is_some_and(|ip| net.contains(&ip)))
    })
}

/// The single addresses (`/32`, `/128`) among an allow-list's unseen networks: wider entries
/// name no one host, so they are never taken for an attacker's server.
pub(crate) fn unseen_hosts<'a>(
    state: &'a AccountState,
    allowlist: &'a IpAllowList,
    ts: i64,
) -> impl Iterator<Item = IpAddr> + 'a {
    unseen_networks(state, allowlist, ts)
        .filter(|net| net.prefix_len() == net.max_prefix_len())
        .map(IpNet::addr)
}

/// Whether an allow-list lets a key be used from more of the internet than `before` did (none:
/// a new key), by width rather than by place: it became unrestricted, or it admits a network
/// wider than one host that the old list did not cover (`0.0.0.0/0` beside the bot's server is
/// no restriction at all). A single host that moves in or out is a change of place, which
/// `allowlist_unseen_ips` judges (the account's own server, or one it has never used).
pub(crate) fn allowlist_widened(before: Option<&IpAllowList>, after: &IpAllowList) -> bool {
    if after.is_unrestricted() {
        return before.is_none_or(|before| !before.is_unrestricted());
    }
    let covered = |net: &IpNet| {
        before.is_some_and(|b| b.is_unrestricted() || b.networks().iter().any(|o| o.contains(net)))
    };
    (after.networks().iter()).any(|net| net.prefix_len() < net.max_prefix_len() && !covered(net))
}

impl Features {
    /// The features of `event` against the state before it; `account` is the tag of its
    /// account (to tell other accounts' marks from its own).
    pub(crate) fn compute(
        state: &AccountState,
        global: &Global,
        event: &ContractEvent,
        account: Tag,
        network: &crate::entities::NetworkFeatures,
    ) -> Self {
        let ts = event.ts.as_millis();
        let event_ip = event.ctx.ip.as_deref().and_then(crate::ipv4::parse);
        let mut f = Features {
            event_type: event.body.type_name().to_owned(),
            call_active: event.ctx.call_active == Some(true),
            remote_access: event.ctx.remote_access == Some(true),
            minutes_since_call: minutes_since(state.seldom_time(|s| s.last_call_at), ts),
            minutes_since_unverified_call: minutes_since(
                state.seldom_time(|s| s.last_unverified_call_at),
                ts,
            ),
            minutes_since_remote_access: minutes_since(
                state.seldom_time(|s| s.last_remote_access_at),
                ts,
            ),
            days_since_contact_reported: minutes_since(
                state.seldom_time(|s| s.last_contact_reported_at),
                ts,
            ) / 1440.0,
            minutes_since_escalation: minutes_since(state.last_escalation_at.get(), ts),
            ip_new: event
                .ctx
                .ip
                .as_deref()
                .is_some_and(|ip| !seen_before(state, ip, ts)),
            device_new: (event.ctx.device_id.as_deref())
                .is_some_and(|d| state.device_seen(d).is_none_or(|s| s.first >= ts)),
            ip_minutes_known: event
                .ctx
                .ip
                .as_deref()
                .and_then(|ip| state.ip_seen(ip))
                .map_or(0.0, |seen| minutes_since(Some(seen.first), ts)),
            fraud_caller_contact: state.seldom().is_some_and(|s| {
                (s.callers.iter()).any(|(number, _, _)| global.fraud_contacts.contains(&number))
            }),
            key_minutes_since_widened: NEVER,
            address_minutes_since_added: NEVER,
            account_age_days: minutes_since(state.first_seen.get(), ts) / 1440.0,
            market_volume_ratio: recent_markets(global, ts)
                .map(|m| m.volume_ratio)
                .fold(0.0, f64::max),
            market_volatility: recent_markets(global, ts)
                .map(|m| m.volatility)
                .fold(0.0, f64::max),
            ip_flagged_elsewhere: event_ip
                .is_some_and(|ip| global.campaign.ip_marked_elsewhere(ip, account, ts)),
            campaign_accounts: network.campaign_accounts,
            caller_campaign_accounts: network.caller_campaign_accounts,
            network_marked: network.network_hops < crate::entities::NO_MARK_HOPS,
            network_hops: network.network_hops,
            account_marked: network.account_network_hops < crate::entities::NO_MARK_HOPS,
            account_network_hops: network.account_network_hops,
            network_path: network.network_path.clone(),
            ..Features::default()
        };
        if f.call_active {
            f.minutes_since_call = 0.0;
        }
        if f.remote_access {
            f.minutes_since_remote_access = 0.0;
        }
        match &event.body {
            EventBody::ApiKeyCreated {
                key_id,
                scopes,
                ip_allowlist,
                step_up,
                ..
            }
            | EventBody::ApiKeyUpdated {
                key_id,
                scopes,
                ip_allowlist,
                step_up,
                ..
            } => {
                let before = state
                    .keys
                    .get(Tag::of(key_id))
                    .map(|(_, k)| k.clone())
                    .unwrap_or_default();
                f.key_known = before.known;
                let added = scopes.added_since(before.scopes);
                f.adds_withdraw =
                    added.contains(Scope::Withdraw) || added.contains(Scope::Transfer);
                let moves_money =
                    scopes.contains(Scope::Withdraw) || scopes.contains(Scope::Transfer);
                f.allowlist_removed = before.known
                    && !before.allowlist.is_unrestricted()
                    && ip_allowlist.is_unrestricted();
                f.allowlist_loosened = moves_money
                    && allowlist_widened(before.known.then_some(&before.allowlist), ip_allowlist);
                f.allowlist_unseen_ips = unseen_networks(state, ip_allowlist, ts).count() as i64;
                f.allowlist_ip_flagged_elsewhere = unseen_hosts(state, ip_allowlist, ts)
                    .any(|ip| global.campaign.ip_marked_elsewhere(ip, account, ts));
                f.escalation = f.adds_withdraw
                    || f.allowlist_loosened
                    || (moves_money && f.allowlist_unseen_ips > 0);
                f.key_minutes_since_widened = minutes_since(before.widened_at.get(), ts);
                f.set_step_up(*step_up);
            }
            EventBody::AddressAdded {
                address, step_up, ..
            } => {
                f.escalation = true;
                f.set_address(state, global, address, account, ts);
                f.set_step_up(*step_up);
            }
            EventBody::WithdrawalRequested {
                address,
                amount_usd,
                key_id,
                ..
            } => {
                f.set_address(state, global, address, account, ts);
                f.amount_usd = *amount_usd;
                f.set_money(state, ts, *amount_usd);
                if let Some(key_id) = key_id {
                    f.set_key_use(state, event_ip, key_id, ts);
                }
            }
            _ => {}
        }
        f
    }

    fn set_step_up(&mut self, step_up: StepUp) {
        let (name, weak) = match step_up {
            StepUp::None => ("none", true),
            StepUp::Email => ("email", true),
            StepUp::Sms => ("sms", true),
            StepUp::Totp => ("totp", false),
            StepUp::Passkey => ("passkey", false),
        };
        self.step_up = name.to_owned();
        self.step_up_weak = weak;
    }

    fn set_address(
        &mut self,
        state: &AccountState,
        global: &Global,
        address: &str,
        account: Tag,
        ts: i64,
    ) {
        let tag = Tag::of_address(address);
        let known = state.addresses.get(tag);
        self.address_new = known.is_none_or(|(seen, _)| seen.first >= ts);
        self.address_fraud = global.fraud_addresses.contains(&tag);
        self.address_flagged_elsewhere = global
            .campaign
            .address_marked_elsewhere(address, account, ts);
        if let Some((seen, address)) = known {
            self.address_minutes_known = minutes_since(Some(seen.first), ts);
            self.address_minutes_since_added = minutes_since(address.added_at.get(), ts);
            self.address_blocked = address.status == AddressStatus::Blocked;
            self.address_held = address.status == AddressStatus::Held;
            self.address_under_review =
                address.status == AddressStatus::UnderReview && ts - seen.last <= REVIEW_MS;
        } else {
            self.address_minutes_since_added = 0.0;
        }
    }

    fn set_money(&mut self, state: &AccountState, ts: i64, usd: f64) {
        self.amount_vs_max = usd / state.max_withdrawal_usd.max(1.0);
        let amounts = &state.amounts;
        self.prior_withdrawals_30d = (amounts.of(Flow::Withdrawal))
            .filter(|(t, _)| ts - t <= 30 * DAY_MS)
            .count() as i64;
        self.withdrawn_24h_usd = usd + amounts.sum_between(Flow::Withdrawal, ts - DAY_MS, ts);
        self.deposits_7d_usd = amounts.sum_between(Flow::Deposit, ts - 7 * DAY_MS, ts);
        self.share_of_deposits = if self.deposits_7d_usd > 0.0 {
            self.withdrawn_24h_usd / self.deposits_7d_usd
        } else {
            0.0
        };
    }

    fn set_key_use(&mut self, state: &AccountState, ip: Option<IpAddr>, key_id: &str, ts: i64) {
        self.via_api = true;
        if let Some((_, key)) = state.keys.get(Tag::of(key_id)).filter(|(_, k)| k.known) {
            self.key_known = true;
            self.key_lacks_withdraw = !key.scopes.contains(Scope::Withdraw);
            self.ip_outside_key_allowlist =
                !key.allowlist.is_unrestricted() && !ip.is_some_and(|ip| key.allowlist.allows(ip));
            self.key_minutes_since_widened = minutes_since(key.widened_at.get(), ts);
        }
    }
}
