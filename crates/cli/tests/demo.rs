//! `portcullis demo`: from nothing to a served console with a history, two analysts' enrolment
//! links and a campaign played live; it ignores the environment's settings and never touches a
//! directory that holds anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = agent().get(url);
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    (
        response.status().as_u16(),
        response.body_mut().read_to_string().unwrap(),
    )
}

/// The demo's process, killed when the test ends however it ends (a failed assertion must not
/// leave a server running).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The text after `marker` on the first of `lines` that has it.
fn after<'a>(lines: &'a [String], marker: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.split_once(marker).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no line with {marker:?} in {lines:#?}"))
}

#[test]
fn the_demo_serves_a_history_and_plays_a_campaign_live() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("demo");
    let mut demo = Running(
        Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&dir)
            .args(["--accounts", "600", "--days", "8", "--seed", "5"])
            .args(["--live-hours", "12", "--speed", "40000"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // A real deployment's settings in the environment are not the demo's.
            .env(
                "PORTCULLIS_DATABASE_URL",
                "postgres://nobody@127.0.0.1:1/prod",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = Vec::new();
    for line in BufReader::new(demo.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let over = line.starts_with("the live campaign is over");
        lines.push(line);
        if over {
            break;
        }
    }
    let console = after(&lines, "the console:").to_owned();
    let base = console.trim_end_matches("/console").to_owned();
    assert!(base.starts_with("http://localhost:"), "{console}");
    let token = after(&lines, "--token ...): ").to_owned();
    let enrol = after(&lines, "analyst bob: enrol a passkey (single use) at").to_owned();
    assert!(
        enrol.starts_with(&format!("{base}/console/enrol/")),
        "{enrol}"
    );

    let (status, page) = get(&enrol, None);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("passkey"), "{page}");
    let (status, body) = get(&format!("{base}/v1/alerts"), Some(&token));
    assert_eq!(status, 200, "{body}");
    let alerts: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(!alerts.is_empty(), "a campaign's history raises alerts");
    let (status, body) = get(&format!("{base}/v1/decisions?limit=1000"), Some(&token));
    assert_eq!(status, 200, "{body}");
    let decisions: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d["decision"] == "hold" || d["decision"] == "block"),
        "{decisions:?}"
    );

    // The closing line counts the live part's scams, and there were some.
    let over = lines.last().unwrap();
    let (stopped, of) = over
        .split_once(" scam withdrawals and changes stopped")
        .and_then(|(head, _)| head.rsplit_once("; "))
        .and_then(|(_, counts)| counts.split_once(" of "))
        .unwrap_or_else(|| panic!("{over}"));
    let (stopped, of): (u32, u32) = (stopped.parse().unwrap(), of.parse().unwrap());
    assert!(of > 0 && stopped <= of, "{over}");
    assert!(dir.join("portcullis.db").exists());

    Command::new("kill")
        .args(["-TERM", &demo.0.id().to_string()])
        .status()
        .unwrap();
    assert!(
        demo.0.wait().unwrap().success(),
        "Ctrl-C or SIGTERM ends it cleanly"
    );
}

#[test]
fn a_directory_that_holds_anything_is_refused_and_left_alone() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("keep.txt"), "mine").unwrap();
    let output = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(home.path())
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        1,
        "nothing was created beside the existing file"
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("keep.txt")).unwrap(),
        "mine"
    );

    let bad_speed = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--speed", "0"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(bad_speed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_speed.stderr).contains("--speed must be"));
}
