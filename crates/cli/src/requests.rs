//! Each API command as the HTTP request it makes, so the CLI runs exactly the API's code path
//! whether it talks to a server or to the local store.

use crate::args::{
    AccountCommand, AccountFieldArgs, AuditCommand, Command, ContactsCommand, GraphCommand,
    KeyCommand, OfficialCommand, OperatorCommand, OverrideCommand,
};
use anyhow::{Context as _, bail};
use serde_json::{Map, Value, json};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// One API call.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    /// `audit verify`: a broken chain is a failure exit.
    pub fail_unless_intact: bool,
    /// `audit head --out`: the response body goes to this file instead of stdout.
    pub write_to: Option<PathBuf>,
}

impl ApiRequest {
    pub(crate) fn get(path: String) -> Self {
        Self {
            method: "GET",
            path,
            body: None,
            fail_unless_intact: false,
            write_to: None,
        }
    }

    pub(crate) fn post(path: String, body: Value) -> Self {
        Self {
            method: "POST",
            path,
            body: Some(body),
            fail_unless_intact: false,
            write_to: None,
        }
    }

    fn delete(path: String) -> Self {
        Self {
            method: "DELETE",
            ..Self::get(path)
        }
    }

    fn patch(path: String, body: Value) -> Self {
        Self {
            method: "PATCH",
            ..Self::post(path, body)
        }
    }

    fn put(path: String, body: Value) -> Self {
        Self {
            method: "PUT",
            ..Self::post(path, body)
        }
    }
}

/// The JSON of an exported head file; the server checks its contents and signature.
fn head_file(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the head file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "the head file {} is not JSON (write one with `portcullis audit head --out FILE`)",
            path.display()
        )
    })
}

/// Percent-encodes a path segment or query value.
fn enc(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn account_fields(fields: &AccountFieldArgs, into: &mut Map<String, Value>) {
    for (name, value) in [
        ("display_name", &fields.name),
        ("email", &fields.email),
        ("phone", &fields.phone),
        ("anti_phishing_code", &fields.anti_phishing_code),
    ] {
        if let Some(value) = value {
            into.insert(name.to_owned(), json!(value));
        }
    }
}

/// The request a command makes.
pub fn for_command(command: &Command) -> anyhow::Result<ApiRequest> {
    Ok(match command {
        Command::Operators { command } => match command {
            OperatorCommand::Create { name, role } => ApiRequest::post(
                "/v1/operators".into(),
                json!({ "name": name, "role": role }),
            ),
            OperatorCommand::List => ApiRequest::get("/v1/operators".into()),
            OperatorCommand::Revoke { id } => {
                ApiRequest::post(format!("/v1/operators/{}/revoke", enc(id)), json!({}))
            }
            OperatorCommand::EnrolLink { name } => {
                ApiRequest::post(format!("/v1/operators/{}/enrol-link", enc(name)), json!({}))
            }
        },
        Command::Accounts { command } => account_request(command),
        Command::Keys { command } => key_request(command)?,
        Command::Contacts { command } => contacts_request(command),
        Command::Graph { command } => graph_request(command),
        Command::Audit { command } => match command {
            AuditCommand::Verify { since_head: None } => ApiRequest {
                fail_unless_intact: true,
                ..ApiRequest::get("/v1/audit/verify".into())
            },
            AuditCommand::Verify {
                since_head: Some(file),
            } => ApiRequest {
                fail_unless_intact: true,
                ..ApiRequest::post("/v1/audit/verify".into(), head_file(file)?)
            },
            AuditCommand::Head { out } => ApiRequest {
                write_to: Some(out.clone()),
                ..ApiRequest::get("/v1/audit/head".into())
            },
            AuditCommand::List { after, limit } => ApiRequest::get(format!(
                "/v1/audit{}",
                query(&[
                    ("after", after.map(|a| a.to_string())),
                    ("limit", limit.map(|l| l.to_string()))
                ])
            )),
        },
        Command::Verify(args) => ApiRequest::post(
            "/v1/verify".into(),
            json!({ "api_key": args.api_key, "signature": args.signature, "payload": args.payload, "ip": args.ip, "scope": args.scope }),
        ),
        Command::Serve
        | Command::Config { .. }
        | Command::Openapi
        | Command::MasterKey { .. }
        | Command::Replay(_)
        | Command::Simulate(_)
        | Command::Eval(_)
        | Command::Demo(_) => {
            bail!("this command does not call the API")
        }
        Command::Decisions { .. } | Command::Publish(_) | Command::Policy { .. } => {
            bail!("this command makes its own requests, page by page")
        }
    })
}

fn graph_request(command: &GraphCommand) -> ApiRequest {
    let entity = |kind: &str, value: &str| format!("/v1/graph/{}/{}", enc(kind), enc(value));
    match command {
        GraphCommand::Show { kind, value, hops } => ApiRequest::get(format!(
            "{}?hops={}",
            entity(kind, value),
            hops.unwrap_or(2)
        )),
        GraphCommand::Override { command } => match command {
            OverrideCommand::Set {
                kind,
                value,
                action,
                expires_at,
                note,
            } => ApiRequest::post(
                format!("{}/override", entity(kind, value)),
                json!({ "action": action, "expires_at": expires_at, "note": note.clone().unwrap_or_default() }),
            ),
            OverrideCommand::Lift {
                kind,
                value,
                action,
            } => ApiRequest::delete(match action {
                Some(action) => format!("{}/override?action={}", entity(kind, value), enc(action)),
                None => format!("{}/override", entity(kind, value)),
            }),
            OverrideCommand::List { all } => ApiRequest::get(format!("/v1/overrides?all={all}")),
        },
    }
}

fn contacts_request(command: &ContactsCommand) -> ApiRequest {
    match command {
        ContactsCommand::Official { command } => match command {
            OfficialCommand::Add {
                kind,
                value,
                channel,
                direction,
                note,
            } => ApiRequest::post(
                "/v1/contacts/official".into(),
                json!({ "kind": kind, "value": value, "channel": channel,
                        "direction": direction, "note": note }),
            ),
            OfficialCommand::List => ApiRequest::get("/v1/contacts/official".into()),
            OfficialCommand::Remove { id } => {
                ApiRequest::delete(format!("/v1/contacts/official/{}", enc(id)))
            }
        },
        // `--file` verifies in-process against the registry (see `contacts.rs`); this is the
        // request that fetches it, and the single value's request.
        ContactsCommand::Verify { file: Some(_), .. } => {
            ApiRequest::get("/v1/contacts/registry".into())
        }
        ContactsCommand::Verify { value, region, .. } => ApiRequest::post(
            "/v1/contacts/verify".into(),
            json!({ "value": value, "region": region }),
        ),
        ContactsCommand::Reports { limit } => ApiRequest::get(format!(
            "/v1/contacts/reports{}",
            query(&[("limit", limit.map(|l| l.to_string()))])
        )),
    }
}

fn account_request(command: &AccountCommand) -> ApiRequest {
    match command {
        AccountCommand::Create { id, fields } => {
            let mut body = Map::new();
            body.insert("id".into(), json!(id));
            account_fields(fields, &mut body);
            ApiRequest::post("/v1/accounts".into(), Value::Object(body))
        }
        AccountCommand::Update {
            id,
            fields,
            step_up_grant,
        } => {
            let mut body = Map::new();
            account_fields(fields, &mut body);
            if let Some(grant) = step_up_grant {
                body.insert("step_up_grant".into(), json!(grant));
            }
            ApiRequest::patch(format!("/v1/accounts/{}", enc(id)), Value::Object(body))
        }
        AccountCommand::Show { id } => ApiRequest::get(format!("/v1/accounts/{}", enc(id))),
        AccountCommand::Digest { id, hour_utc, off } => {
            let path = format!("/v1/accounts/{}/digest", enc(id));
            match (hour_utc, off) {
                (_, true) => ApiRequest::delete(path),
                (Some(hour), false) => ApiRequest::put(path, json!({ "hour_utc": hour })),
                (None, false) => ApiRequest::get(path),
            }
        }
        AccountCommand::List { after, limit } => ApiRequest::get(format!(
            "/v1/accounts{}",
            query(&[
                ("after", after.clone()),
                ("limit", limit.map(|l| l.to_string()))
            ])
        )),
    }
}

fn key_request(command: &KeyCommand) -> anyhow::Result<ApiRequest> {
    Ok(match command {
        KeyCommand::Create {
            account,
            label,
            scopes,
            ips,
            ed25519_public_key,
            expires_at,
            window,
            step_up_grant,
        } => {
            let mut body = json!({ "label": label, "scopes": scopes, "ip_allowlist": ips });
            if let Some(window) = window.body() {
                body["fund_window"] = window;
            }
            if let Some(grant) = step_up_grant {
                body["step_up_grant"] = json!(grant);
            }
            if let Some(public_key) = ed25519_public_key {
                body["algorithm"] = json!("ed25519");
                body["public_key"] = json!(public_key);
            }
            if let Some(expires_at) = expires_at {
                body["expires_at"] = json!(expires_at);
            }
            ApiRequest::post(format!("/v1/accounts/{}/keys", enc(account)), body)
        }
        KeyCommand::Import {
            account,
            label,
            api_key,
            scopes,
            ips,
            expires_at,
        } => {
            let mut secret = String::new();
            std::io::stdin()
                .read_to_string(&mut secret)
                .context("reading the secret from standard input")?;
            let secret = secret.trim_end_matches(['\r', '\n']).to_owned();
            if secret.is_empty() {
                bail!(
                    "pipe the secret on standard input, e.g. `portcullis keys import ... < secret.txt`"
                );
            }
            let mut body = json!({ "account": account, "label": label, "api_key": api_key, "secret": secret, "scopes": scopes, "ip_allowlist": ips });
            if let Some(expires_at) = expires_at {
                body["expires_at"] = json!(expires_at);
            }
            ApiRequest::post("/v1/keys/import".into(), body)
        }
        KeyCommand::List { account } => {
            ApiRequest::get(format!("/v1/accounts/{}/keys", enc(account)))
        }
        KeyCommand::Show { key_id } => ApiRequest::get(format!("/v1/keys/{}", enc(key_id))),
        KeyCommand::Update {
            key_id,
            label,
            scopes,
            ips,
            no_ip_restriction,
            expires_at,
            no_expiry,
            window,
            no_fund_window,
            step_up_grant,
        } => {
            let mut body = Map::new();
            if *no_fund_window {
                body.insert("fund_window".into(), Value::Null);
            } else if let Some(window) = window.body() {
                body.insert("fund_window".into(), window);
            }
            if let Some(grant) = step_up_grant {
                body.insert("step_up_grant".into(), json!(grant));
            }
            if let Some(label) = label {
                body.insert("label".into(), json!(label));
            }
            if let Some(scopes) = scopes {
                body.insert("scopes".into(), json!(scopes));
            }
            if *no_ip_restriction {
                body.insert("ip_allowlist".into(), json!([]));
            } else if let Some(ips) = ips {
                body.insert("ip_allowlist".into(), json!(ips));
            }
            if *no_expiry {
                body.insert("expires_at".into(), Value::Null);
            } else if let Some(expires_at) = expires_at {
                body.insert("expires_at".into(), json!(expires_at));
            }
            ApiRequest::patch(format!("/v1/keys/{}", enc(key_id)), Value::Object(body))
        }
        KeyCommand::Revoke { key_id } => {
            ApiRequest::post(format!("/v1/keys/{}/revoke", enc(key_id)), json!({}))
        }
        KeyCommand::Rotate {
            key_id,
            overlap_hours,
            step_up_grant,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(hours) = overlap_hours {
                body.insert("overlap_seconds".into(), json!(hours.saturating_mul(3600)));
            }
            if let Some(grant) = step_up_grant {
                body.insert("step_up_grant".into(), json!(grant));
            }
            ApiRequest::post(
                format!("/v1/keys/{}/rotate", enc(key_id)),
                Value::Object(body),
            )
        }
        KeyCommand::Rewrap => ApiRequest::post("/v1/secrets/rewrap".into(), json!({})),
    })
}
