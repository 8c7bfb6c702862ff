//! Configuration errors that never echo a secret. The `toml` crate quotes the offending line of
//! a file that does not parse, and serde's type errors quote the offending value: either may be
//! a database URL with its password or the webhook secret, and the message goes to a terminal,
//! a log collector or a CI transcript.

/// Keys whose values are, or may carry, secrets.
const SECRET_KEYS: [&str; 6] = [
    "database_url",
    "nats_url",
    "replay_guard_redis_url",
    "smtp_url",
    "webhook_url",
    "webhook_secret",
];

/// A TOML syntax error as `line L, column C: <what is wrong>`, without the quoted line.
pub(crate) fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(offset) = error.span().map(|span| span.start.min(text.len())) else {
        return message.to_owned();
    };
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

/// `message` (an error about `table`, the merged file and environment) with the values of the
/// secret keys hidden, and credentials in any URL it quotes.
pub(crate) fn scrubbed(message: &str, table: &toml::Table) -> String {
    let mut message = message.to_owned();
    for key in SECRET_KEYS {
        let shown = match table.get(key) {
            Some(toml::Value::String(text)) => text.clone(),
            Some(toml::Value::Integer(number)) => number.to_string(),
            Some(toml::Value::Float(number)) => number.to_string(),
            Some(other) => other.to_string(),
            None => continue,
        };
        if shown.len() >= 3 {
            message = message.replace(&shown, "***");
        }
    }
    portcullis_core::redact::redact_urls_in(&message)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn load_file(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(Path::new(&path)), Vec::new())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_line_that_does_not_parse_is_located_not_quoted() {
        let error =
            load_file("listen = \"127.0.0.1:8080\"\nwebhook_secret = whsec_0123456789abcdef\n");
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains("whsec_"), "{error}");
        let error = load_file("database_url = \"postgres://app:hunter2@db/p\nlisten = 1\n");
        assert!(error.contains("line 1"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_quoted() {
        let error = load_file("webhook_secret = 739103847561029384\n");
        assert!(error.contains("webhook_secret"), "{error}");
        assert!(!error.contains("739103847561029384"), "{error}");
        let vars = vec![("PORTCULLIS_DATABASE_URL".to_owned(), "1234567".to_owned())];
        let error = Config::load(None, vars).unwrap_err().to_string();
        assert!(!error.contains("1234567"), "{error}");
    }

    #[test]
    fn other_errors_still_say_what_is_wrong() {
        let error = load_file("idle_expiry_days = \"ninety\"\n");
        assert!(
            error.contains("ninety"),
            "values of other keys help: {error}"
        );
        let error = load_file("databse_url = \"postgres://app:hunter2@db/p\"\n");
        assert!(error.contains("databse_url"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
