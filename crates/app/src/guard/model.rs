//! What the guard stores: an account's protections and TOTP enrolment, pending changes with
//! their cool-downs, single-use step-up grants, and the withdrawal-address allow-list.

use portcullis_core::allowlist::IpAllowList;
use portcullis_core::events::EventContext;
use portcullis_core::guard::fund_window::WindowRequest;
use portcullis_core::guard::totp::TotpState;
use portcullis_core::guard::{PendingStatus, Protection, StepUpMethod, Widening};
use portcullis_core::scope::ScopeSet;
use portcullis_core::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Secret bytes sealed with a master key (AEAD), as stored inside a JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBlob {
    pub master_key_id: String,
    /// Base64 (standard) of the nonce and of the ciphertext with its tag.
    pub nonce: String,
    pub ciphertext: String,
}

/// An authenticator app enrolled (or being enrolled) for TOTP step-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    pub secret: SealedBlob,
    pub created_at: UnixMillis,
    /// Set once the customer proved the app works by entering a first code; until then the
    /// enrolment counts for nothing.
    pub confirmed_at: Option<UnixMillis>,
    pub state: TotpState,
    /// The step-up the enrolment was started with; `None` for a first factor (the account had
    /// none to confirm it with). Confirming an enrolment started without one is refused once
    /// the account has a passkey: it would add a second factor that no existing one confirmed.
    #[serde(default)]
    pub step_up: Option<StepUpMethod>,
}

/// Everything the guard keeps per account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountGuard {
    pub account: String,
    #[serde(default)]
    pub protection: Protection,
    #[serde(default)]
    pub totp: Option<TotpEnrolment>,
    /// Optimistic-concurrency counter (0 when nothing is stored yet); not part of the document.
    #[serde(skip)]
    pub version: i64,
}

impl AccountGuard {
    pub fn empty(account: &str) -> Self {
        Self {
            account: account.to_owned(),
            protection: Protection::default(),
            totp: None,
            version: 0,
        }
    }

    pub fn totp_confirmed(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed_at.is_some())
    }
}

/// What a pending change does when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingAction {
    /// A change to a key, kept as a difference from the key as it was when requested, so a
    /// narrowing made during the cool-down is not undone when the change applies.
    KeyChange {
        key_id: String,
        label: Option<String>,
        add_scopes: ScopeSet,
        remove_scopes: ScopeSet,
        ip_allowlist: Option<IpAllowList>,
        /// `Some(None)` removes the expiry (stored as `null`; absent leaves it as it is).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present_or_null"
        )]
        expires_at: Option<Option<UnixMillis>>,
        /// The window the key's fund-moving scopes get when the change applies (it opens then);
        /// `Some(None)` makes them permanent (stored as `null`; absent leaves it as it is).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present_or_null"
        )]
        fund_window: Option<Option<WindowRequest>>,
    },
    AddAddress {
        address: String,
        asset: String,
        network: String,
        label: String,
    },
    Unfreeze,
    /// Removing the authenticator app (TOTP): it weakens the account, so it waits like a
    /// widening; a new app can be enrolled once it has applied.
    RemoveTotp,
    /// A new e-mail address and/or anti-phishing code: only the fields the request named
    /// (`Some(None)` clears one, stored as `null`; absent leaves it as it is then).
    ContactChange {
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present_or_null"
        )]
        email: Option<Option<String>>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present_or_null"
        )]
        anti_phishing_code: Option<Option<String>>,
    },
}

/// A field that is present (as a value or `null`) deserialises to `Some`, so `null` survives.
fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl PendingAction {
    /// The action as shown outside the store (audit trail, API, security center): the same
    /// JSON, except that a new anti-phishing code is never repeated, only whether one is set
    /// (the code is a secret shared between the exchange and the customer).
    pub fn public_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let (
            PendingAction::ContactChange {
                anti_phishing_code, ..
            },
            Some(fields),
        ) = (self, value.as_object_mut())
            && let Some(code) = anti_phishing_code
        {
            fields.remove("anti_phishing_code");
            let state = if code.is_some() { "new" } else { "cleared" };
            fields.insert("anti_phishing_code".into(), serde_json::json!(state));
        }
        value
    }

    pub const fn kind(&self) -> &'static str {
        match self {
            PendingAction::KeyChange { .. } => "key_change",
            PendingAction::AddAddress { .. } => "add_address",
            PendingAction::Unfreeze => "unfreeze",
            PendingAction::RemoveTotp => "remove_totp",
            PendingAction::ContactChange { .. } => "contact_change",
        }
    }
}

/// A widening waiting out its cool-down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub id: String,
    pub account: String,
    pub action: PendingAction,
    pub widenings: Vec<Widening>,
    pub status: PendingStatus,
    pub requested_at: UnixMillis,
    pub applies_at: UnixMillis,
    /// Who asked (an operator id, `cli:local`, or `customer:<account>`).
    pub requested_by: String,
    pub step_up: StepUpMethod,
    /// SHA-256 (hex) of the single-use cancel token sent in the announcements.
    pub cancel_token_hash: String,
    /// The event the risk engine decided on when the change was requested.
    pub event_id: Option<String>,
    /// The operator who released a hold on it: their release stands in for a risk decision
    /// that held it, or that the engine could not make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_by: Option<String>,
    /// The first of the two operators a hold made by the risk engine needs (four-eyes): their
    /// approval is recorded here, and a different operator completes the release. Cleared
    /// whenever the change is held again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(skip)]
    pub version: i64,
}

/// Proof that the customer just passed a step-up, spendable once, shortly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpGrant {
    /// SHA-256 (hex) of the grant token; the token itself is only ever returned to the caller.
    pub token_hash: String,
    pub account: String,
    pub method: StepUpMethod,
    pub issued_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub spent_at: Option<UnixMillis>,
}

/// An address on an account's withdrawal allow-list (only stored once its cool-down passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalAddress {
    pub account: String,
    pub network: String,
    pub address: String,
    pub asset: String,
    pub label: String,
    pub requested_at: UnixMillis,
    pub usable_from: UnixMillis,
}

/// A registered passkey: the credential as webauthn-rs serialises it (public key, counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// Base64url of the credential id.
    pub credential_id: String,
    pub account: String,
    pub label: String,
    /// The `webauthn_rs::prelude::Passkey`, as JSON.
    pub passkey: String,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
}

/// What a WebAuthn ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Registration,
    Authentication,
}

impl CeremonyKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::Authentication => "authentication",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "registration" => Some(CeremonyKind::Registration),
            "authentication" => Some(CeremonyKind::Authentication),
            _ => None,
        }
    }
}

/// A WebAuthn challenge in flight: answered once, before it expires, for its own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub id: String,
    pub account: String,
    pub kind: CeremonyKind,
    /// The webauthn-rs ceremony state, as JSON.
    pub state: String,
    pub expires_at: UnixMillis,
    pub used_at: Option<UnixMillis>,
}

/// A single-use link that signs a customer in to the security center.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLink {
    pub token_hash: String,
    pub account: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub used_at: Option<UnixMillis>,
    /// What the exchange knew of this login (never an IP: that comes from the connection).
    pub ctx: EventContext,
}

/// A single-use link, sent to the old address with a contact change's announcement, that
/// freezes the account in one click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeLink {
    pub token_hash: String,
    pub account: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub used_at: Option<UnixMillis>,
}

/// A customer's session in the security center.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSession {
    pub token_hash: String,
    pub account: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
    /// The sign-in link's context, stamped on the events of the session.
    pub ctx: EventContext,
}
