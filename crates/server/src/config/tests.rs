//! Configuration stories: file, environment, defaults and every refusal.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_example_is_valid_and_matches_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let from_example = Config::load(Some(&path), vec![]).unwrap();
    let defaults = Config::default();
    assert_eq!(format!("{from_example:?}"), format!("{defaults:?}"));
}

#[test]
fn environment_overrides_the_file() {
    let config = Config::load(
        None,
        vars(&[
            ("PORTCULLIS_DATABASE_URL", "postgres://db/portcullis"),
            ("PORTCULLIS_IDLE_EXPIRY_DAYS", "14"),
            ("PORTCULLIS_TEST_POSTGRES_URL", "ignored"),
            ("OTHER", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(config.database_url, "postgres://db/portcullis");
    assert_eq!(config.idle_expiry_days, 14);
    let settings = config.settle().unwrap();
    assert_eq!(
        settings.key_policy.idle.idle_expiry_ms,
        14 * IdlePolicy::DAY_MS
    );
}

#[test]
fn unknown_keys_are_errors() {
    let error = Config::load(None, vars(&[("PORTCULLIS_DATABSE_URL", "x")])).unwrap_err();
    assert!(error.to_string().contains("databse_url"), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
    assert!(Config::load(Some(&path), vec![]).is_err());
}

#[test]
fn bad_values_are_explained() {
    let config = Config {
        idle_warning_days: 40,
        ..Config::default()
    };
    assert!(
        config
            .settle()
            .unwrap_err()
            .to_string()
            .contains("idle_warning_days")
    );
    let config = Config {
        listen: "localhost".into(),
        ..Config::default()
    };
    assert!(config.settle().is_err());
}

#[test]
fn notification_keys_are_checked_and_the_secret_never_printed() {
    let settings = Config::default().settle().unwrap();
    assert!(!settings.notify.enabled());
    let config = Config::load(
        None,
        vars(&[
            ("PORTCULLIS_EXCHANGE_NAME", "Exemplar"),
            (
                "PORTCULLIS_SMTP_URL",
                "smtp://user:hunter2@mail.exemplar.example:587?tls=required",
            ),
            (
                "PORTCULLIS_SMTP_FROM",
                "Exemplar <security@exemplar.example>",
            ),
            ("PORTCULLIS_WEBHOOK_URL", "https://hooks.exemplar.example/p"),
            ("PORTCULLIS_WEBHOOK_SECRET", "whsec_0123456789abcdef"),
            ("PORTCULLIS_NOTIFY_MAX_ATTEMPTS", "5"),
        ]),
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!format!("{config:?}").contains("whsec_"));
    let settings = config.clone().settle().unwrap();
    assert!(!format!("{settings:?}").contains("hunter2"));
    assert!(!format!("{settings:?}").contains("whsec_"));
    assert!(settings.notify.enabled());
    assert!(settings.notify.channels.email);
    assert_eq!(
        settings.notify.channels.webhook_url.as_deref(),
        Some("https://hooks.exemplar.example/p")
    );
    assert_eq!(settings.notify.retry.max_attempts, 5);

    let unnamed = Config {
        exchange_name: String::new(),
        ..config.clone()
    };
    assert!(
        unnamed
            .settle()
            .unwrap_err()
            .to_string()
            .contains("exchange_name")
    );
    let no_secret = Config {
        webhook_secret: crate::notify::Sensitive::default(),
        ..config.clone()
    };
    assert!(
        no_secret
            .settle()
            .unwrap_err()
            .to_string()
            .contains("webhook_secret")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook-secret");
    std::fs::write(&file, "whsec_from_a_file_0123456789\n").unwrap();
    let from_file = Config {
        webhook_secret: crate::notify::Sensitive::default(),
        webhook_secret_file: file.display().to_string(),
        ..config.clone()
    };
    let secret = from_file.settle().unwrap().notify.webhook_secret.unwrap();
    assert_eq!(secret.expose(), b"whsec_from_a_file_0123456789");
    let no_from = Config {
        smtp_from: String::new(),
        ..config.clone()
    };
    assert!(
        no_from
            .settle()
            .unwrap_err()
            .to_string()
            .contains("smtp_from")
    );
    let bad_url = Config {
        webhook_url: "ftp://x".into(),
        ..config
    };
    assert!(
        bad_url
            .settle()
            .unwrap_err()
            .to_string()
            .contains("webhook_url")
    );
}

#[test]
fn the_default_public_url_of_a_loopback_service_is_localhost() {
    let settings = Config::default().settle().unwrap();
    assert_eq!(settings.guard.public_url, "http://localhost:8080");
    let config = Config {
        listen: "192.0.2.10:9000".into(),
        ..Config::default()
    };
    assert_eq!(
        config.settle().unwrap().guard.public_url,
        "http://192.0.2.10:9000"
    );
}

#[test]
fn embedded_default_is_a_sqlite_file_in_the_data_dir() {
    let settings = Config::default().settle().unwrap();
    assert!(
        settings
            .database_url
            .starts_with("sqlite://data/portcullis.db")
    );
    assert_eq!(
        settings.keyring_file,
        PathBuf::from("data/master-keys.toml")
    );
}

#[test]
fn partitions_need_nats_and_postgres_and_say_so() {
    let error = |config: Config| config.settle().unwrap_err().to_string();
    let partitioned = Config {
        engine_partitions: 4,
        ..Config::default()
    };
    assert!(error(partitioned.clone()).contains("needs nats_url"));
    let with_nats = Config {
        nats_url: "nats://127.0.0.1:4222".into(),
        ..partitioned
    };
    assert!(error(with_nats.clone()).contains("PostgreSQL"));
    let on_postgres = Config {
        database_url: "postgres://db/portcullis".into(),
        ..with_nats
    };
    let settled = on_postgres.clone().settle().unwrap();
    let partitions = settled.partitions.unwrap();
    assert_eq!((partitions.partitions, partitions.lease_ms), (4, 5_000));
    assert!(!settled.risk_checkpoints.follow_log);
    let wildcard = Config {
        nats_subject: "portcullis.*.events".into(),
        ..on_postgres
    };
    assert!(error(wildcard).contains("nats_subject"));
    let single = Config::default().settle().unwrap();
    assert!(single.partitions.is_none() && single.risk_checkpoints.follow_log);
}
