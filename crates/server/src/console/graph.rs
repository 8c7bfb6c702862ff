//! The console's network graph: a page around one entity, drawn in the browser with
//! cytoscape.js (vendored from the npm registry, served from this origin under the console's
//! CSP), and the JSON it expands node by node (the same use case as `GET /v1/graph`).

use super::pages::{nothing_changed, refusal};
use super::session::ConsoleOperator;
use crate::center::CENTER_CSP;
use crate::error::ApiResult;
use crate::routes::cancel::page_with;
use crate::routes::network::GraphQuery;
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_engine::{EntityKind, GraphView};

#[derive(Template)]
#[template(path = "console_graph.html")]
struct GraphPage<'a> {
    exchange: &'a str,
    me: &'a str,
    csrf: &'a str,
    kind: &'a str,
    value: &'a str,
}

/// `GET /console/graph/{kind}/{value}`: the page; its script asks for the graph.
pub async fn page(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Path((kind, value)): Path<(String, String)>,
) -> Response {
    if EntityKind::parse(&kind).is_none() {
        return nothing_changed(
            StatusCode::BAD_REQUEST,
            "an entity is an account, address, ip, device or number",
        );
    }
    // The entity must be known: a page for nothing would only draw an empty box.
    if let Err(error) = state.app.guard.graph(&op.actor, &kind, &value, 0).await {
        return refusal(error);
    }
    let page = GraphPage {
        exchange: &state.app.guard.settings().exchange_name,
        me: &op.operator.name,
        csrf: &op.csrf,
        kind: &kind,
        value: &value,
    };
    page_with(StatusCode::OK, &page, CENTER_CSP)
}

/// `GET /console/api/graph/{kind}/{value}?hops=N`: the graph around an entity (default one hop).
pub async fn data(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Path((kind, value)): Path<(String, String)>,
    Query(query): Query<GraphQuery>,
) -> ApiResult<Json<GraphView>> {
    let hops = query.hops.unwrap_or(1);
    Ok(Json(
        state
            .app
            .guard
            .graph(&op.actor, &kind, &value, hops)
            .await?,
    ))
}
