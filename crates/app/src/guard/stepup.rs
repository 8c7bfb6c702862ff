//! Step-up: enrolling an authenticator app, and turning a correct code into a single-use grant
//! that a widening request then spends.

use super::notices::account_notice;
use super::{Guard, refusal, token_hash};
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::keyring::MasterKeyring;
use crate::ports::{AccountGuard, SealedBlob, SealedSecret, StepUpGrant, TotpEnrolment, Write};
use crate::random;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use portcullis_core::guard::stepup::Action;
use portcullis_core::guard::totp::{self, TotpState};
use portcullis_core::guard::{Enrolment, StepUpMethod};
use portcullis_core::notice::NoticeKind;
use portcullis_core::operator::Permission;
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use serde_json::json;

/// A TOTP enrolment just started: the secret leaves Portcullis this once, inside the URI.
#[derive(Debug)]
pub struct TotpEnrolmentStart {
    /// `otpauth://totp/...` with the secret; render it as a QR code for the app to scan.
    pub provisioning_uri: Secret,
}

/// A grant as issued: the token is in here once and never again.
#[derive(Debug)]
pub struct IssuedGrant {
    pub token: Secret,
    pub method: StepUpMethod,
    pub expires_at: UnixMillis,
}

/// The row id the TOTP secret is sealed under (binds the ciphertext to its account).
fn totp_seal_id(account: &str) -> String {
    format!("totp:{account}")
}

impl Guard {
    /// Starts (or restarts, while unconfirmed) a TOTP enrolment. Replacing a confirmed
    /// authenticator is refused: that would let whoever holds the session swap the customer's
    /// second factor for their own. On an account with a passkey it spends a step-up grant
    /// (`ManageAuthenticators`, so the passkey): otherwise an operator token or a stolen session
    /// could add a factor of its own that takes over once the passkeys are gone.
    pub async fn start_totp(
        &self,
        actor: &Actor,
        account: &str,
        grant: Option<&str>,
    ) -> AppResult<TotpEnrolmentStart> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        if guard.totp_confirmed() {
            return Err(AppError::Conflict(format!(
                "account {account} already has a confirmed authenticator app"
            )));
        }
        let mut change = Change::new(&access, now);
        let step_up = if self.enrolment_of(&guard).await? == Enrolment::default() {
            None // The first factor: nothing to step up with yet (announced when confirmed).
        } else {
            let (method, spend) = self
                .grant_for(&guard, Action::ManageAuthenticators, grant, now)
                .await?;
            change = change.write(spend);
            Some(method)
        };
        let secret = Secret::new(random::bytes::<{ totp::SECRET_BYTES }>()?.to_vec());
        let app = totp::generator(secret.expose(), &self.settings.exchange_name, account)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let uri = totp::provisioning_uri(&app).map_err(|e| AppError::Internal(e.to_string()))?;
        let sealed = self.keyring.seal(&totp_seal_id(account), 1, &secret, now)?;
        let mut next = guard.clone();
        next.totp = Some(TotpEnrolment {
            secret: blob_of(&sealed),
            created_at: now,
            confirmed_at: None,
            state: TotpState::default(),
            step_up,
        });
        let details = json!({ "step_up": step_up.map(StepUpMethod::as_str) });
        let change = change.write(put(next, guard.version)).audit(
            "totp.enrolment_started",
            target(account),
            details,
        );
        self.store.commit(change.into_set()).await?;
        Ok(TotpEnrolmentStart {
            provisioning_uri: Secret::new(uri.into_bytes()),
        })
    }

    /// Confirms the enrolment with a first code from the app.
    pub async fn confirm_totp(&self, actor: &Actor, account: &str, code: &str) -> AppResult<()> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        let Some(enrolment) = guard.totp.as_ref().filter(|t| t.confirmed_at.is_none()) else {
            return Err(AppError::Conflict(format!(
                "account {account} has no authenticator app waiting for confirmation"
            )));
        };
        // Started while the account had no factor, and a passkey came since: confirming it now
        // would add a second factor that the passkey never confirmed.
        if enrolment.step_up.is_none() && self.enrolment_of(&guard).await?.passkeys > 0 {
            return Err(AppError::invalid(
                ErrorCode::StepUpRequired,
                "a passkey was added since this authenticator app enrolment started: start it again, confirmed with the passkey (`step_up_grant`)",
            ));
        }
        let (mut next, checked) = self.check_code(&guard, code, now)?;
        if checked.is_ok()
            && let Some(enrolment) = next.totp.as_mut()
        {
            enrolment.confirmed_at = Some(now);
        }
        let action = if checked.is_ok() {
            "totp.enrolled"
        } else {
            "totp.code_refused"
        };
        next.version = guard.version;
        let change = Change::new(&access, now)
            .write(put(next, guard.version))
            .audit(action, target(account), json!({ "during": "enrolment" }));
        let change = if checked.is_ok() {
            let summary = "An authenticator app (TOTP) was enrolled on your account";
            let notice = account_notice(NoticeKind::TotpEnrolled, account, "totp", summary, now);
            self.announced_with_freeze_link(change, notice, now).await?
        } else {
            change
        };
        self.store.commit(change.into_set()).await?;
        checked.map(|_| ())
    }

    /// The step-up removing the authenticator app takes, or why it cannot be asked for (none
    /// enrolled, a freeze or a lock). Writes nothing.
    pub async fn check_totp_removal(
        &self,
        actor: &Actor,
        account: &str,
    ) -> AppResult<StepUpMethod> {
        actor.access_account(Permission::ManageKeys, account)?;
        if !self.guard_of(account).await?.totp_confirmed() {
            return Err(AppError::invalid(
                ErrorCode::TotpNotEnrolled,
                "this account has no confirmed authenticator app",
            ));
        }
        let now = self.clock.now();
        self.step_up_needed(account, Action::ManageAuthenticators, now)
            .await
    }

    /// Asks to remove the authenticator app: a step-up, then a cool-down (the customer is told,
    /// and can cancel), because it takes a protection away; a new app can be enrolled after.
    pub async fn request_totp_removal(
        &self,
        actor: &Actor,
        account: &str,
        grant: Option<&str>,
    ) -> AppResult<super::PendingReceipt> {
        self.check_totp_removal(actor, account).await?;
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let request = super::widening::WideningRequest {
            account,
            action: crate::ports::PendingAction::RemoveTotp,
            widenings: vec![portcullis_core::guard::Widening::DisablesProtection],
            grant,
            event: None,
            ctx: portcullis_core::events::EventContext::default(),
            account_edit: None,
        };
        self.request_widening(&access, request, self.clock.now())
            .await
    }

    /// Checks a TOTP code and, when it is right and TOTP is what widening needs, issues a grant.
    /// Every failure is recorded (and counts toward the lockout) before it is reported.
    pub async fn step_up_totp(
        &self,
        actor: &Actor,
        account: &str,
        code: &str,
    ) -> AppResult<IssuedGrant> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        if !guard.totp_confirmed() {
            return Err(AppError::invalid(
                ErrorCode::TotpNotEnrolled,
                "this account has no confirmed authenticator app",
            ));
        }
        let (next, checked) = self.check_code(&guard, code, now)?;
        let locked_until = |g: &AccountGuard| g.totp.as_ref().and_then(|t| t.state.locked_until);
        let newly_locked = locked_until(&next).filter(|until| locked_until(&guard) != Some(*until));
        let mut change = Change::new(&access, now).write(put(next, guard.version));
        if let Some(until) = newly_locked {
            let summary = format!(
                "Too many wrong codes: confirmations with your authenticator app are locked until {}. If this was not you, freeze your account",
                until.to_rfc3339()
            );
            let key = format!("lockout:{}", until.as_millis());
            let notice = account_notice(NoticeKind::StepUpLockedOut, account, &key, &summary, now);
            change = self.announced_with_freeze_link(change, notice, now).await?;
        }
        let issued = match &checked {
            Ok(_) => {
                let (grant, issued) = self.new_grant(account, StepUpMethod::Totp, now)?;
                change = change.write(Write::InsertGrant(grant)).audit(
                    "step_up.passed",
                    target(account),
                    json!({ "method": "totp" }),
                );
                Some(issued)
            }
            Err(error) => {
                change = change.audit(
                    "step_up.failed",
                    target(account),
                    json!({ "method": "totp", "reason": error.code() }),
                );
                None
            }
        };
        self.store.commit(change.into_set()).await?;
        checked?;
        issued.ok_or_else(|| AppError::Internal("grant missing after a passed step-up".into()))
    }

    /// Checks `code` against the enrolled secret; the returned guard records the outcome.
    fn check_code(
        &self,
        guard: &AccountGuard,
        code: &str,
        now: UnixMillis,
    ) -> AppResult<(AccountGuard, AppResult<u64>)> {
        let enrolment = guard
            .totp
            .as_ref()
            .ok_or_else(|| AppError::invalid(ErrorCode::TotpNotEnrolled, "no authenticator app"))?;
        let secret = self.open_totp_secret(&guard.account, &enrolment.secret)?;
        let app = totp::generator(
            secret.expose(),
            &self.settings.exchange_name,
            &guard.account,
        )
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let (state, result) = totp::check(&app, &enrolment.state, code, now);
        let mut next = guard.clone();
        if let Some(enrolment) = next.totp.as_mut() {
            enrolment.state = state;
        }
        let result = result.map_err(|error| match error {
            totp::TotpError::Reused => refusal(ErrorCode::TotpReused, error),
            totp::TotpError::LockedOut(_) => refusal(ErrorCode::StepUpLocked, error),
            totp::TotpError::Wrong => refusal(ErrorCode::TotpWrong, error),
            totp::TotpError::BadSecret(detail) => AppError::Internal(detail),
        });
        Ok((next, result))
    }

    fn open_totp_secret(&self, account: &str, blob: &SealedBlob) -> AppResult<Secret> {
        self.keyring.open(&sealed_of(account, blob)?)
    }

    pub(crate) fn new_grant(
        &self,
        account: &str,
        method: StepUpMethod,
        now: UnixMillis,
    ) -> AppResult<(StepUpGrant, IssuedGrant)> {
        let token = format!("psu_{}", random::alphanumeric(43)?);
        let expires_at = now.plus_millis(self.settings.grant_ttl_ms);
        let grant = StepUpGrant {
            token_hash: token_hash(&token),
            account: account.to_owned(),
            method,
            issued_at: now,
            expires_at,
            spent_at: None,
        };
        let issued = IssuedGrant {
            token: Secret::new(token.into_bytes()),
            method,
            expires_at,
        };
        Ok((grant, issued))
    }

    /// The step-up `action` on `account` takes now, or why it cannot be made at all (a freeze
    /// or a lock, or nothing enrolled to confirm it with). Writes nothing.
    pub(crate) async fn step_up_needed(
        &self,
        account: &str,
        action: Action,
        now: UnixMillis,
    ) -> AppResult<StepUpMethod> {
        let guard = self.guard_of(account).await?;
        let allowed = match action {
            Action::Unfreeze => guard.protection.allows_unfreeze(now),
            _ => guard.protection.allows_widening(now),
        };
        allowed.map_err(super::protection_refusal)?;
        let enrolled = self.enrolment_of(&guard).await?;
        self.settings
            .step_up
            .method_for(action, enrolled)
            .map_err(|e| refusal(ErrorCode::StepUpNotEnrolled, e))
    }

    /// Checks that `token` is an unspent, unexpired grant of `account` good enough for
    /// `action`; returns the write that spends it (to commit with the change it authorises).
    pub(crate) async fn grant_for(
        &self,
        guard: &AccountGuard,
        action: Action,
        token: Option<&str>,
        now: UnixMillis,
    ) -> AppResult<(StepUpMethod, Write)> {
        let enrolled = self.enrolment_of(guard).await?;
        let needed = self
            .settings
            .step_up
            .method_for(action, enrolled)
            .map_err(|e| refusal(ErrorCode::StepUpNotEnrolled, e))?;
        let Some(token) = token else {
            return Err(AppError::invalid(
                ErrorCode::StepUpRequired,
                format!(
                    "this change needs a fresh {} confirmation (`step_up_grant`)",
                    needed.as_str()
                ),
            ));
        };
        let hash = token_hash(token);
        let grant = self.store.grant(&hash).await?;
        let grant = match grant {
            Some(grant) if grant.account == guard.account => grant,
            _ => {
                return Err(AppError::invalid(
                    ErrorCode::InvalidGrant,
                    "unknown step-up grant",
                ));
            }
        };
        if grant.spent_at.is_some() {
            return Err(AppError::invalid(
                ErrorCode::GrantSpent,
                "this step-up grant was already used",
            ));
        }
        if now >= grant.expires_at {
            return Err(AppError::invalid(
                ErrorCode::GrantExpired,
                "this step-up grant has expired",
            ));
        }
        self.settings
            .step_up
            .accepts(action, enrolled, grant.method)
            .map_err(|e| refusal(ErrorCode::StepUpInsufficient, e))?;
        Ok((
            grant.method,
            Write::SpendGrant {
                token_hash: hash,
                at: now,
            },
        ))
    }
}

/// A sealed TOTP secret as the guard document keeps it.
fn blob_of(sealed: &SealedSecret) -> SealedBlob {
    SealedBlob {
        master_key_id: sealed.master_key_id.clone(),
        nonce: BASE64.encode(&sealed.nonce),
        ciphertext: BASE64.encode(&sealed.ciphertext),
    }
}

/// The guard document's TOTP secret as the keyring opens it (bound to `totp:<account>`).
fn sealed_of(account: &str, blob: &SealedBlob) -> AppResult<SealedSecret> {
    let decode = |text: &str| {
        BASE64
            .decode(text)
            .map_err(|_| AppError::Internal(format!("TOTP secret of {account} is damaged")))
    };
    Ok(SealedSecret {
        key_id: totp_seal_id(account),
        generation: 1,
        master_key_id: blob.master_key_id.clone(),
        nonce: decode(&blob.nonce)?,
        ciphertext: decode(&blob.ciphertext)?,
        created_at: UnixMillis(0),
        valid_until: None,
    })
}

/// The write that moves the guard's TOTP secret under the active master key (versioned, so a
/// step-up at the same moment wins and the re-wrap tries again); `None` when there is no
/// secret or it is under that key already.
pub(crate) fn totp_resealed(
    keyring: &MasterKeyring,
    guard: &AccountGuard,
) -> AppResult<Option<Write>> {
    let Some(totp) = &guard.totp else {
        return Ok(None);
    };
    if totp.secret.master_key_id == keyring.active_id() {
        return Ok(None);
    }
    let fresh = keyring.reseal(&sealed_of(&guard.account, &totp.secret)?)?;
    let mut next = guard.clone();
    next.totp = Some(TotpEnrolment {
        secret: blob_of(&fresh),
        ..totp.clone()
    });
    Ok(Some(put(next, guard.version)))
}

pub(crate) fn put(guard: AccountGuard, expected_version: i64) -> Write {
    Write::PutGuard {
        guard,
        expected_version,
    }
}

pub(crate) fn target(account: &str) -> String {
    format!("account:{account}")
}
