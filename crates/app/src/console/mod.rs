//! The analyst console's use cases: operators enrol a passkey from a single-use link and sign in
//! with it (`sign_in`), the work queue (`queue`) and the case view of one account (`case`).
//! The console's actions (release, cancel, confirm, overrides, freeze) are the guard's own use
//! cases, called with the signed-in operator as actor, so the console and the API run the same
//! checks (four-eyes among them).

mod case;
mod queue;
mod sign_in;

pub use case::{CaseView, TimelineEntry};
pub use sign_in::{ConsoleChallenge, ConsoleSignIn, EnrolmentIssued, SignedIn};

use crate::ports::{Clock, Store};
use crate::risk::Risk;
use std::sync::Arc;

/// How long an enrolment link may be used.
pub const ENROL_LINK_TTL_MS: i64 = 60 * 60_000;
/// How long a console session may idle before it ends.
pub const IDLE_TIMEOUT_MS: i64 = 15 * 60_000;
/// The longest a console session lasts, however busy.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60_000;

/// The console's use cases.
#[derive(Debug, Clone)]
pub struct Console {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    risk: Risk,
    /// The WebAuthn relying party; `None` when `public_url` cannot host passkeys.
    webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Where operators reach the console, without a trailing slash.
    public_url: String,
}

impl Console {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        risk: Risk,
        public_url: &str,
        name: &str,
    ) -> Self {
        let webauthn = crate::guard::relying_party(public_url, name)
            .ok()
            .map(Arc::new);
        Self {
            store,
            clock,
            risk,
            webauthn,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }
}
