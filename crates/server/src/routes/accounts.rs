//! Accounts: register customers with their official contacts and anti-phishing code.

use super::page_limit;
use crate::dto::{AccountDto, AccountPage, CreateAccountBody, UpdateAccountBody};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::guard_dto::PendingChangeDto;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_app::accounts::AccountFields;
use portcullis_app::guard::AccountOutcome;

/// Register an account.
#[utoipa::path(
    post, path = "/v1/accounts", tag = "accounts",
    request_body = CreateAccountBody,
    responses((status = 201, body = AccountDto), (status = 400, description = "`invalid_account`", body = ErrorBody), (status = 409, description = "The id is taken", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<CreateAccountBody>,
) -> ApiResult<(StatusCode, Json<AccountDto>)> {
    let fields = AccountFields {
        display_name: body.display_name,
        email: body.email,
        phone: body.phone,
        anti_phishing_code: body.anti_phishing_code,
    };
    let account = state.app.accounts.create(&actor, &body.id, fields).await?;
    Ok((StatusCode::CREATED, Json(account.into())))
}

/// List accounts by id.
#[utoipa::path(
    get, path = "/v1/accounts", tag = "accounts",
    params(AccountPage),
    responses((status = 200, body = [AccountDto])),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(page): Query<AccountPage>,
) -> ApiResult<Json<Vec<AccountDto>>> {
    let accounts = state
        .app
        .accounts
        .list(&actor, page.after.as_deref(), page_limit(page.limit))
        .await?;
    Ok(Json(accounts.into_iter().map(AccountDto::from).collect()))
}

/// Show an account.
#[utoipa::path(
    get, path = "/v1/accounts/{account}", tag = "accounts",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = AccountDto), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
) -> ApiResult<Json<AccountDto>> {
    Ok(Json(state.app.accounts.get(&actor, &account).await?.into()))
}

/// Change an account. A new e-mail address or anti-phishing code (the channel every security
/// notice goes through) is a widening: it needs a step-up grant and answers 202 with the
/// pending change, announced to the old address with a cancel and a freeze link. Other fields
/// apply at once.
#[utoipa::path(
    patch, path = "/v1/accounts/{account}", tag = "accounts",
    params(("account" = String, Path, description = "Account id")),
    request_body = UpdateAccountBody,
    responses(
        (status = 200, description = "Nothing contact-related changed: applied", body = AccountDto),
        (status = 202, description = "A new e-mail address or anti-phishing code, now pending", body = PendingChangeDto),
        (status = 400, description = "`invalid_email`, `invalid_anti_phishing_code`, `invalid_account`; nothing is written", body = ErrorBody),
        (status = 403, description = "`step_up_required` and the other step-up refusals", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 423, description = "`account_protected`: frozen or settings locked", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(account): Path<String>,
    ApiJson(body): ApiJson<UpdateAccountBody>,
) -> ApiResult<Response> {
    let fields = AccountFields {
        display_name: body.display_name,
        email: body.email,
        phone: body.phone,
        anti_phishing_code: body.anti_phishing_code,
    };
    let grant = body.step_up_grant.as_deref();
    match state
        .app
        .guard
        .change_account(&actor, &account, fields, grant)
        .await?
    {
        AccountOutcome::Applied(account) => Ok(Json(AccountDto::from(account)).into_response()),
        AccountOutcome::Pending(receipt) => {
            Ok((StatusCode::ACCEPTED, Json(PendingChangeDto::from(*receipt))).into_response())
        }
    }
}
