//! Credentials taken out of URLs before they reach a log line, an error message or the CLI's
//! output: database, NATS, SMTP and webhook URLs may carry a password, a token standing in for a
//! user name, or a secret query parameter.
//!
//! The rule errs towards hiding too much: whatever comes between the scheme and the last `@`
//! before the query is treated as credentials (a malformed URL with a `/` in its password still
//! loses the password), and a comma-separated list (NATS servers) is redacted item by item.

/// Query parameters whose values are secrets (compared without regard to case).
const SECRET_PARAMETERS: [&str; 14] = [
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "access_token",
    "auth",
    "auth_token",
    "secret",
    "key",
    "api_key",
    "apikey",
    "signature",
    "sig",
];

/// What stands in for a removed credential.
const HIDDEN: &str = "***";

/// `url` with its credentials replaced by `***`: the password of `user:password@` (the user
/// name stays, for diagnosis), a lone `user@` (often a token, as in `nats://token@host`), and
/// the values of secret query parameters (`?token=`, `password=`, ...). Anything else,
/// including a URL without credentials and text that is no URL at all, is returned unchanged.
pub fn redact_url_credentials(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

/// `text` (an error message, say) with every URL in it passed through
/// [`redact_url_credentials`]. A URL starts with its scheme (`postgres://`) and ends at white
/// space or a quote, bracket or backtick, the way messages usually enclose one.
pub fn redact_urls_in(text: &str) -> String {
    let is_scheme = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.');
    let ends_url =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '(' | ')');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(marker) = rest.find("://") {
        let start = rest[..marker]
            .rfind(|c: char| !is_scheme(c))
            .map_or(0, |i| {
                i + rest[i..].chars().next().map_or(1, char::len_utf8)
            });
        let end = rest[marker..]
            .find(ends_url)
            .map_or(rest.len(), |i| marker + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url_credentials(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn redact_one(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let query_at = url[start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| start + i);
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    match url[start..query_at].rfind('@') {
        Some(at) => {
            let userinfo = &url[start..start + at];
            match userinfo.split_once(':') {
                Some((user, _)) if !user.is_empty() => {
                    out.push_str(user);
                    out.push(':');
                }
                _ => {}
            }
            out.push_str(HIDDEN);
            out.push_str(&url[start + at..query_at]);
        }
        None => out.push_str(&url[start..query_at]),
    }
    out.push_str(&redact_query(&url[query_at..]));
    out
}

/// `rest` (the query and fragment, from `?` or `#` on) with secret parameters' values hidden.
fn redact_query(rest: &str) -> String {
    let Some(query) = rest.strip_prefix('?') else {
        return rest.to_owned();
    };
    let (query, fragment) = match query.find('#') {
        Some(i) => query.split_at(i),
        None => (query, ""),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if SECRET_PARAMETERS
                    .iter()
                    .any(|secret| name.eq_ignore_ascii_case(secret)) =>
            {
                format!("{name}={HIDDEN}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("?{}{fragment}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url_credentials as redact;

    #[test]
    fn hides_passwords_and_keeps_the_user() {
        assert_eq!(
            redact("postgres://portcullis:hunter2@db:5432/p"),
            "postgres://portcullis:***@db:5432/p"
        );
        assert_eq!(
            redact("smtps://mailer:p%40ss@smtp.example:465"),
            "smtps://mailer:***@smtp.example:465"
        );
        assert_eq!(redact("nats://:s3cret@h:4222"), "nats://***@h:4222");
    }

    #[test]
    fn hides_a_lone_user_which_is_often_a_token() {
        assert_eq!(
            redact("nats://SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV@nats:4222"),
            "nats://***@nats:4222"
        );
    }

    #[test]
    fn hides_secret_query_parameters_only() {
        assert_eq!(
            redact("https://hooks.example/p?token=abc&team=7#top"),
            "https://hooks.example/p?token=***&team=7#top"
        );
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&PASSWORD=x"),
            "postgres://***@h/db?sslmode=require&PASSWORD=***"
        );
        assert_eq!(
            redact("smtp://relay:25?tls=required"),
            "smtp://relay:25?tls=required"
        );
    }

    #[test]
    fn leaves_urls_without_credentials_alone() {
        for url in [
            "sqlite://data/portcullis.db?mode=rwc",
            "nats://127.0.0.1:4222",
            "https://exemplar.example/cancel",
            "",
            "not a url",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn urls_inside_messages_are_found() {
        use super::redact_urls_in;
        assert_eq!(
            redact_urls_in("cannot open postgres://app:hunter2@db/p: refused; try `nats://tok@h`"),
            "cannot open postgres://app:***@db/p: refused; try `nats://***@h`"
        );
        assert_eq!(
            redact_urls_in("error sending request for url (https://u:pw@hooks.example/x?token=t)"),
            "error sending request for url (https://u:***@hooks.example/x?token=***)"
        );
        assert_eq!(redact_urls_in("no url here: a@b"), "no url here: a@b");
        assert_eq!(redact_urls_in("é://x:y@z"), "é://x:***@z");
    }

    #[test]
    fn malformed_urls_lose_their_credentials_too() {
        // A `/` in the password ends the authority for a parser, but not for this rule.
        assert_eq!(redact("postgres://u:pa/ss@h/db"), "postgres://u:***@h/db");
        // No scheme at all.
        assert_eq!(redact("u:hunter2@h:5432"), "u:***@h:5432");
        // An `@` in a password that should have been escaped: up to the last one goes.
        assert_eq!(redact("smtp://u:a@b@relay"), "smtp://u:***@relay");
        // A list of NATS servers, each with its own credentials.
        assert_eq!(
            redact("nats://a:x@h1:4222,nats://tok@h2:4222"),
            "nats://a:***@h1:4222,nats://***@h2:4222"
        );
        assert!(!redact("https://x:y@").contains('y'));
    }
}
