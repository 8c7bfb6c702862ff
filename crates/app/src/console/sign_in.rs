//! Operators on passkeys: an administrator mints a single-use, expiring enrolment link; the
//! operator opens it, registers a passkey (user verification required) and is signed in; later
//! sign-ins answer a challenge with that passkey. Sessions end after `IDLE_TIMEOUT_MS` without
//! use, at `SESSION_TTL_MS`, at sign-out, or when the operator is revoked. Only hashes of the
//! link and session tokens are stored.

use super::{Console, ENROL_LINK_TTL_MS, IDLE_TIMEOUT_MS, SESSION_TTL_MS};
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::guard::usable_link;
use crate::operators::token_hash;
use crate::ports::{
    ConsoleWrite, EnrolmentLink, Operator, OperatorCeremony, OperatorPasskey, OperatorSession,
    Write,
};
use crate::random;
use crate::webauthn::{
    CEREMONY_TTL_MS, answerable, assertion_answer, counted, decoded, options_json,
    registration_answer, stored, to_json, unavailable, user_handle,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use portcullis_core::operator::{Permission, Role};
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use serde_json::{Value, json};
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PasskeyRegistration};

/// Idle sessions are touched at most this often (a write per request would be waste).
const TOUCH_EVERY_MS: i64 = 60_000;
const REGISTRATION: &str = "registration";
const AUTHENTICATION: &str = "authentication";

/// An enrolment link as minted: the URL carries the token, shown this once.
#[derive(Debug)]
pub struct EnrolmentIssued {
    pub operator: Operator,
    pub url: Secret,
    pub expires_at: UnixMillis,
}

/// A challenge for `navigator.credentials.create/get`.
#[derive(Debug)]
pub struct ConsoleChallenge {
    pub ceremony_id: String,
    pub options: Value,
}

/// A session as opened: the token goes in the cookie and nowhere else.
#[derive(Debug)]
pub struct ConsoleSignIn {
    pub token: Secret,
    pub operator: Operator,
    pub expires_at: UnixMillis,
}

/// The operator behind a live session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub actor: Actor,
    pub operator: Operator,
}

/// Who may sign in to the console: people who review (admins and analysts), not the
/// exchange's integration tokens.
fn console_role(role: Role) -> bool {
    role.allows(Permission::ReviewChanges)
}

fn live(operator: Option<Operator>) -> Option<Operator> {
    operator.filter(|o| o.revoked_at.is_none() && console_role(o.role))
}

fn refused_sign_in() -> AppError {
    AppError::invalid(
        ErrorCode::PasskeyNotEnrolled,
        "no console passkey for that operator: ask an administrator for an enrolment link",
    )
}

impl Console {
    fn webauthn(&self) -> AppResult<&Webauthn> {
        self.webauthn.as_deref().ok_or_else(unavailable)
    }

    /// Mints a single-use enrolment link for the operator named `who` (id or name).
    pub async fn enrolment_link(&self, actor: &Actor, who: &str) -> AppResult<EnrolmentIssued> {
        actor.require_operator(Permission::ManageOperators)?;
        let operator = self
            .store
            .list_operators()
            .await?
            .into_iter()
            .find(|o| o.revoked_at.is_none() && (o.id == who || o.name == who))
            .ok_or_else(|| AppError::NotFound(format!("operator {who}")))?;
        if !console_role(operator.role) {
            return Err(AppError::invalid(
                ErrorCode::InvalidRequest,
                "only admins and analysts sign in to the console",
            ));
        }
        let now = self.clock.now();
        let token = format!("pce_{}", random::alphanumeric(43)?);
        let link = EnrolmentLink {
            token_hash: token_hash(&token),
            operator: operator.id.clone(),
            created_by: actor.id().to_owned(),
            created_at: now,
            expires_at: now.plus_millis(ENROL_LINK_TTL_MS),
            used_at: None,
        };
        let expires_at = link.expires_at;
        let change = Change::global(actor, now)
            .write(Write::Console(ConsoleWrite::InsertEnrolmentLink(link)))
            .audit(
                "operator.enrolment_link_issued",
                format!("operator:{}", operator.id),
                json!({ "name": operator.name, "expires_at": expires_at.to_rfc3339() }),
            );
        self.store.commit(change.into_set()).await?;
        let url = format!("{}/console/enrol/{token}", self.public_url);
        Ok(EnrolmentIssued {
            operator,
            url: Secret::new(url.into_bytes()),
            expires_at,
        })
    }

    /// The operator an unused, unexpired enrolment link is for.
    pub async fn enrolment(&self, link_token: &str) -> AppResult<(EnrolmentLink, Operator)> {
        let link = self
            .store
            .enrolment_link(&token_hash(link_token))
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    ErrorCode::InvalidSignInLink,
                    "this enrolment link is not valid",
                )
            })?;
        usable_link(link.used_at, link.expires_at, self.clock.now())?;
        let operator = live(self.store.operator(&link.operator).await?).ok_or_else(|| {
            AppError::invalid(ErrorCode::InvalidSignInLink, "this operator was revoked")
        })?;
        Ok((link, operator))
    }

    /// Starts registering a passkey from an enrolment link.
    pub async fn start_enrolment(&self, link_token: &str) -> AppResult<ConsoleChallenge> {
        let (_, operator) = self.enrolment(link_token).await?;
        let exclude = self
            .decoded(&operator.id)
            .await?
            .into_iter()
            .map(|(_, key)| key.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn()?
            .start_passkey_registration(
                user_handle("portcullis-operator", &operator.id),
                &operator.name,
                &operator.name,
                Some(exclude),
            )
            .map_err(|e| AppError::Internal(format!("starting passkey registration: {e}")))?;
        self.challenge(&operator, REGISTRATION, to_json(&state)?, &options)
            .await
    }

    /// Finishes the enrolment: the link is spent, the passkey stored and a session opened, in
    /// one commit.
    pub async fn finish_enrolment(
        &self,
        link_token: &str,
        ceremony_id: &str,
        credential: &Value,
    ) -> AppResult<ConsoleSignIn> {
        let (link, operator) = self.enrolment(link_token).await?;
        let now = self.clock.now();
        let ceremony = self
            .open_ceremony(ceremony_id, REGISTRATION, Some(&operator.id), now)
            .await?;
        let state: PasskeyRegistration = stored(&ceremony.state)?;
        let answer = registration_answer(credential)?;
        let actor = Actor::operator(&operator.id, operator.role);
        let spend = spend_ceremony(&ceremony.id, now);
        let passkey = match self
            .webauthn()?
            .finish_passkey_registration(&answer, &state)
        {
            Ok(passkey) => passkey,
            Err(error) => {
                return Err(self
                    .rejected(
                        &actor,
                        spend,
                        "operator.passkey_refused",
                        &error.to_string(),
                        now,
                    )
                    .await);
            }
        };
        let stored_key = OperatorPasskey {
            credential_id: B64URL.encode(passkey.cred_id()),
            operator: operator.id.clone(),
            passkey: to_json(&passkey)?,
            created_at: now,
            last_used_at: None,
        };
        let credential_id = stored_key.credential_id.clone();
        let change = Change::global(&actor, now)
            .write(spend)
            .write(Write::Console(ConsoleWrite::SpendEnrolmentLink {
                token_hash: link.token_hash,
                at: now,
            }))
            .write(Write::Console(ConsoleWrite::InsertPasskey(stored_key)))
            .audit(
                "operator.passkey_enrolled",
                format!("operator:{}", operator.id),
                json!({ "credential_id": credential_id, "link_by": link.created_by }),
            );
        self.open_session(change, operator, now).await
    }

    /// Starts a sign-in for the operator named `name`.
    pub async fn start_sign_in(&self, name: &str) -> AppResult<ConsoleChallenge> {
        let operator = self
            .store
            .list_operators()
            .await?
            .into_iter()
            .find(|o| o.name == name.trim());
        let operator = live(operator).ok_or_else(refused_sign_in)?;
        let keys: Vec<Passkey> = self
            .decoded(&operator.id)
            .await?
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        if keys.is_empty() {
            return Err(refused_sign_in());
        }
        let (options, state) = self
            .webauthn()?
            .start_passkey_authentication(&keys)
            .map_err(|e| AppError::Internal(format!("starting passkey authentication: {e}")))?;
        self.challenge(&operator, AUTHENTICATION, to_json(&state)?, &options)
            .await
    }

    /// Finishes a sign-in: a verified assertion opens a session.
    pub async fn finish_sign_in(
        &self,
        ceremony_id: &str,
        credential: &Value,
    ) -> AppResult<ConsoleSignIn> {
        let now = self.clock.now();
        let ceremony = self
            .open_ceremony(ceremony_id, AUTHENTICATION, None, now)
            .await?;
        let operator =
            live(self.store.operator(&ceremony.operator).await?).ok_or_else(refused_sign_in)?;
        let state: PasskeyAuthentication = stored(&ceremony.state)?;
        let answer = assertion_answer(credential)?;
        let actor = Actor::operator(&operator.id, operator.role);
        let spend = spend_ceremony(&ceremony.id, now);
        let result = match self
            .webauthn()?
            .finish_passkey_authentication(&answer, &state)
        {
            Ok(result) => result,
            Err(error) => {
                return Err(self
                    .rejected(
                        &actor,
                        spend,
                        "console.sign_in_refused",
                        &error.to_string(),
                        now,
                    )
                    .await);
            }
        };
        let mut change = Change::global(&actor, now).write(spend);
        for (row, mut key) in self.decoded(&operator.id).await? {
            if counted(&mut key, &result) {
                change = change.write(Write::Console(ConsoleWrite::UpdatePasskey {
                    credential_id: row.credential_id,
                    passkey: to_json(&key)?,
                    at: now,
                }));
            }
        }
        self.open_session(change, operator, now).await
    }

    /// The operator behind a console session cookie, if the session is live; moves its idle
    /// timeout on.
    pub async fn session(&self, token: &str) -> AppResult<SignedIn> {
        let now = self.clock.now();
        let hash = token_hash(token);
        let session = match self.store.operator_session(&hash).await? {
            Some(s)
                if s.revoked_at.is_none()
                    && now < s.expires_at
                    && now.millis_since(s.last_seen_at) < IDLE_TIMEOUT_MS =>
            {
                s
            }
            _ => return Err(AppError::Unauthenticated),
        };
        let operator =
            live(self.store.operator(&session.operator).await?).ok_or(AppError::Unauthenticated)?;
        let actor = Actor::operator(&operator.id, operator.role);
        if now.millis_since(session.last_seen_at) >= TOUCH_EVERY_MS {
            let touch = ConsoleWrite::TouchSession {
                token_hash: hash,
                at: now,
            };
            let change = Change::global(&actor, now).write(Write::Console(touch));
            self.store.commit(change.into_set()).await?;
        }
        Ok(SignedIn { actor, operator })
    }

    pub async fn sign_out(&self, token: &str) -> AppResult<()> {
        let signed_in = self.session(token).await?;
        let now = self.clock.now();
        let revoke = ConsoleWrite::RevokeSession {
            token_hash: token_hash(token),
            at: now,
        };
        let change = Change::global(&signed_in.actor, now)
            .write(Write::Console(revoke))
            .audit(
                "console.signed_out",
                format!("operator:{}", signed_in.operator.id),
                json!({}),
            );
        Ok(self.store.commit(change.into_set()).await?)
    }

    async fn open_session(
        &self,
        change: Change,
        operator: Operator,
        now: UnixMillis,
    ) -> AppResult<ConsoleSignIn> {
        let token = format!("pcs_{}", random::alphanumeric(43)?);
        let session = OperatorSession {
            token_hash: token_hash(&token),
            operator: operator.id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now.plus_millis(SESSION_TTL_MS),
            revoked_at: None,
        };
        let expires_at = session.expires_at;
        let change = change
            .write(Write::Console(ConsoleWrite::InsertSession(session)))
            .audit(
                "console.signed_in",
                format!("operator:{}", operator.id),
                json!({ "name": operator.name }),
            );
        self.store.commit(change.into_set()).await?;
        Ok(ConsoleSignIn {
            token: Secret::new(token.into_bytes()),
            operator,
            expires_at,
        })
    }

    async fn challenge(
        &self,
        operator: &Operator,
        kind: &str,
        state: String,
        options: &impl serde::Serialize,
    ) -> AppResult<ConsoleChallenge> {
        let now = self.clock.now();
        let ceremony = OperatorCeremony {
            id: random::identifier("woc")?,
            operator: operator.id.clone(),
            kind: kind.to_owned(),
            state,
            expires_at: now.plus_millis(CEREMONY_TTL_MS),
            used_at: None,
        };
        let id = ceremony.id.clone();
        let actor = Actor::operator(&operator.id, operator.role);
        let change = Change::global(&actor, now)
            .write(Write::Console(ConsoleWrite::InsertCeremony(ceremony)));
        self.store.commit(change.into_set()).await?;
        Ok(ConsoleChallenge {
            ceremony_id: id,
            options: options_json(options)?,
        })
    }

    /// A ceremony that may still be answered: of this kind (and this operator's, when named),
    /// unanswered, fresh.
    async fn open_ceremony(
        &self,
        id: &str,
        kind: &str,
        operator: Option<&str>,
        now: UnixMillis,
    ) -> AppResult<OperatorCeremony> {
        let found = self.store.operator_ceremony(id).await?;
        let found = found.filter(|c| c.kind == kind && operator.is_none_or(|op| op == c.operator));
        answerable(found, |c| (c.used_at, c.expires_at), now)
    }

    /// Records a refused ceremony (spent, audited) and returns the refusal.
    async fn rejected(
        &self,
        actor: &Actor,
        spend: Write,
        action: &str,
        reason: &str,
        now: UnixMillis,
    ) -> AppError {
        let change = Change::global(actor, now).write(spend).audit(
            action,
            format!("operator:{}", actor.id()),
            json!({ "reason": reason }),
        );
        if let Err(error) = self.store.commit(change.into_set()).await {
            return error.into();
        }
        AppError::invalid(
            ErrorCode::PasskeyRejected,
            format!("the passkey was not accepted: {reason}"),
        )
    }

    async fn decoded(&self, operator: &str) -> AppResult<Vec<(OperatorPasskey, Passkey)>> {
        decoded(self.store.operator_passkeys(operator).await?, |row| {
            &row.passkey
        })
    }
}

fn spend_ceremony(id: &str, at: UnixMillis) -> Write {
    Write::Console(ConsoleWrite::SpendCeremony {
        id: id.to_owned(),
        at,
    })
}
