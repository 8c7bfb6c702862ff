//! The security center's contact page: changing the e-mail address or anti-phishing code that
//! every announcement depends on. The page shows the warning first; its script confirms with a
//! step-up and posts to `/security/api/contact`, which goes through the same guarded use case
//! as `PATCH /v1/accounts/{account}` (a pending change with its cool-down), with the customer as
//! the actor.

use super::CENTER_CSP;
use super::session::{Customer, ScriptCustomer};
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::guard_dto::PendingChangeDto;
use crate::routes::cancel::{Back, Notice, page, page_with};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_app::accounts::AccountFields;
use portcullis_app::guard::AccountOutcome;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Template)]
#[template(path = "center_contact.html")]
struct ContactPage<'a> {
    exchange: &'a str,
    csrf: &'a str,
    email: String,
    /// The step-up the form asks for: `passkey`, `totp` or `none`.
    method: &'static str,
}

/// `GET /security/contact`: the warning, then the form.
pub async fn page_for(State(state): State<AppState>, customer: Customer) -> Response {
    let exchange = &state.app.guard.settings().exchange_name;
    let overview = match state
        .app
        .guard
        .overview(&customer.actor, &customer.account, 0)
        .await
    {
        Ok(overview) => overview,
        Err(error) => {
            let message = error.to_string();
            let status = crate::error::ApiError::from(error).status;
            let heading = "Nothing was changed";
            return page(
                status,
                &Notice {
                    exchange,
                    heading,
                    message,
                    back: Back::Center,
                },
            );
        }
    };
    let template = ContactPage {
        exchange,
        csrf: &customer.csrf,
        email: overview.account.email.clone().unwrap_or_default(),
        method: super::pages::step_up_method(&overview),
    };
    page_with(StatusCode::OK, &template, CENTER_CSP).into_response()
}

/// The new contact as the page's script sends it: an absent field stays as it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    email: Option<String>,
    anti_phishing_code: Option<String>,
    step_up_grant: Option<String>,
}

impl ContactBody {
    fn fields(&self) -> AccountFields {
        AccountFields {
            email: self.email.clone(),
            anti_phishing_code: self.anti_phishing_code.clone(),
            ..AccountFields::default()
        }
    }
}

/// `POST /security/api/contact/check`: the new contact validated, nothing written.
pub async fn check(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<ContactBody>,
) -> ApiResult<Json<Value>> {
    let method = state
        .app
        .guard
        .check_account_change(&customer.actor, &customer.account, body.fields())
        .await?;
    Ok(super::api::step_up_needed(method))
}

/// `POST /security/api/contact`: the guarded change, answered with the pending change.
pub async fn change(
    State(state): State<AppState>,
    ScriptCustomer(customer): ScriptCustomer,
    ApiJson(body): ApiJson<ContactBody>,
) -> ApiResult<Json<Value>> {
    let fields = body.fields();
    let outcome = state
        .app
        .guard
        .change_account(
            &customer.actor,
            &customer.account,
            fields,
            body.step_up_grant.as_deref(),
        )
        .await?;
    Ok(Json(match outcome {
        AccountOutcome::Applied(_) => json!({ "applied": true }),
        AccountOutcome::Pending(receipt) => {
            json!({ "applied": false, "pending": PendingChangeDto::from(receipt.change) })
        }
    }))
}
