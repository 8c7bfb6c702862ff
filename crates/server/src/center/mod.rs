//! The customer security center: server-rendered pages (keys, pending changes with live
//! countdowns, passkeys, addresses, check-up, freeze, settings lock) and the small JSON API the
//! page's one script calls for WebAuthn ceremonies and widening.
//!
//! Customers arrive through a single-use sign-in link that the exchange's backend mints after
//! its own login (`POST /v1/accounts/{account}/sign-in-links`); the session lives in an
//! HttpOnly, SameSite=Strict cookie. Every state-changing request carries the session's
//! anti-CSRF token. Pages allow scripts and styles from this origin only.
//!
//! `verify` is "Is this really the exchange?": in the center, and as a public page (`/verify`)
//! that needs no sign-in.

mod api;
mod contact;
pub mod guides;
mod overview;
mod pages;
pub mod session;
mod verify;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// The policy of security-center pages: this origin's script and style, nothing else.
pub const CENTER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/security", get(overview::overview))
        .route(
            "/security/sign-in/{token}",
            get(pages::sign_in_page).post(pages::sign_in),
        )
        .route("/security/sign-out", post(pages::sign_out))
        .route("/security/freeze", post(pages::freeze))
        .route("/security/settings-lock", post(pages::lock))
        .route("/security/digest", post(pages::digest_on))
        .route("/security/digest/off", post(pages::digest_off))
        .route("/security/changes/{id}/cancel", post(pages::cancel))
        .route(
            "/security/withdrawals/{event_id}/cancel",
            post(pages::cancel_withdrawal),
        )
        .route("/security/totp/start", post(pages::totp_start))
        .route("/security/totp/confirm", post(pages::totp_confirm))
        .route("/security/keys/{key_id}/widen", get(pages::widen_page))
        .route("/security/keys/{key_id}/{what}", post(pages::narrow_key))
        .route("/security/contact", get(contact::page_for))
        .route(
            "/security/verify",
            get(verify::center_page).post(verify::center_check),
        )
        .route("/security/verify/report", post(verify::center_report))
        .route(
            "/verify",
            get(verify::public_page).post(verify::public_check),
        )
        .route("/verify/report", post(verify::public_report))
        .route("/guides", get(guides::index))
        .route("/guides/{slug}", get(guides::guide))
        .route("/security/api/contact", post(contact::change))
        .route("/security/api/contact/check", post(contact::check))
        .route(
            "/security/api/passkeys/register/start",
            post(api::start_registration),
        )
        .route(
            "/security/api/passkeys/register/finish",
            post(api::finish_registration),
        )
        .route(
            "/security/api/step-up/passkey/start",
            post(api::start_step_up),
        )
        .route(
            "/security/api/step-up/passkey/finish",
            post(api::finish_step_up),
        )
        .route("/security/api/step-up/totp", post(api::totp_step_up))
        .route("/security/api/keys/{key_id}/change", post(api::change_key))
        .route(
            "/security/api/keys/{key_id}/check",
            post(api::check_key_change),
        )
        .route("/security/api/account/{what}", post(api::widen_account))
        .route(
            "/security/api/account/{what}/check",
            post(api::check_account),
        )
        .route(
            "/security/api/passkeys/{credential_id}/remove",
            post(api::remove_passkey),
        )
        .route("/security/api/addresses", post(api::add_address))
        .route("/security/api/addresses/check", post(api::check_address))
}
