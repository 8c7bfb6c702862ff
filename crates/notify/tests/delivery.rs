//! Delivery end to end against real receivers: e-mail to an SMTP server on loopback, signed
//! webhooks to an HTTP receiver, retries with backoff on a manual clock, and a crash between
//! claiming and sending that loses nothing and sends nothing twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_app::clock::ManualClock;
use portcullis_app::notify::{ChannelSettings, Delivery, DeliveryReport, RetryPolicy, announce};
use portcullis_app::ports::{
    ChangeSet, Channel, ClaimRequest, Clock, OutboxEntry, OutboxFilter, OutboxStatus, Store, Write,
};
use portcullis_core::account::Account;
use portcullis_core::notice::{Notice, NoticeKind};
use portcullis_core::secret::Secret;
use portcullis_core::time::UnixMillis;
use portcullis_notify::OfficialChannels;
use portcullis_notify::smtp::SmtpSender;
use portcullis_notify::webhook::WebhookSender;
use std::sync::Arc;
use std::time::Duration;
use support::{SmtpSink, WEBHOOK_SECRET, WebhookReceiver};

const T0: UnixMillis = UnixMillis(1_767_225_600_000);

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 1_000,
        max_delay_ms: 8_000,
        lease_ms: 60_000,
        batch: 10,
    }
}

fn account(id: &str, email: &str) -> Account {
    Account {
        id: id.into(),
        display_name: "Ada".into(),
        email: Some(email.into()),
        phone: None,
        anti_phishing_code: Some("Blue42".into()),
        created_at: T0,
        updated_at: T0,
        version: 1,
    }
}

fn notice(account: &str, change: &str) -> Notice {
    Notice {
        kind: NoticeKind::WideningPending,
        key: change.into(),
        account: account.into(),
        occurred_at: T0,
        summary: "API key 'grid bot': add withdraw".into(),
        details: vec![("Key".into(), "grid bot".into())],
        takes_effect_at: Some(T0.plus_millis(86_400_000)),
        cancel_url: Some(format!("https://exemplar.example/cancel/{change}")),
        freeze_url: None,
    }
}

fn channels(email: bool, webhook_url: Option<&str>) -> ChannelSettings {
    ChannelSettings {
        exchange_name: "Exemplar".into(),
        email,
        webhook_url: webhook_url.map(str::to_owned),
        guides_url: None,
    }
}

/// Commits the account together with the announcements of `changes`, as a use case would.
async fn announce_changes(
    store: &dyn Store,
    account: &Account,
    channels: &ChannelSettings,
    changes: &[&str],
) {
    let mut writes = vec![Write::InsertAccount(account.clone())];
    for change in changes {
        writes.extend(announce(
            account,
            &notice(&account.id, change),
            channels,
            T0,
        ));
    }
    let change = ChangeSet {
        writes,
        audit: vec![],
        events: vec![],
    };
    store.commit(change).await.unwrap();
}

async fn sqlite_at(path: &std::path::Path) -> Arc<dyn Store> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    portcullis_store::open(&url, portcullis_store::testing::keyring())
        .await
        .unwrap()
}

fn webhook_sender(secret: &[u8], clock: &Arc<ManualClock>) -> WebhookSender {
    WebhookSender::new(
        Secret::new(secret.to_vec()),
        Duration::from_secs(10),
        clock.clone() as Arc<dyn Clock>,
    )
}

fn delivery(
    store: &Arc<dyn Store>,
    sender: OfficialChannels,
    clock: &Arc<ManualClock>,
) -> Delivery {
    Delivery::new(
        store.clone(),
        Arc::new(sender),
        clock.clone() as Arc<dyn Clock>,
        policy(),
    )
}

async fn entries(store: &dyn Store, status: Option<OutboxStatus>) -> Vec<OutboxEntry> {
    let filter = OutboxFilter {
        account: None,
        status,
    };
    store.list_outbox(&filter, 100).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server_with_the_anti_phishing_code() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("mail"));
    let store = sqlite_at(&dir.path().join("p.db")).await;
    let clock = Arc::new(ManualClock::new(T0));
    let email = channels(true, None);
    announce_changes(
        store.as_ref(),
        &account("acc_1", "ada@example.com"),
        &email,
        &["chg_1"],
    )
    .await;
    // The SMTP server refuses this mailbox for good (550): the message is dead at once.
    announce_changes(
        store.as_ref(),
        &account("acc_2", "refused@example.com"),
        &email,
        &["chg_2"],
    )
    .await;
    let smtp = SmtpSender::new(
        &sink.url(),
        "Exemplar Security <security@exemplar.example>",
        Duration::from_secs(10),
    )
    .unwrap();
    let sender = OfficialChannels {
        email: Some(smtp),
        webhook: None,
    };
    let report = delivery(&store, sender, &clock)
        .deliver_all_due()
        .await
        .unwrap();
    assert_eq!(
        report,
        DeliveryReport {
            delivered: 1,
            failed: 0,
            dead: 1,
            lost_leases: 0
        }
    );

    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    let delivered = entries(store.as_ref(), Some(OutboxStatus::Delivered)).await;
    let id = &delivered[0].message.id;
    assert!(mail.raw.starts_with("Envelope-To: ada@example.com\n"));
    assert!(
        mail.raw
            .contains(&format!("Message-ID: <{id}@exemplar.example>")),
        "{}",
        mail.raw
    );
    assert!(
        mail.raw
            .contains("From: \"Exemplar Security\" <security@exemplar.example>")
    );
    assert!(
        mail.raw
            .contains("Subject: [Exemplar] An API key change is waiting to take effect")
    );
    assert!(
        mail.text.starts_with(
            "Your anti-phishing code: Blue42 \u{2014} if an e-mail claiming to be from Exemplar lacks it, it is not from us."
        ),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("hang up and freeze your account"));
    assert!(mail.text.contains("https://exemplar.example/cancel/chg_1"));
    assert!(mail.html.contains("Your anti-phishing code: Blue42"));
    assert!(
        mail.html
            .contains("<a href=\"https://exemplar.example/cancel/chg_1\">")
    );

    let dead = entries(store.as_ref(), Some(OutboxStatus::Dead)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.recipient, "refused@example.com");
    assert!(
        dead[0].last_error.as_deref().unwrap().contains("550"),
        "{dead:?}"
    );
}

/// The transient-failure story on any backend: two 503s, retried after 1 s and then 2 s (on
/// the manual clock), then delivered once, every request signed.
async fn transient_failures_back_off_then_deliver(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(T0));
    let receiver = WebhookReceiver::start(clock.clone(), vec![503, 503]).await;
    let hooks = channels(false, Some(&receiver.url));
    announce_changes(
        store.as_ref(),
        &account("acc_1", "ada@example.com"),
        &hooks,
        &["chg_1"],
    )
    .await;
    let sender = OfficialChannels {
        email: None,
        webhook: Some(webhook_sender(WEBHOOK_SECRET, &clock)),
    };
    let delivery = delivery(&store, sender, &clock);
    let failed_once = DeliveryReport {
        failed: 1,
        ..DeliveryReport::default()
    };
    assert_eq!(delivery.deliver_due().await.unwrap(), failed_once);
    // Not due again until the backoff has passed.
    clock.advance(999);
    assert_eq!(
        delivery.deliver_due().await.unwrap(),
        DeliveryReport::default()
    );
    clock.advance(1);
    assert_eq!(delivery.deliver_due().await.unwrap(), failed_once);
    clock.advance(1_999);
    assert_eq!(
        delivery.deliver_due().await.unwrap(),
        DeliveryReport::default()
    );
    clock.advance(1);
    let report = delivery.deliver_due().await.unwrap();
    assert_eq!(report.delivered, 1);

    let done = entries(store.as_ref(), Some(OutboxStatus::Delivered)).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].attempts, 3);
    assert_eq!(done[0].delivered_at, Some(T0.plus_millis(3_000)));
    let id = done[0].message.id.clone();
    receiver.received(|r| {
        assert_eq!((r.refused, r.bad_signatures), (2, 0));
        assert_eq!(r.by_delivery_id.get(&id), Some(&1));
        assert_eq!(r.bodies[0]["id"], id.as_str());
        assert_eq!(r.bodies[0]["type"], "widening.pending");
        assert_eq!(r.bodies[0]["account"], "acc_1");
        assert_eq!(
            r.bodies[0]["cancel_url"],
            "https://exemplar.example/cancel/chg_1"
        );
    });
    // Nothing is left to send.
    clock.advance(100_000);
    assert_eq!(
        delivery.deliver_all_due().await.unwrap(),
        DeliveryReport::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_transient_failures_are_retried_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    transient_failures_back_off_then_deliver(sqlite_at(&dir.path().join("p.db")).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_transient_failures_are_retried_on_postgres() {
    let url = portcullis_store::testing::fresh_postgres_database("portcullis_it")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    transient_failures_back_off_then_deliver(
        portcullis_store::open(&url, portcullis_store::testing::keyring())
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badly_signed_webhook_is_refused_and_the_message_is_dead_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_at(&dir.path().join("p.db")).await;
    let clock = Arc::new(ManualClock::new(T0));
    let receiver = WebhookReceiver::start(clock.clone(), vec![]).await;
    let hooks = channels(false, Some(&receiver.url));
    announce_changes(
        store.as_ref(),
        &account("acc_1", "ada@example.com"),
        &hooks,
        &["chg_1"],
    )
    .await;
    let sender = OfficialChannels {
        email: None,
        webhook: Some(webhook_sender(b"not the shared secret", &clock)),
    };
    let report = delivery(&store, sender, &clock)
        .deliver_all_due()
        .await
        .unwrap();
    assert_eq!(report.dead, 1);
    receiver.received(|r| {
        assert_eq!(r.bad_signatures, 1);
        assert!(r.by_delivery_id.is_empty());
    });
    let dead = store
        .list_outbox(
            &OutboxFilter {
                account: Some("acc_1".into()),
                status: Some(OutboxStatus::Dead),
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.channel, Channel::Webhook);
    assert!(dead[0].last_error.as_deref().unwrap().contains("401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_claim_and_send_loses_nothing_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let clock = Arc::new(ManualClock::new(T0));
    let receiver = WebhookReceiver::start(clock.clone(), vec![]).await;
    let hooks = channels(false, Some(&receiver.url));
    let changes = ["chg_1", "chg_2", "chg_3", "chg_4", "chg_5", "chg_6"];
    let sender = || OfficialChannels {
        email: None,
        webhook: Some(webhook_sender(WEBHOOK_SECRET, &clock)),
    };
    let small_batches = RetryPolicy {
        batch: 2,
        ..policy()
    };
    {
        let store = sqlite_at(&db).await;
        announce_changes(
            store.as_ref(),
            &account("acc_1", "ada@example.com"),
            &hooks,
            &changes,
        )
        .await;
        let worker = Delivery::new(
            store.clone(),
            Arc::new(sender()),
            clock.clone() as Arc<dyn Clock>,
            small_batches,
        );
        assert_eq!(worker.deliver_due().await.unwrap().delivered, 2);
        // A second worker claims two messages and dies before sending them.
        let claim = ClaimRequest {
            now: clock.now(),
            lease_token: "lease_of_the_crashed_worker".into(),
            until: clock.now().plus_millis(60_000),
            limit: 2,
            max_attempts: 4,
        };
        assert_eq!(store.claim_due(&claim).await.unwrap().len(), 2);
        // Everything is dropped here: the process is gone.
    }
    let store = sqlite_at(&db).await;
    let worker = Delivery::new(
        store.clone(),
        Arc::new(sender()),
        clock.clone() as Arc<dyn Clock>,
        small_batches,
    );
    // The unclaimed two go at once; the crashed worker's two wait for its lease to expire.
    assert_eq!(worker.deliver_all_due().await.unwrap().delivered, 2);
    clock.advance(60_000);
    assert_eq!(worker.deliver_all_due().await.unwrap().delivered, 2);
    assert_eq!(
        worker.deliver_all_due().await.unwrap(),
        DeliveryReport::default()
    );

    let delivered = entries(store.as_ref(), Some(OutboxStatus::Delivered)).await;
    assert_eq!(delivered.len(), 6);
    receiver.received(|r| {
        assert_eq!(r.by_delivery_id.len(), 6);
        assert!(
            r.by_delivery_id.values().all(|&n| n == 1),
            "{:?}",
            r.by_delivery_id
        );
        assert_eq!(r.bad_signatures, 0);
        for entry in &delivered {
            assert!(r.by_delivery_id.contains_key(&entry.message.id));
        }
    });
}
