//! "Is this really the exchange?": the official-contact registry (`admin` changes it; every
//! change is audited), verification, the registry's inputs for bulk verification, and the
//! reports of contacts grouped with their counts.

use super::page_limit;
use crate::contacts_dto::{
    AddOfficialBody, ContactReportDto, KnownScamDto, OfficialContactDto, OfficialMatchDto,
    RegistryDto, ReportsQuery, VerifyContactBody, VerifyContactDto,
};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Operator};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use portcullis_app::contacts::NewOfficial;

/// Add an official contact.
#[utoipa::path(
    post, path = "/v1/contacts/official", tag = "contacts",
    request_body = AddOfficialBody,
    responses((status = 201, body = OfficialContactDto), (status = 400, description = "`invalid_contact_kind`, `invalid_phone`, `invalid_domain`, `invalid_punycode`, `invalid_email`, `invalid_handle`, `empty_value`, `value_too_long`, `control_characters`, `invalid_channel`, `invalid_direction`, `invalid_note`", body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "already listed", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn add(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<AddOfficialBody>,
) -> ApiResult<(StatusCode, Json<OfficialContactDto>)> {
    let new = NewOfficial {
        kind: body.kind,
        value: body.value,
        channel: body.channel,
        direction: body.direction,
        note: body.note,
    };
    let added = state.app.contacts.add_official(&actor, &new).await?;
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// The official contacts, oldest first.
#[utoipa::path(
    get, path = "/v1/contacts/official", tag = "contacts",
    responses((status = 200, body = [OfficialContactDto]), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<Vec<OfficialContactDto>>> {
    let listed = state.app.contacts.list_official(&actor).await?;
    Ok(Json(
        listed.into_iter().map(OfficialContactDto::from).collect(),
    ))
}

/// Remove an official contact.
#[utoipa::path(
    delete, path = "/v1/contacts/official/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Official contact id (`oc_...`)")),
    responses((status = 200, body = OfficialContactDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn remove(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<OfficialContactDto>> {
    let removed = state.app.contacts.remove_official(&actor, &id).await?;
    Ok(Json(removed.into()))
}

/// Is this phone number, e-mail address, domain, link or handle really the exchange's?
#[utoipa::path(
    post, path = "/v1/contacts/verify", tag = "contacts",
    request_body = VerifyContactBody,
    responses((status = 200, body = VerifyContactDto), (status = 400, description = "`empty_value`, `value_too_long`, `control_characters`, `invalid_punycode`, `invalid_domain`, `invalid_url`, `invalid_email`, `invalid_phone`, `invalid_handle`", body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<VerifyContactBody>,
) -> ApiResult<Json<VerifyContactDto>> {
    let answer = (state.app.contacts).verify(&actor, &body.value, body.region.as_deref())?;
    Ok(Json(answer.into()))
}

/// What the registry is compiled from (official contacts and known scams), for verifying
/// many values outside the server.
#[utoipa::path(
    get, path = "/v1/contacts/registry", tag = "contacts",
    responses((status = 200, body = RegistryDto), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn registry(
    State(state): State<AppState>,
    Operator(actor): Operator,
) -> ApiResult<Json<RegistryDto>> {
    let (official, scams) = state.app.contacts.registry_inputs(&actor).await?;
    Ok(Json(RegistryDto {
        official: official.into_iter().map(OfficialMatchDto::from).collect(),
        known_scams: scams.into_iter().map(KnownScamDto::from).collect(),
        default_region: state.app.contacts.settings().default_region.clone(),
    }))
}

/// Reported contacts grouped with their counts, most recently reported first.
#[utoipa::path(
    get, path = "/v1/contacts/reports", tag = "contacts",
    params(ReportsQuery),
    responses((status = 200, body = [ContactReportDto]), (status = 403, body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn reports(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Query(query): Query<ReportsQuery>,
) -> ApiResult<Json<Vec<ContactReportDto>>> {
    let contacts = &state.app.contacts;
    let rows = contacts.reports(&actor, page_limit(query.limit)).await?;
    let threshold = contacts.settings().report_threshold;
    Ok(Json(
        rows.into_iter()
            .map(|row| ContactReportDto::new(row, threshold))
            .collect(),
    ))
}
