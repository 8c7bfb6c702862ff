//! The analyst console: operators sign in with passkeys (enrolled from a single-use link), work
//! one queue of alerts, held changes and held withdrawals, open the case of an account and act
//! on it (four-eyes release, cancel, confirm fraud, overrides, freeze), and draw the network
//! around an entity (cytoscape.js, vendored); the rules page edits, validates, backtests,
//! proposes and approves policy versions (maker-checker). Server-rendered pages
//! under the security center's CSP (this origin's script and style only); the one script runs
//! the WebAuthn ceremonies.

/// The anti-CSRF field of console forms, each with a `csrf` field.
macro_rules! csrf_forms {
    ($($form:ty),+) => {$(
        impl $crate::center::session::CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )+};
}

mod actions;
mod api;
mod graph;
mod pages;
mod rules;
pub mod session;
mod view;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::queue))
        .route("/console/sign-in", get(pages::sign_in_page))
        .route("/console/enrol/{token}", get(pages::enrol_page))
        .route("/console/api/enrol/start", post(api::enrol_start))
        .route("/console/api/enrol/finish", post(api::enrol_finish))
        .route("/console/api/sign-in/start", post(api::sign_in_start))
        .route("/console/api/sign-in/finish", post(api::sign_in_finish))
        .route("/console/sign-out", post(actions::sign_out))
        .route("/console/assign", post(actions::assign))
        .route("/console/accounts/{account}", get(pages::case))
        .route("/console/accounts/{account}/freeze", post(actions::freeze))
        .route("/console/changes/{id}/release", post(actions::release))
        .route("/console/changes/{id}/cancel", post(actions::cancel))
        .route(
            "/console/withdrawals/{event_id}/{action}",
            post(actions::review_withdrawal),
        )
        .route("/console/alerts/{id}/confirm", post(actions::confirm))
        .route("/console/overrides", post(actions::set_override))
        .route("/console/graph/{kind}/{value}", get(graph::page))
        .route("/console/rules", get(rules::page))
        .route("/console/rules/propose", post(rules::propose))
        .route(
            "/console/rules/versions/{version}/approve",
            post(rules::approve),
        )
        .route(
            "/console/rules/versions/{version}/rollback",
            post(rules::rollback),
        )
        .route("/console/api/policy/validate", post(rules::validate))
        .route("/console/api/policy/backtest", post(rules::backtest))
        .route("/console/api/graph/{kind}/{value}", get(graph::data))
}
