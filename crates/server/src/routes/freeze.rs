//! The single-use freeze link from a pending widening's announcement, as two plain pages: `GET`
//! shows what a freeze does and one button, `POST` freezes. A `GET` never freezes, because
//! mail scanners open links. The token in the URL is the only credential, and a freeze can only
//! make the account safer. Both are rate-limited per client address, like the cancel link.

use super::cancel::{Back, LinkRefusals, Notice, link_refused, page};
use crate::limits::PerIp;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_app::AppError;
use portcullis_app::ErrorCode;

#[derive(Template)]
#[template(path = "freeze.html")]
struct FreezePage<'a> {
    exchange: &'a str,
    token: &'a str,
    account: &'a str,
}

fn refused(state: &AppState, error: AppError) -> Response {
    let codes = LinkRefusals {
        unknown: ErrorCode::InvalidFreezeLink,
        used: ErrorCode::FreezeLinkUsed,
        expired: Some(ErrorCode::FreezeLinkExpired),
        advice: "To freeze your account, open the security center from the exchange's app, or contact us through the app.",
    };
    link_refused(state, error, &codes, &state.forged_freeze_links)
}

/// `GET /freeze/{token}`: what a freeze does, and the button.
pub async fn show(_: PerIp, State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = match state.app.guard.freeze_link_account(&token).await {
        Ok(link) => link,
        Err(error) => return refused(&state, error),
    };
    let template = FreezePage {
        exchange: &state.app.guard.settings().exchange_name,
        token: &token,
        account: &link.account,
    };
    page(StatusCode::OK, &template)
}

/// `POST /freeze/{token}`: freezes, once.
pub async fn confirm(
    _: PerIp,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    match state.app.guard.freeze_by_token(&token).await {
        Ok(report) => {
            let message = format!(
                "Your account is frozen: no API key can withdraw or transfer, and {} pending change(s) were cancelled. Contact us through the exchange's app.",
                report.changes_cancelled.len()
            );
            let exchange = &state.app.guard.settings().exchange_name;
            page(
                StatusCode::OK,
                &Notice {
                    exchange,
                    heading: "Your account is frozen",
                    message,
                    back: Back::SignIn,
                },
            )
        }
        Err(error) => refused(&state, error),
    }
}
