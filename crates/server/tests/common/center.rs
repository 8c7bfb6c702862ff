//! The security center as a browser reaches it over real HTTP: a signed-in session (its cookie
//! and anti-CSRF token), script calls with the token header, and form posts as a page sends
//! them, with or without the browser's Fetch Metadata.

use super::{Backend, TestServer};
use serde_json::{Value, json};

pub struct Browser {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Starts a server whose public URL names a host (passkeys need one).
pub async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |config| {
        config.public_url = "http://localhost:8443".into();
    })
    .await
}

pub async fn account(server: &TestServer, id: &str) {
    let reply = server
        .admin()
        .post(
            "/v1/accounts",
            &json!({ "id": id, "anti_phishing_code": "Blue42" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

/// The path of a fresh sign-in link.
pub async fn link(server: &TestServer, account: &str) -> String {
    let reply = server
        .admin()
        .post(&format!("/v1/accounts/{account}/sign-in-links"), &json!({}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let url = reply.body["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://localhost:8443/security/sign-in/psl_"),
        "{url}"
    );
    url["http://localhost:8443".len()..].to_owned()
}

/// (status, Set-Cookie (all of them, one a line), body) of a request.
pub async fn request(
    base: &str,
    method: &'static str,
    path: &str,
    cookie: Option<String>,
    csrf: Option<String>,
    body: Option<Value>,
) -> (u16, Option<String>, String) {
    request_via(base, method, path, cookie, csrf, body, None).await
}

/// A request as a reverse proxy passes it on, with `X-Forwarded-For: forwarded_for`.
pub async fn request_via(
    base: &str,
    method: &'static str,
    path: &str,
    cookie: Option<String>,
    csrf: Option<String>,
    body: Option<Value>,
    forwarded_for: Option<String>,
) -> (u16, Option<String>, String) {
    let url = format!("{base}{path}");
    blocking(move || {
        let agent = agent();
        let mut response = match method {
            "GET" => {
                let mut r = agent.get(&url);
                if let Some(c) = &cookie {
                    r = r.header("cookie", c);
                }
                r.call().unwrap()
            }
            _ => {
                let mut r = agent.post(&url);
                if let Some(c) = &cookie {
                    r = r.header("cookie", c);
                }
                if let Some(t) = &csrf {
                    r = r.header("x-csrf-token", t);
                }
                if let Some(f) = &forwarded_for {
                    r = r.header("x-forwarded-for", f);
                }
                r.header("content-type", "application/json")
                    .send(body.unwrap_or(json!({})).to_string())
                    .unwrap()
            }
        };
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let cookie = (!cookies.is_empty()).then(|| cookies.join("\n"));
        (
            response.status().as_u16(),
            cookie,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    })
    .await
}

pub async fn sign_in(server: &TestServer, account_id: &str) -> Browser {
    let path = link(server, account_id).await;
    let (status, cookie, _) = request(&server.base_url, "GET", &path, None, None, None).await;
    assert_eq!((status, cookie), (200, None), "a GET signs nobody in");
    let (status, cookie, _) = request(&server.base_url, "POST", &path, None, None, None).await;
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("pc_session=")
        .to_owned();
    let (again, _, _) = request(&server.base_url, "POST", &path, None, None, None).await;
    assert_eq!(again, 403, "a link opens one session");
    Browser {
        base: server.base_url.clone(),
        cookie: format!("pc_session={token}"),
        csrf: portcullis_app::guard::csrf_token(&token),
    }
}

impl Browser {
    pub async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, text) = request(
            &self.base,
            "POST",
            path,
            Some(self.cookie.clone()),
            Some(self.csrf.clone()),
            Some(body),
        )
        .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A form post as a page sends it: url-encoded `fields`, the session cookie, and
/// `Sec-Fetch-Site: site` when given. (status, body)
pub async fn form(
    browser: &Browser,
    path: &str,
    fields: &[(&str, &str)],
    site: Option<&'static str>,
) -> (u16, String) {
    let url = format!("{}{path}", browser.base);
    let cookie = browser.cookie.clone();
    let body: String = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    blocking(move || {
        let mut r = agent()
            .post(&url)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(site) = site {
            r = r.header("sec-fetch-site", site);
        }
        let mut response = r.send(body).unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    })
    .await
}
