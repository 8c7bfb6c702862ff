//! The security guides over real HTTP: every guide listed on the index and served as a page
//! under the strict policy, with the exchange's name escaped and the words a worried customer
//! needs; an unknown guide is a 404 page that lists the real ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestServer};

async fn every_guide_is_served_and_linked(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.exchange_name = "Ex<am>ple".into();
    })
    .await;
    let public = server.anonymous();
    let index = public.get("/guides").await;
    assert_eq!(index.status, 200);
    for (slug, must_say) in [
        ("phone-scam", "The key change."),
        ("we-never-ask", "offer to \"release\" a change"),
        ("after-a-call", "Freeze your account"),
        (
            "verify-a-contact",
            "It does not prove that a message is genuine",
        ),
    ] {
        let path = format!("/guides/{slug}");
        assert!(
            index.text.contains(&format!("href=\"{path}\"")),
            "{path} not listed"
        );
        let guide = public.get(&path).await;
        assert_eq!(guide.status, 200, "{path}");
        assert!(
            guide.text.contains(must_say),
            "{path}: {must_say:?} missing"
        );
        assert!(
            guide.text.contains("Ex&#60;am&#62;ple"),
            "{path}: the name is escaped"
        );
        assert!(!guide.text.contains("Ex<am>ple"), "{path}");
        assert!(!guide.text.contains("<script"), "{path}: no scripts");
        let csp = guide.csp.unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
    }
    let missing = public.get("/guides/free-money").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("no such guide"), "{}", missing.text);
    assert!(missing.text.contains("href=\"/guides/after-a-call\""));
}

on_both_backends!(every_guide_is_served_and_linked);
