//! The OpenAPI 3.1 document, generated from the handlers and DTOs. The copy in
//! `docs/openapi.json` is checked against it by a test, so the two cannot drift.

use crate::openapi_shared::SharedResponses;
use crate::{dto, error, routes};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Key authority for exchange API keys: least-privilege keys, signed-request verification, tamper-evident audit.",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::system::healthz, routes::system::readyz, routes::system::metrics, routes::system::openapi,
        routes::verify::verify,
        routes::accounts::create, routes::accounts::list, routes::accounts::show, routes::accounts::update,
        routes::keys::create, routes::keys::list, routes::keys::import, routes::keys::show,
        routes::keys::update, routes::keys::revoke, routes::keys::rotate,
        routes::operators::create, routes::operators::list, routes::operators::revoke,
        routes::operators::enrol_link,
        routes::audit::list, routes::audit::verify, routes::audit::verify_since, routes::audit::head, routes::audit::events, routes::audit::rewrap,
        routes::outbox::list,
        routes::risk::ingest, routes::risk::decide, routes::risk::list, routes::risk::show, routes::risk::reload_policy,
        routes::policy::in_force, routes::policy::validate, routes::policy::versions, routes::policy::version,
        routes::policy::propose, routes::policy::approve, routes::policy::rollback, routes::policy::backtest, routes::policy::stats,
        routes::guard::start_totp, routes::guard::confirm_totp, routes::guard::step_up_totp,
        routes::guard::list_changes, routes::guard::show_change, routes::guard::cancel_change,
        routes::guard::hold_change, routes::guard::release_change,
        routes::guard::protection, routes::guard::freeze, routes::guard::unfreeze, routes::guard::lock_settings,
        routes::guard::list_addresses, routes::guard::add_address, routes::guard::remove_address,
        routes::guard::check_withdrawal,
        routes::withdrawals::review, routes::withdrawals::release, routes::withdrawals::cancel,
        routes::digest::show, routes::digest::subscribe, routes::digest::unsubscribe,
        routes::passkeys::list, routes::passkeys::sign_in_link,
        routes::contacts::add, routes::contacts::list, routes::contacts::remove,
        routes::contacts::verify, routes::contacts::registry, routes::contacts::reports,
        routes::network::list, routes::network::show, routes::network::confirm, routes::network::graph,
        routes::overrides::set, routes::overrides::lift, routes::overrides::list,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, dto::ContextBody, dto::StepUpBody)),
    modifiers(&OperatorToken, &SharedResponses),
    tags(
        (name = "verify", description = "Signed-request verification for gateways"),
        (name = "keys", description = "API keys"),
        (name = "accounts", description = "Customer accounts"),
        (name = "operators", description = "Operators and their roles"),
        (name = "audit", description = "Tamper-evident audit trail"),
        (name = "events", description = "Internal event log"),
        (name = "risk", description = "Risk engine: event feed, decisions"),
        (name = "system", description = "Health, metrics, this document"),
        (name = "step-up", description = "TOTP enrolment and step-up grants"),
        (name = "changes", description = "Widenings waiting out their cool-down"),
        (name = "protection", description = "Freeze, settings lock and the daily digest"),
        (name = "addresses", description = "Withdrawal-address allow-list"),
        (name = "withdrawals", description = "Withdrawals the risk engine held: review, four-eyes release, cancel"),
        (name = "contacts", description = "Official contacts, verification and reports"),
        (name = "network", description = "Entity graph: campaign alerts, confirmations, the graph around an entity"),
    )
)]
struct ApiDoc;

struct OperatorToken;

impl Modify for OperatorToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, pretty-printed with a trailing newline (the form kept in the repository).
pub fn document_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    /// The refusals every operation of a kind can give are documented on each (schemathesis
    /// found 401 and 415 missing on almost every operation): 401 and 403 behind a token, 400,
    /// 413 and 415 with a JSON body, 404 with a path parameter; and no body is a JSON `null`.
    #[test]
    fn every_operation_documents_the_refusals_made_before_its_handler() {
        let document: serde_json::Value = serde_json::from_str(&super::document_json()).unwrap();
        let mut checked = 0;
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let responses = &operation["responses"];
                let has = |status: &str| responses.get(status).is_some();
                if operation["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty())
                {
                    assert!(has("401") && has("403"), "{method} {path}: 401/403");
                    checked += 1;
                }
                let json = &operation["requestBody"]["content"]["application/json"];
                if !json.is_null() {
                    assert!(
                        has("400") && has("413") && has("415"),
                        "{method} {path}: 400/413/415"
                    );
                    assert!(
                        json["schema"].get("oneOf").is_none(),
                        "{method} {path}: a null body"
                    );
                }
                if path.contains('{') {
                    assert!(has("404"), "{method} {path}: 404");
                }
            }
        }
        assert!(checked > 40, "only {checked} secured operations");
    }

    /// A parameter declared in the path must be in the path's template, and every placeholder
    /// of the template must be declared: a query parameter declared as a path parameter misleads
    /// every client generated from the document.
    #[test]
    fn every_path_parameter_is_in_its_path_and_every_placeholder_declared() {
        let document: serde_json::Value = serde_json::from_str(&super::document_json()).unwrap();
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let parameters = operation["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let declared: Vec<&str> = parameters
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                for name in &declared {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: `{name}` is declared in the path but is not in it"
                    );
                }
                for placeholder in path.split('{').skip(1) {
                    let name = placeholder.split('}').next().unwrap();
                    assert!(
                        declared.contains(&name),
                        "{method} {path}: `{name}` is not declared"
                    );
                }
            }
        }
    }
}
