//! The console's pages: sign-in, enrolment, the queue and the case of one account. Each
//! handler parses, calls one use case and renders.

use super::session::ConsoleOperator;
use crate::center::CENTER_CSP;
use crate::error::ApiError;
use crate::routes::cancel::page_with;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_app::AppError;
use portcullis_app::console::CaseView;
use portcullis_core::queue::{AssigneeFilter, ItemKind, QueueFilter, QueueItem, SortBy, age_words};
use portcullis_core::time::UnixMillis;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "console_sign_in.html")]
struct SignInPage<'a> {
    exchange: &'a str,
    heading: &'a str,
    token: &'a str,
    enrol_name: Option<String>,
    enrol_until: String,
    refusal: Option<String>,
}

#[derive(Template)]
#[template(path = "console_notice.html")]
struct NoticePage<'a> {
    exchange: &'a str,
    heading: &'a str,
    message: &'a str,
}

fn exchange(state: &AppState) -> &str {
    &state.app.guard.settings().exchange_name
}

/// A console page (this origin's script and style only).
fn render(status: StatusCode, template: &impl Template) -> Response {
    page_with(status, template, CENTER_CSP)
}

/// A refused form or query: nothing changed, and why.
pub fn nothing_changed(status: StatusCode, message: &str) -> Response {
    let page = NoticePage {
        exchange: "Portcullis",
        heading: "Nothing was changed",
        message,
    };
    render(status, &page)
}

/// A use case's refusal as a page.
pub fn refusal(error: AppError) -> Response {
    let error = ApiError::from(error);
    nothing_changed(
        error.status,
        &format!("{} ({})", error.message, error.code.as_str()),
    )
}

pub async fn sign_in_page(State(state): State<AppState>) -> Response {
    let page = SignInPage {
        exchange: exchange(&state),
        heading: "Sign in to the console",
        token: "",
        enrol_name: None,
        enrol_until: String::new(),
        refusal: None,
    };
    render(StatusCode::OK, &page)
}

/// `GET /console/enrol/{token}`: who the link is for and the button; a `GET` spends nothing.
pub async fn enrol_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let (enrol_name, enrol_until, refusal, status) = match state.app.console.enrolment(&token).await
    {
        Ok((link, operator)) => (
            Some(operator.name),
            link.expires_at.to_rfc3339(),
            None,
            StatusCode::OK,
        ),
        Err(error) => {
            let error = ApiError::from(error);
            let message = format!(
                "{}. Ask an administrator for a new enrolment link.",
                error.message
            );
            (None, String::new(), Some(message), error.status)
        }
    };
    let page = SignInPage {
        exchange: exchange(&state),
        heading: "Enrol a passkey",
        token: &token,
        enrol_name,
        enrol_until,
        refusal,
    };
    render(status, &page)
}

/// The queue's filters as the form sends them (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    min_age: String,
    #[serde(default)]
    min_amount: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    sort: String,
}

impl QueueQuery {
    fn filter(&self) -> Result<QueueFilter, String> {
        let some = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
        let kind = match some(&self.kind) {
            Some(k) => Some(ItemKind::parse(&k).ok_or("the type is alert, change or withdrawal")?),
            None => None,
        };
        let min_age_minutes = match some(&self.min_age) {
            Some(m) => Some(
                m.parse::<i64>()
                    .ok()
                    .filter(|m| *m >= 0)
                    .ok_or("'older than' is a whole number of minutes")?,
            ),
            None => None,
        };
        let min_amount_usd = match some(&self.min_amount) {
            Some(a) => Some(
                a.parse::<f64>()
                    .ok()
                    .filter(|a| a.is_finite() && *a >= 0.0)
                    .ok_or("'amount from' is a number of US dollars")?,
            ),
            None => None,
        };
        let assignee = match some(&self.assignee).as_deref() {
            None => AssigneeFilter::Anyone,
            Some("none") => AssigneeFilter::Nobody,
            Some(id) => AssigneeFilter::Operator(id.to_owned()),
        };
        let sort = match some(&self.sort) {
            Some(s) => SortBy::parse(&s).ok_or("sort by age, newest or amount")?,
            None => SortBy::Age,
        };
        Ok(QueueFilter {
            kind,
            rule: some(&self.rule),
            state: some(&self.state),
            min_age_minutes,
            min_amount_usd,
            assignee,
            sort,
        })
    }

    /// The query string that shows this same view (where a post leads back to).
    fn back(&self) -> String {
        let pairs = [
            ("kind", &self.kind),
            ("rule", &self.rule),
            ("state", &self.state),
            ("min_age", &self.min_age),
            ("min_amount", &self.min_amount),
            ("assignee", &self.assignee),
            ("sort", &self.sort),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", url_escape(v)))
            .collect();
        if query.is_empty() {
            "/console".into()
        } else {
            format!("/console?{}", query.join("&"))
        }
    }
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Row {
    id: String,
    kind: &'static str,
    state: String,
    rules: String,
    account: Option<String>,
    amount: String,
    age: String,
    target: String,
    overdue: bool,
    assignee: String,
    summary: String,
}

#[derive(Template)]
#[template(path = "console_queue.html")]
struct QueuePage<'a> {
    exchange: &'a str,
    me: &'a str,
    me_id: &'a str,
    csrf: &'a str,
    counts: Vec<(String, usize)>,
    rows: Vec<Row>,
    kinds: Vec<String>,
    rules: Vec<String>,
    states: Vec<String>,
    reviewers: Vec<(String, String)>,
    filter: &'a QueueQuery,
    back: String,
}

fn row(item: QueueItem, now: UnixMillis, names: &[(String, String)]) -> Row {
    let name_of = |id: &str| {
        names
            .iter()
            .find(|(i, _)| i == id)
            .map_or(id.to_owned(), |(_, n)| n.clone())
    };
    Row {
        kind: item.kind.as_str(),
        age: age_words(item.age_ms(now)),
        target: age_words(item.kind.target_ms()),
        overdue: item.overdue(now),
        assignee: item.assignee.as_deref().map(name_of).unwrap_or_default(),
        amount: item
            .amount_usd
            .map(|a| format!("{a:.2} USD"))
            .unwrap_or_default(),
        rules: item.rules.join(", "),
        id: item.id,
        state: item.state,
        account: item.account,
        summary: item.summary,
    }
}

/// `GET /console`: the queue.
pub async fn queue(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<QueueQuery>,
) -> Response {
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(message) => return nothing_changed(StatusCode::BAD_REQUEST, &message),
    };
    let console = &state.app.console;
    let (view, reviewers) = match tokio::try_join!(
        console.queue(&op.actor, &filter),
        console.reviewers(&op.actor)
    ) {
        Ok(found) => found,
        Err(error) => return refusal(error),
    };
    let reviewers: Vec<(String, String)> = reviewers.into_iter().map(|o| (o.id, o.name)).collect();
    let now = state.app.clock.now();
    let page = QueuePage {
        exchange: exchange(&state),
        me: &op.operator.name,
        me_id: &op.operator.id,
        csrf: &op.csrf,
        counts: view.counts.into_iter().collect(),
        rows: view
            .items
            .into_iter()
            .map(|i| row(i, now, &reviewers))
            .collect(),
        kinds: ItemKind::ALL
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect(),
        rules: view.rules,
        states: ["open", "confirmed", "held", "pending"]
            .map(String::from)
            .to_vec(),
        reviewers,
        back: query.back(),
        filter: &query,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "console_case.html")]
struct CasePage<'a> {
    exchange: &'a str,
    me: &'a str,
    csrf: &'a str,
    account: &'a str,
    frozen_at: Option<String>,
    locked_until: Option<String>,
    open: Vec<super::view::ChangeRow>,
    closed: Vec<super::view::ChangeRow>,
    withdrawals: Vec<super::view::WithdrawalRow>,
    links: Vec<super::view::LinkRow>,
    timeline: Vec<super::view::TimelineRow>,
}

/// `GET /console/accounts/{account}`: the case.
pub async fn case(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Path(account): Path<String>,
) -> Response {
    let case: CaseView = match state.app.console.case(&op.actor, &account).await {
        Ok(case) => case,
        Err(error) => return refusal(error),
    };
    let alerts = super::view::open_alerts(&state, &op.actor, case.graph.as_ref()).await;
    let names = match state.app.console.operator_names(&op.actor).await {
        Ok(names) => names,
        Err(error) => return refusal(error),
    };
    let now = state.app.clock.now();
    let page = CasePage {
        exchange: exchange(&state),
        me: &op.operator.name,
        csrf: &op.csrf,
        account: &case.account,
        frozen_at: case.protection.frozen_at.map(UnixMillis::to_rfc3339),
        locked_until: case
            .protection
            .lock_in_force(now)
            .map(UnixMillis::to_rfc3339),
        open: case
            .open_changes
            .iter()
            .map(|c| super::view::change_row(c, &names))
            .collect(),
        closed: case
            .closed_changes
            .iter()
            .map(|c| super::view::change_row(c, &names))
            .collect(),
        withdrawals: case
            .held_withdrawals
            .iter()
            .map(|w| super::view::withdrawal_row(w, &names))
            .collect(),
        links: super::view::link_rows(case.graph.as_ref(), &case.account, &alerts),
        timeline: case
            .timeline
            .into_iter()
            .map(|t| super::view::timeline_row(t, &names))
            .collect(),
    };
    render(StatusCode::OK, &page)
}
