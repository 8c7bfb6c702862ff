//! Signing customers in to the security center in standalone mode: the exchange's backend,
//! after its own login, mints a single-use link (as a billing portal does) and sends the
//! customer's browser to it; the link opens a short session held in a cookie.

use super::{Guard, token_hash};
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{CustomerSession, SignInLink, Write};
use crate::random;
use aws_lc_rs::digest;
use portcullis_core::events::EventContext;
use portcullis_core::operator::Permission;
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use serde_json::json;

/// How long a sign-in link may be used: long enough for a redirect, too short to forward.
const LINK_TTL_MS: i64 = 5 * 60_000;
/// How long a session lasts; it is not extended by use, so a forgotten tab expires.
const SESSION_TTL_MS: i64 = 60 * 60_000;

/// A link as minted: the URL carries the token, shown this once.
#[derive(Debug)]
pub struct IssuedLink {
    pub url: Secret,
    pub expires_at: UnixMillis,
}

/// A session as opened: the token goes in the cookie and nowhere else.
#[derive(Debug)]
pub struct OpenedSession {
    pub token: Secret,
    pub account: String,
    pub expires_at: UnixMillis,
}

/// The anti-CSRF token of a session: derived from the session token, so it needs no storage
/// and cannot be computed without the cookie.
pub fn csrf_token(session_token: &str) -> String {
    let hash = digest::digest(
        &digest::SHA256,
        format!("portcullis-csrf:{session_token}").as_bytes(),
    );
    hex::encode(&hash.as_ref()[..16])
}

/// Refuses a single-use sign-in link (or a console enrolment link) already used or past its
/// life.
pub(crate) fn usable_link(
    used_at: Option<UnixMillis>,
    expires_at: UnixMillis,
    now: UnixMillis,
) -> AppResult<()> {
    crate::webauthn::single_use(
        (used_at, expires_at),
        now,
        (
            ErrorCode::SignInLinkUsed,
            "this sign-in link was already used",
        ),
        (
            ErrorCode::SignInLinkExpired,
            "this sign-in link has expired",
        ),
    )
}

/// A sign-in link's context, checked (`EventContext::check`), without its IP.
fn link_context(ctx: EventContext) -> AppResult<EventContext> {
    ctx.check()
        .map_err(|message| AppError::invalid(ErrorCode::InvalidContext, message.to_owned()))?;
    Ok(EventContext { ip: None, ..ctx })
}

impl Guard {
    /// Mints a sign-in link for `account` (roles `admin`, `integration`). `ctx` is what the
    /// exchange knew of the login that led here (its channel, the device, a call or remote
    /// access in progress); the session it opens stamps it on its events. An `ip` in it is
    /// dropped: the customer's address is taken from their own connection.
    pub async fn sign_in_link(
        &self,
        actor: &Actor,
        account: &str,
        ctx: EventContext,
    ) -> AppResult<IssuedLink> {
        let access = actor.access_account(Permission::SignInCustomers, account)?;
        let now = self.clock.now();
        self.account(account).await?;
        let ctx = link_context(ctx)?;
        let token = format!("psl_{}", random::alphanumeric(43)?);
        let link = SignInLink {
            token_hash: token_hash(&token),
            account: account.to_owned(),
            created_at: now,
            expires_at: now.plus_millis(LINK_TTL_MS),
            used_at: None,
            ctx,
        };
        let expires_at = link.expires_at;
        let change = Change::new(&access, now)
            .write(Write::InsertSignInLink(link))
            .audit(
                "security_center.link_issued",
                format!("account:{account}"),
                json!({}),
            );
        self.store.commit(change.into_set()).await?;
        let url = format!("{}/security/sign-in/{token}", self.settings.public_url);
        Ok(IssuedLink {
            url: Secret::new(url.into_bytes()),
            expires_at,
        })
    }

    /// Opens a session from a link, once.
    pub async fn open_session(&self, link_token: &str) -> AppResult<OpenedSession> {
        let now = self.clock.now();
        let hash = token_hash(link_token);
        let link = self.store.sign_in_link(&hash).await?.ok_or_else(|| {
            AppError::invalid(
                ErrorCode::InvalidSignInLink,
                "this sign-in link is not valid",
            )
        })?;
        usable_link(link.used_at, link.expires_at, now)?;
        let token = format!("pss_{}", random::alphanumeric(43)?);
        let session = CustomerSession {
            token_hash: token_hash(&token),
            account: link.account.clone(),
            created_at: now,
            expires_at: now.plus_millis(SESSION_TTL_MS),
            revoked_at: None,
            ctx: link.ctx.clone(),
        };
        let expires_at = session.expires_at;
        let customer = Actor::customer(&link.account);
        let access = customer.access_account(Permission::ReadKeys, &link.account)?;
        let change = Change::new(&access, now)
            .write(Write::SpendSignInLink {
                token_hash: hash,
                at: now,
            })
            .write(Write::InsertSession(session))
            .audit(
                "security_center.signed_in",
                format!("account:{}", link.account),
                json!({}),
            );
        self.store.commit(change.into_set()).await?;
        Ok(OpenedSession {
            token: Secret::new(token.into_bytes()),
            account: link.account,
            expires_at,
        })
    }

    /// The customer behind a session cookie, if the session is live.
    pub async fn session_actor(&self, session_token: &str) -> AppResult<Actor> {
        self.session(session_token).await.map(|(actor, _)| actor)
    }

    /// The customer behind a session cookie and the context its sign-in link carried.
    pub async fn session(&self, session_token: &str) -> AppResult<(Actor, EventContext)> {
        let now = self.clock.now();
        match self
            .store
            .customer_session(&token_hash(session_token))
            .await?
        {
            Some(s) if s.revoked_at.is_none() && now < s.expires_at => {
                Ok((Actor::customer(&s.account), s.ctx))
            }
            _ => Err(AppError::Unauthenticated),
        }
    }

    pub async fn sign_out(&self, session_token: &str) -> AppResult<()> {
        let now = self.clock.now();
        let actor = self.session_actor(session_token).await?;
        let change = Change::global(&actor, now).write(Write::RevokeSession {
            token_hash: token_hash(session_token),
            at: now,
        });
        Ok(self.store.commit(change.into_set()).await?)
    }
}
