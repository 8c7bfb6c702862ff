//! The contact channel guarded like a widening, over real HTTP on both backends: a new e-mail
//! address or anti-phishing code needs a step-up, waits out its cool-down announced to the OLD
//! address (with a cancel link and a single-use freeze link), leaves every announcement on the
//! old address meanwhile, is refused while frozen or locked, and when it applies both addresses
//! are told. Bad input is refused with a stable code and writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::channels::{outbox, start_with_channels as start};
use common::guard::{HOUR, account_with_key, code_of, enrol_totp, grant};
use common::{Backend, TestServer};
use portcullis_app::ports::Channel;
use serde_json::json;

const OLD: &str = "ada@example.com";
const NEW: &str = "attacker@example.net";

/// The e-mails to `recipient` whose subject contains `about`.
async fn mails(server: &TestServer, account: &str, recipient: &str, about: &str) -> Vec<String> {
    outbox(server, account)
        .await
        .into_iter()
        .filter(|m| m.channel == Channel::Email && m.recipient == recipient)
        .filter(|m| m.subject.contains(about))
        .map(|m| m.body_text)
        .collect()
}

/// The path of the link in `mail` that starts with `prefix` (e.g. `/cancel/`).
fn link(mail: &str, prefix: &str) -> String {
    let start = mail.find(prefix).unwrap();
    mail[start..].split_whitespace().next().unwrap().to_owned()
}

async fn contact_change_is_a_widening_told_to_the_old_address(backend: Backend) {
    let server = start(backend).await;
    let admin = server.admin();
    let (key_id, _, _) = account_with_key(&server, "acc_c").await;
    let path = "/v1/accounts/acc_c";
    let to_attacker = json!({ "email": NEW });

    // Without an authenticator there is no confirmation to give: refused, as for any widening.
    let nothing = admin.patch(path, &to_attacker).await;
    assert_eq!(code_of(&nothing), (403, "step_up_not_enrolled".into()));
    let app = enrol_totp(&server, "acc_c").await;
    // A leaked integration token without a grant changes nothing.
    let integration = server.operator("integration").await;
    let leaked = integration.patch(path, &to_attacker).await;
    assert_eq!(code_of(&leaked), (403, "step_up_required".into()));
    assert_eq!(admin.get(path).await.body["email"], OLD);

    // Bad input: a stable code, nothing written, the grant still unspent.
    let token = grant(&server, "acc_c", &app).await;
    let bad_mail = admin
        .patch(path, &json!({ "email": "ada@", "step_up_grant": token }))
        .await;
    assert_eq!(code_of(&bad_mail), (400, "invalid_email".into()));
    let bad_code = admin
        .patch(
            path,
            &json!({ "anti_phishing_code": "no!", "display_name": "X", "step_up_grant": token }),
        )
        .await;
    assert_eq!(
        code_of(&bad_code),
        (400, "invalid_anti_phishing_code".into())
    );
    let unchanged = admin.get(path).await.body;
    assert_eq!(
        (
            unchanged["email"].clone(),
            unchanged["display_name"].clone()
        ),
        (json!(OLD), json!(""))
    );
    assert_eq!(
        admin.get("/v1/accounts/acc_c/changes").await.body,
        json!([])
    );

    // Good input: 202 with the pending change; the display name applies at once, the contact
    // does not, and the new code is never repeated.
    let pending = admin
        .patch(
            path,
            &json!({ "email": NEW, "anti_phishing_code": "Red777", "display_name": "Ada L.", "step_up_grant": token }),
        )
        .await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    assert_eq!(pending.body["kind"], "contact_change");
    assert_eq!(pending.body["widenings"], json!(["changes_contact"]));
    assert_eq!(pending.body["status"], "pending");
    assert_eq!(pending.body["step_up"], "totp");
    assert_eq!(pending.body["action"]["email"], NEW);
    assert_eq!(pending.body["action"]["anti_phishing_code"], "new");
    assert!(!pending.text.contains("Red777"), "{}", pending.text);
    assert_eq!(
        pending.body["applies_at"],
        server.now().plus_millis(24 * HOUR).to_rfc3339()
    );
    assert!(
        pending.body["cancel_url"]
            .as_str()
            .unwrap()
            .contains("/cancel/pcx_")
    );
    let account = admin.get(path).await.body;
    assert_eq!(account["email"], OLD);
    assert_eq!(account["display_name"], "Ada L.");
    let reused = admin
        .patch(path, &json!({ "email": NEW, "step_up_grant": token }))
        .await;
    assert_eq!(code_of(&reused), (403, "grant_spent".into()));

    // The old address is told, under its own code, with a cancel and a freeze link; the new
    // one hears nothing yet; the webhook is told too.
    let told = mails(&server, "acc_c", OLD, "about to change").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].starts_with("Your anti-phishing code: Blue42"),
        "{}",
        told[0]
    );
    assert!(
        told[0].contains(NEW) && !told[0].contains("Red777"),
        "{}",
        told[0]
    );
    assert!(told[0].contains("/cancel/pcx_") && told[0].contains("/freeze/pfz_"));
    assert!(mails(&server, "acc_c", NEW, "").await.is_empty());
    let hooks: Vec<_> = outbox(&server, "acc_c")
        .await
        .into_iter()
        .filter(|m| m.channel == Channel::Webhook && m.subject == "contact.change_pending")
        .collect();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].body_text.contains("/freeze/pfz_"));

    // During the cool-down a key widening is still announced to the OLD address.
    let token = grant(&server, "acc_c", &app).await;
    let widen = admin
        .patch(
            &format!("/v1/keys/{key_id}"),
            &json!({ "scopes": ["read", "trade", "withdraw"], "step_up_grant": token }),
        )
        .await;
    assert_eq!(widen.status, 202, "{}", widen.text);
    let key_notice = mails(&server, "acc_c", OLD, "API key change is waiting").await;
    assert_eq!(key_notice.len(), 1);
    assert!(key_notice[0].starts_with("Your anti-phishing code: Blue42"));
    assert!(mails(&server, "acc_c", NEW, "").await.is_empty());

    // Not a moment early; then in force, told to both addresses, each under its own code.
    server.clock.advance(24 * HOUR - 60_000);
    server.app.guard.apply_due().await.unwrap();
    assert_eq!(admin.get(path).await.body["email"], OLD);
    server.clock.advance(60_000);
    server.app.guard.apply_due().await.unwrap();
    let account = admin.get(path).await.body;
    assert_eq!(account["email"], NEW);
    assert_eq!(account["anti_phishing_code_set"], true);
    let stored = server.app.store.account("acc_c").await.unwrap().unwrap();
    assert_eq!(stored.anti_phishing_code.as_deref(), Some("Red777"));
    assert_eq!(stored.display_name, "Ada L.");
    let change = pending.body["id"].as_str().unwrap();
    assert_eq!(
        admin.get(&format!("/v1/changes/{change}")).await.body["status"],
        "applied"
    );
    let old_told = mails(&server, "acc_c", OLD, "code changed").await;
    assert_eq!(old_told.len(), 1, "{old_told:?}");
    assert!(old_told[0].starts_with("Your anti-phishing code: Blue42"));
    let new_told = mails(&server, "acc_c", NEW, "code changed").await;
    assert_eq!(new_told.len(), 1);
    assert!(new_told[0].starts_with("Your anti-phishing code: Red777"));
    let audit = admin.get("/v1/audit?limit=1000").await.body.to_string();
    assert!(audit.contains("widening.applied") && audit.contains("account.updated"));
    assert!(
        !audit.contains("Red777"),
        "the code never enters the audit trail"
    );
    assert_eq!(admin.get("/v1/audit/verify").await.body["intact"], true);

    // A narrowing-only edit stays immediate and needs no grant.
    let renamed = integration
        .patch(
            path,
            &json!({ "display_name": "Ada", "phone": "+14155550123" }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["display_name"], "Ada");
}

async fn cancel_link_from_the_old_address_changes_nothing(backend: Backend) {
    let server = start(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_k").await;
    let app = enrol_totp(&server, "acc_k").await;
    let token = grant(&server, "acc_k", &app).await;
    let pending = admin
        .patch(
            "/v1/accounts/acc_k",
            &json!({ "email": NEW, "step_up_grant": token }),
        )
        .await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    let mail = mails(&server, "acc_k", OLD, "about to change")
        .await
        .remove(0);
    let cancel = link(&mail, "/cancel/");
    let done = server
        .anonymous()
        .post_raw(&cancel, Vec::new(), "application/x-www-form-urlencoded")
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("The change is cancelled"));
    server.clock.advance(48 * HOUR);
    server.app.guard.apply_due().await.unwrap();
    let account = admin.get("/v1/accounts/acc_k").await.body;
    assert_eq!(account["email"], OLD);
    let change = pending.body["id"].as_str().unwrap();
    assert_eq!(
        admin.get(&format!("/v1/changes/{change}")).await.body["status"],
        "cancelled"
    );
    assert!(mails(&server, "acc_k", NEW, "").await.is_empty());
    assert_eq!(mails(&server, "acc_k", OLD, "was cancelled").await.len(), 1);
}

async fn freeze_link_freezes_once_and_protections_refuse(backend: Backend) {
    let server = start(backend).await;
    let admin = server.admin();
    account_with_key(&server, "acc_z").await;
    let app = enrol_totp(&server, "acc_z").await;
    let token = grant(&server, "acc_z", &app).await;
    let pending = admin
        .patch(
            "/v1/accounts/acc_z",
            &json!({ "anti_phishing_code": "Red777", "step_up_grant": token }),
        )
        .await;
    assert_eq!(pending.status, 202, "{}", pending.text);
    let mail = mails(&server, "acc_z", OLD, "about to change")
        .await
        .remove(0);
    let freeze = link(&mail, "/freeze/");
    let anonymous = server.anonymous();

    // GET only shows the button (mail scanners open links).
    let page = anonymous.get(&freeze).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Freeze my account") && page.text.contains("acc_z"));
    assert!(!page.text.contains("<script"));
    assert_eq!(
        admin.get("/v1/accounts/acc_z/protection").await.body["frozen"],
        false
    );

    let done = anonymous
        .post_raw(&freeze, Vec::new(), "application/x-www-form-urlencoded")
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Your account is frozen"));
    assert_eq!(
        admin.get("/v1/accounts/acc_z/protection").await.body["frozen"],
        true
    );
    let change = pending.body["id"].as_str().unwrap();
    assert_eq!(
        admin.get(&format!("/v1/changes/{change}")).await.body["status"],
        "cancelled"
    );
    let again = anonymous
        .post_raw(&freeze, Vec::new(), "application/x-www-form-urlencoded")
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let forged = anonymous
        .post_raw(
            "/freeze/pfz_forged",
            Vec::new(),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(forged.status, 404);
    let metrics = admin.get("/metrics").await.text;
    assert!(
        metrics.contains("portcullis_freeze_links_forged_total 1"),
        "counted, not audited"
    );
    let audit = admin.get("/v1/audit?limit=1000").await.body.to_string();
    assert!(audit.contains("customer:acc_z") && audit.contains("account.frozen"));
    assert!(!audit.contains("pfz_forged"));

    // Frozen: a contact change is refused, and writes nothing.
    let token = grant(&server, "acc_z", &app).await;
    let frozen = admin
        .patch(
            "/v1/accounts/acc_z",
            &json!({ "email": NEW, "step_up_grant": token }),
        )
        .await;
    assert_eq!(code_of(&frozen), (423, "account_protected".into()));
    assert_eq!(admin.get("/v1/accounts/acc_z").await.body["email"], OLD);

    // Locked: refused the same way.
    account_with_key(&server, "acc_lk").await;
    let app_l = enrol_totp(&server, "acc_lk").await;
    let until = server.now().plus_millis(10 * 24 * HOUR).to_rfc3339();
    let locked = admin
        .post(
            "/v1/accounts/acc_lk/settings-lock",
            &json!({ "until": until }),
        )
        .await;
    assert_eq!(locked.status, 200, "{}", locked.text);
    let token = grant(&server, "acc_lk", &app_l).await;
    let during = admin
        .patch(
            "/v1/accounts/acc_lk",
            &json!({ "email": NEW, "step_up_grant": token }),
        )
        .await;
    assert_eq!(code_of(&during), (423, "account_protected".into()));
    assert_eq!(admin.get("/v1/accounts/acc_lk").await.body["email"], OLD);
    assert_eq!(
        admin.get("/v1/accounts/acc_lk/changes").await.body,
        json!([])
    );
}

on_both_backends!(
    contact_change_is_a_widening_told_to_the_old_address,
    cancel_link_from_the_old_address_changes_nothing,
    freeze_link_freezes_once_and_protections_refuse,
);
