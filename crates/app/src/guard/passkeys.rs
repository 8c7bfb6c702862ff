//! Passkeys (WebAuthn, user verification required) through webauthn-rs: registering several per
//! account, the passkey step-up that issues a grant, and removal behind a step-up.
//!
//! Every ceremony's state is stored with an expiry and answered once, for its own account, so a
//! challenge that expired, was already answered, or belongs to someone else is refused.

use super::notices::account_notice;
use super::stepup::target;
use super::{Guard, IssuedGrant};
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{AccountGuard, Ceremony, CeremonyKind, StoredPasskey, Write};
use crate::random;
use crate::webauthn::{
    CEREMONY_TTL_MS, answerable, assertion_answer, counted, decoded, options_json,
    registration_answer, stored, to_json, unavailable, user_handle,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use portcullis_core::guard::StepUpMethod;
use portcullis_core::guard::stepup::Action;
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::time::UnixMillis;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, Url, Webauthn, WebauthnBuilder,
};

const MAX_PASSKEYS: usize = 10;

/// A challenge for the browser: pass `options` to `navigator.credentials.create/get`.
#[derive(Debug)]
pub struct PasskeyChallenge {
    pub ceremony_id: String,
    pub options: Value,
}

/// The relying party for `public_url`, or why passkeys are unavailable there (a WebAuthn RP id
/// must be a domain name: an IP address is refused by browsers).
pub fn relying_party(public_url: &str, name: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(public_url).map_err(|e| format!("public_url: {e}"))?;
    let host = origin
        .domain()
        .ok_or_else(|| "public_url must name a host (not an IP address) for passkeys".to_owned())?
        .to_owned();
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(name).build())
        .map_err(|e| format!("passkeys unavailable for {public_url}: {e}"))
}

impl Guard {
    fn webauthn(&self) -> AppResult<&Webauthn> {
        self.webauthn.as_deref().ok_or_else(unavailable)
    }

    pub async fn passkeys(&self, actor: &Actor, account: &str) -> AppResult<Vec<StoredPasskey>> {
        actor.access_account(Permission::ReadKeys, account)?;
        self.account(account).await?;
        Ok(self.store.passkeys(account).await?)
    }

    /// Starts registering a passkey. Once anything is enrolled, adding one needs a step-up:
    /// otherwise whoever holds the session could enrol their own authenticator.
    pub async fn start_passkey_registration(
        &self,
        actor: &Actor,
        account: &str,
        grant: Option<&str>,
    ) -> AppResult<PasskeyChallenge> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        let existing = self.store.passkeys(account).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(AppError::invalid(
                ErrorCode::TooManyPasskeys,
                format!("at most {MAX_PASSKEYS} passkeys per account"),
            ));
        }
        let mut change = Change::new(&access, now);
        if existing.is_empty() && !guard.totp_confirmed() {
            // The first authenticator: nothing to step up with yet.
        } else {
            let (_, spend) = self
                .grant_for(&guard, Action::ManageAuthenticators, grant, now)
                .await?;
            change = change.write(spend);
        }
        let exclude = existing
            .iter()
            .map(|p| stored::<Passkey>(&p.passkey).map(|k| k.cred_id().clone()))
            .collect::<AppResult<Vec<_>>>()?;
        let (options, state) = self
            .webauthn()?
            .start_passkey_registration(
                user_handle("portcullis-user", account),
                account,
                account,
                Some(exclude),
            )
            .map_err(|e| AppError::Internal(format!("starting passkey registration: {e}")))?;
        let ceremony = self.ceremony(account, CeremonyKind::Registration, to_json(&state)?, now)?;
        let id = ceremony.id.clone();
        let change = change.write(Write::InsertCeremony(ceremony)).audit(
            "passkey.registration_started",
            target(account),
            json!({ "ceremony": id }),
        );
        self.store.commit(change.into_set()).await?;
        let options = options_json(&options)?;
        Ok(PasskeyChallenge {
            ceremony_id: id,
            options,
        })
    }

    /// Finishes registering: the browser's answer to the challenge.
    pub async fn finish_passkey_registration(
        &self,
        actor: &Actor,
        account: &str,
        ceremony_id: &str,
        credential: &Value,
        label: &str,
    ) -> AppResult<StoredPasskey> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let ceremony = match self
            .open_ceremony(account, ceremony_id, CeremonyKind::Registration, now)
            .await
        {
            Ok(ceremony) => ceremony,
            Err(error) => {
                return Err(self
                    .refused(actor, account, "passkey.register", error)
                    .await);
            }
        };
        let state: PasskeyRegistration = stored(&ceremony.state)?;
        let answer = registration_answer(credential)?;
        let spend = Write::SpendCeremony {
            id: ceremony.id.clone(),
            at: now,
        };
        self.refuse_if_begun_before_a_factor(actor, account, &ceremony, now)
            .await?;
        let passkey = match self
            .webauthn()?
            .finish_passkey_registration(&answer, &state)
        {
            Ok(passkey) => passkey,
            Err(error) => {
                self.record_refusal(
                    actor,
                    account,
                    spend,
                    "passkey.registration_refused",
                    &error.to_string(),
                    now,
                )
                .await?;
                return Err(AppError::invalid(
                    ErrorCode::PasskeyRejected,
                    format!("the passkey was not accepted: {error}"),
                ));
            }
        };
        let stored_key = passkey_to_store(account, label, &passkey, now)?;
        let change = Change::new(&access, now)
            .write(spend)
            .write(Write::InsertPasskey(stored_key.clone()))
            .audit(
                "passkey.added",
                target(account),
                json!({ "credential_id": stored_key.credential_id, "label": stored_key.label }),
            );
        let summary = format!("A passkey ({}) was added to your account", stored_key.label);
        let notice = account_notice(
            NoticeKind::PasskeyAdded,
            account,
            &stored_key.credential_id,
            &summary,
            now,
        );
        let change = self.announced_with_freeze_link(change, notice, now).await?;
        self.store.commit(change.into_set()).await?;
        Ok(stored_key)
    }

    /// Starts a passkey step-up.
    pub async fn start_passkey_step_up(
        &self,
        actor: &Actor,
        account: &str,
    ) -> AppResult<PasskeyChallenge> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        self.account(account).await?;
        let passkeys = self.decoded_passkeys(account).await?;
        if passkeys.is_empty() {
            return Err(AppError::invalid(
                ErrorCode::PasskeyNotEnrolled,
                "this account has no passkey",
            ));
        }
        let keys: Vec<Passkey> = passkeys.iter().map(|(_, k)| k.clone()).collect();
        let (options, state) = self
            .webauthn()?
            .start_passkey_authentication(&keys)
            .map_err(|e| AppError::Internal(format!("starting passkey authentication: {e}")))?;
        let ceremony =
            self.ceremony(account, CeremonyKind::Authentication, to_json(&state)?, now)?;
        let id = ceremony.id.clone();
        self.store
            .commit(
                Change::new(&access, now)
                    .write(Write::InsertCeremony(ceremony))
                    .into_set(),
            )
            .await?;
        let options = options_json(&options)?;
        Ok(PasskeyChallenge {
            ceremony_id: id,
            options,
        })
    }

    /// Finishes a passkey step-up: a verified assertion gives a single-use grant.
    pub async fn finish_passkey_step_up(
        &self,
        actor: &Actor,
        account: &str,
        ceremony_id: &str,
        credential: &Value,
    ) -> AppResult<IssuedGrant> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let ceremony = match self
            .open_ceremony(account, ceremony_id, CeremonyKind::Authentication, now)
            .await
        {
            Ok(ceremony) => ceremony,
            Err(error) => return Err(self.refused(actor, account, "step_up.passkey", error).await),
        };
        let state: PasskeyAuthentication = stored(&ceremony.state)?;
        let answer = assertion_answer(credential)?;
        let spend = Write::SpendCeremony {
            id: ceremony.id.clone(),
            at: now,
        };
        let result = match self
            .webauthn()?
            .finish_passkey_authentication(&answer, &state)
        {
            Ok(result) => result,
            Err(error) => {
                self.record_refusal(
                    actor,
                    account,
                    spend,
                    "step_up.failed",
                    &error.to_string(),
                    now,
                )
                .await?;
                return Err(AppError::invalid(
                    ErrorCode::PasskeyRejected,
                    format!("the passkey confirmation failed: {error}"),
                ));
            }
        };
        let (grant, issued) = self.new_grant(account, StepUpMethod::Passkey, now)?;
        let mut change = Change::new(&access, now)
            .write(spend)
            .write(Write::InsertGrant(grant));
        for (row, mut passkey) in self.decoded_passkeys(account).await? {
            if counted(&mut passkey, &result) {
                change = change.write(Write::UpdatePasskey {
                    credential_id: row.credential_id.clone(),
                    passkey: to_json(&passkey)?,
                    last_used_at: now,
                });
            }
        }
        let change = change.audit(
            "step_up.passed",
            target(account),
            json!({ "method": "passkey" }),
        );
        self.store.commit(change.into_set()).await?;
        Ok(issued)
    }

    /// Removes a passkey, behind a step-up (with passkeys enrolled, that is a passkey).
    pub async fn remove_passkey(
        &self,
        actor: &Actor,
        account: &str,
        credential_id: &str,
        grant: Option<&str>,
    ) -> AppResult<()> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        let (_, spend) = self
            .grant_for(&guard, Action::ManageAuthenticators, grant, now)
            .await?;
        let change = Change::new(&access, now)
            .write(spend)
            .write(Write::RemovePasskey {
                account: account.to_owned(),
                credential_id: credential_id.to_owned(),
            })
            .audit(
                "passkey.removed",
                target(account),
                json!({ "credential_id": credential_id }),
            );
        let notice = account_notice(
            NoticeKind::PasskeyRemoved,
            account,
            credential_id,
            "A passkey was removed from your account",
            now,
        );
        let change = self.announced_with_freeze_link(change, notice, now).await?;
        Ok(self.store.commit(change.into_set()).await?)
    }

    async fn decoded_passkeys(&self, account: &str) -> AppResult<Vec<(StoredPasskey, Passkey)>> {
        decoded(self.store.passkeys(account).await?, |row| &row.passkey)
    }

    fn ceremony(
        &self,
        account: &str,
        kind: CeremonyKind,
        state: String,
        now: UnixMillis,
    ) -> AppResult<Ceremony> {
        Ok(Ceremony {
            id: random::identifier("wac")?,
            account: account.to_owned(),
            kind,
            state,
            expires_at: now.plus_millis(CEREMONY_TTL_MS),
            used_at: None,
        })
    }

    /// A ceremony that may still be answered: this account's, of this kind, unanswered, fresh.
    async fn open_ceremony(
        &self,
        account: &str,
        id: &str,
        kind: CeremonyKind,
        now: UnixMillis,
    ) -> AppResult<Ceremony> {
        let found = self.store.ceremony(id).await?;
        let found = found.filter(|c| c.account == account && c.kind == kind);
        answerable(found, |c| (c.used_at, c.expires_at), now)
    }

    /// Records a refused ceremony (spent, audited) before the refusal is reported.
    async fn record_refusal(
        &self,
        actor: &Actor,
        account: &str,
        spend: Write,
        action: &str,
        reason: &str,
        now: UnixMillis,
    ) -> AppResult<()> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let change = Change::new(&access, now).write(spend).audit(
            action,
            target(account),
            json!({ "method": "passkey", "reason": reason }),
        );
        Ok(self.store.commit(change.into_set()).await?)
    }

    /// Refuses (spent, audited) a registration that began before a passkey or the authenticator
    /// app was enrolled: that factor did not confirm it, and it may have begun with nothing
    /// enrolled, so with no step-up at all.
    async fn refuse_if_begun_before_a_factor(
        &self,
        actor: &Actor,
        account: &str,
        ceremony: &Ceremony,
        now: UnixMillis,
    ) -> AppResult<()> {
        let started = ceremony.expires_at.plus_millis(-CEREMONY_TTL_MS);
        let passkeys = self.store.passkeys(account).await?;
        let totp = self
            .guard_of(account)
            .await?
            .totp
            .and_then(|t| t.confirmed_at);
        if !passkeys.iter().any(|p| p.created_at > started) && totp.is_none_or(|at| at <= started) {
            return Ok(());
        }
        let reason = "an authenticator was enrolled since the registration started";
        let spend = Write::SpendCeremony {
            id: ceremony.id.clone(),
            at: now,
        };
        let action = "passkey.registration_refused";
        self.record_refusal(actor, account, spend, action, reason, now)
            .await?;
        Err(AppError::invalid(
            ErrorCode::StepUpRequired,
            format!("{reason}: start again, confirmed with it (`step_up_grant`)"),
        ))
    }

    /// What the account has enrolled, as the step-up policy counts it.
    pub(crate) async fn enrolment_of(
        &self,
        guard: &AccountGuard,
    ) -> AppResult<portcullis_core::guard::Enrolment> {
        Ok(portcullis_core::guard::Enrolment {
            passkeys: self.store.passkeys(&guard.account).await?.len(),
            totp: guard.totp_confirmed(),
        })
    }
}

/// The row of a passkey just registered: its label trimmed and cut to 60 characters, or
/// `passkey` when none was given.
fn passkey_to_store(
    account: &str,
    label: &str,
    passkey: &Passkey,
    now: UnixMillis,
) -> AppResult<StoredPasskey> {
    let label = label.trim();
    Ok(StoredPasskey {
        credential_id: B64URL.encode(passkey.cred_id()),
        account: account.to_owned(),
        label: if label.is_empty() {
            "passkey".to_owned()
        } else {
            label.chars().take(60).collect()
        },
        passkey: to_json(passkey)?,
        created_at: now,
        last_used_at: None,
    })
}
