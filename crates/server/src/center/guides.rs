//! The security guides: short, plain pages on how the phone scam works, what the exchange never
//! asks, what to do after a suspicious call and how to verify a contact. Public (no sign-in),
//! because they are linked from every warning and every e-mail, which a worried customer may
//! open on any device. Static text under the strict page policy: no scripts, no forms.

use crate::routes::cancel::page;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

/// One guide: its address, its title, and a line for the index.
#[derive(Debug, Clone, Copy)]
pub struct Guide {
    pub slug: &'static str,
    pub title: &'static str,
    pub teaser: &'static str,
}

/// Every guide, in the order a customer should read them.
pub const GUIDES: [Guide; 4] = [
    Guide {
        slug: "phone-scam",
        title: "How the phone scam works",
        teaser: "the call, the urgent problem, the key change, the drain",
    },
    Guide {
        slug: "we-never-ask",
        title: "What we never ask you",
        teaser: "no key changes, no addresses, no codes, no \"releasing\" holds, ever",
    },
    Guide {
        slug: "after-a-call",
        title: "What to do after a suspicious call",
        teaser: "hang up, freeze, revoke, report",
    },
    Guide {
        slug: "verify-a-contact",
        title: "How to verify a contact",
        teaser: "check a number, address or link before you trust it",
    },
];

/// The path of the guide for a moment of doubt, to link from warnings and e-mails.
pub const AFTER_A_CALL: &str = "/guides/after-a-call";

#[derive(Template)]
#[template(path = "guides_index.html")]
struct IndexPage<'a> {
    exchange: &'a str,
    guides: &'a [Guide],
    /// The guide asked for does not exist (shown with a 404).
    missing: bool,
}

#[derive(Template)]
#[template(path = "guide.html")]
struct GuidePage<'a> {
    exchange: &'a str,
    slug: &'a str,
    title: &'a str,
}

pub async fn index(State(state): State<AppState>) -> Response {
    let exchange = &state.app.guard.settings().exchange_name;
    page(
        StatusCode::OK,
        &IndexPage {
            exchange,
            guides: &GUIDES,
            missing: false,
        },
    )
}

pub async fn guide(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    let exchange = &state.app.guard.settings().exchange_name;
    match GUIDES.iter().find(|g| g.slug == slug) {
        Some(guide) => page(
            StatusCode::OK,
            &GuidePage {
                exchange,
                slug: guide.slug,
                title: guide.title,
            },
        ),
        None => page(
            StatusCode::NOT_FOUND,
            &IndexPage {
                exchange,
                guides: &GUIDES,
                missing: true,
            },
        ),
    }
}
