//! The command line, as clap types.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Portcullis: the key authority that stops API-key drains.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// Configuration file (TOML); PORTCULLIS_* variables override it.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Talk to a running server at this URL instead of the local store.
    #[arg(long, global = true, env = "PORTCULLIS_URL")]
    pub server: Option<String>,
    /// Operator token for --server.
    #[arg(long, global = true, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// A time-boxed grant of `withdraw`/`transfer`: from when it takes effect, for this long, and
/// optionally up to an amount.
#[derive(Debug, clap::Args)]
pub struct FundWindowArgs {
    /// Grant `withdraw`/`transfer` for this many hours only (1 to 744).
    #[arg(long)]
    pub fund_window_hours: Option<u32>,
    /// ... and up to this many USD in total (needs --fund-window-hours).
    #[arg(long, requires = "fund_window_hours")]
    pub cap_usd: Option<f64>,
}

impl FundWindowArgs {
    /// The request body's `fund_window`, if asked for.
    pub fn body(&self) -> Option<serde_json::Value> {
        let hours = self.fund_window_hours?;
        Some(serde_json::json!({ "hours": hours, "cap_usd": self.cap_usd }))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (embedded SQLite unless configured otherwise).
    Serve,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Manage the master keys that encrypt HMAC secrets (local only).
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// Operators and their tokens.
    Operators {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Customer accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Verify one signed request, as a gateway would.
    Verify(VerifyArgs),
    /// "Is this really the exchange?": official contacts, verification, reports.
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// The risk engine's entity graph: the graph around an entity, and operators' overrides.
    Graph {
        #[command(subcommand)]
        command: GraphCommand,
    },
    /// Decide every event of a JSON Lines file (the event contract) with a fresh engine, and
    /// write the decisions in input order.
    Replay(ReplayArgs),
    /// Send a contract file (JSON Lines) to the NATS JetStream event stream, each event on its
    /// account's partition subject, with a progress bar; waits until the stream has every one.
    Publish(PublishArgs),
    /// The decisions the service has stored.
    Decisions {
        #[command(subcommand)]
        command: DecisionsCommand,
    },
    /// Write a simulated exchange history (the event contract) with a label for every event
    /// that asks for a decision: scam campaigns and customer habits, deterministic per seed.
    Simulate(SimulateArgs),
    /// Replay a labelled feed and report what the policy stops and whom it holds:
    /// DIR/summary.json, DIR/report.html (self-contained) and the charts as PNG files.
    Eval(EvalArgs),
    /// The whole product on this machine: a fresh embedded store, a simulated history, the
    /// console with two analysts' enrolment links, then a scam campaign played live at
    /// accelerated time. Ignores every PORTCULLIS_* setting; Ctrl-C stops it.
    Demo(DemoArgs),
    /// The risk policy's versions under maker-checker: list and show them, validate and
    /// propose a policy file, approve a proposal (a second operator), roll back, backtest.
    Policy {
        #[command(subcommand)]
        command: crate::policy::PolicyCommand,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to serve the console and the API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A directory for the demo's store and keyring: it must be empty or missing (default: a
    /// new one under the system's temp directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Customer accounts of the simulated exchange.
    #[arg(long, default_value_t = 2_000)]
    pub accounts: u32,
    /// Days of history before the live part.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// The same seed tells the same story.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Event time the live part covers: the period's busiest stretch of scam calls.
    #[arg(long, default_value_t = 12)]
    pub live_hours: u32,
    /// How much faster than event time the live part plays (240: twelve hours in three minutes).
    #[arg(long, default_value_t = 240.0)]
    pub speed: f64,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Customer accounts.
    #[arg(long, default_value_t = 2_000)]
    pub accounts: u32,
    /// Days of history.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// The same seed gives the same files, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for events.jsonl and labels.jsonl (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The events, one JSON object per line (the contract).
    #[arg(long)]
    pub events: PathBuf,
    /// The labels: `{"event_id","label":"scam"|"legit","tactic","amount_usd"}` per line.
    #[arg(long)]
    pub labels: PathBuf,
    /// Directory for summary.json, report.html and the PNG charts (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// A policy file instead of the default policy.
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The events, one JSON object per line.
    pub events: PathBuf,
    /// Where to write the decisions (JSON Lines).
    #[arg(long)]
    pub out: PathBuf,
    /// A policy file instead of the default policy.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Run the engine partitioned by account (FNV-1a-32(account) mod N), in this process,
    /// exchanging the partitions' facts as the service will: the decisions are the same bytes
    /// as with one engine (docs/design/partitioning.md).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The events, one JSON object per line (the contract).
    pub file: PathBuf,
    /// Partitions of the stream: an account's events go to `<prefix>.<FNV-1a-32(account) mod
    /// N>`, the same as nats-server's `{{partition(N,...)}}` mapping.
    #[arg(long, env = "PORTCULLIS_NATS_PARTITIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub partitions: u32,
    /// The subjects' first tokens.
    #[arg(long, default_value = "portcullis.events")]
    pub subject_prefix: String,
    /// The NATS server (otherwise the configured `nats_url`).
    #[arg(long)]
    pub nats_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DecisionsCommand {
    /// Write every stored decision as the contract's decision lines (JSON Lines): in the order
    /// of the events in --events, or else in the order of the event log.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write the decisions.
    #[arg(long)]
    pub out: PathBuf,
    /// A contract file of events: write the decisions in its order (those of events not in it
    /// are left out and counted; its events that ask for a decision but have none are named).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Decisions asked for per request (1 to 1,000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub page: u32,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example configuration.
    Example,
    /// Load the configuration and report whether it is valid.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Add a new master key and make it active.
    New,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print its token (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// admin, analyst or integration.
        #[arg(long)]
        role: String,
    },
    List,
    Revoke {
        id: String,
    },
    /// Mint a single-use, expiring link that enrols a passkey for the analyst console (admins
    /// and analysts; by name or id).
    EnrolLink {
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AccountFieldArgs {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// E.164, e.g. +14155550123.
    #[arg(long)]
    pub phone: Option<String>,
    #[arg(long)]
    pub anti_phishing_code: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    Create {
        id: String,
        #[command(flatten)]
        fields: AccountFieldArgs,
    },
    /// Change an account. A new e-mail or anti-phishing code is a widening: it needs a
    /// step-up grant of the account and prints the pending change (HTTP 202).
    Update {
        id: String,
        #[command(flatten)]
        fields: AccountFieldArgs,
        /// A step-up grant (`psu_...`) the customer just obtained, spent by a contact change.
        #[arg(long)]
        step_up_grant: Option<String>,
    },
    Show {
        id: String,
    },
    List {
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// The daily security digest: show it, switch it on at an hour (`--hour-utc`), or off.
    Digest {
        id: String,
        /// Send it every day at this hour (UTC, 0 to 23).
        #[arg(long, conflicts_with = "off")]
        hour_utc: Option<u8>,
        /// Switch it off.
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key; an HMAC secret is printed once.
    Create {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "")]
        label: String,
        /// read, trade, withdraw, transfer (repeat or comma-separate).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Allowed client network (repeat or comma-separate); none = unrestricted.
        #[arg(long = "ip", value_delimiter = ',')]
        ips: Vec<String>,
        /// Issue an Ed25519 key with this public key (hex, base64 or PEM) instead of HMAC.
        #[arg(long)]
        ed25519_public_key: Option<String>,
        /// RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        window: FundWindowArgs,
        /// The customer's step-up grant: needed for `withdraw` or `transfer` when the customer
        /// has an authenticator.
        #[arg(long)]
        step_up_grant: Option<String>,
    },
    /// Import an existing HMAC key (admin); the secret is read from standard input.
    Import {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        api_key: String,
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        #[arg(long = "ip", value_delimiter = ',')]
        ips: Vec<String>,
        #[arg(long)]
        expires_at: Option<String>,
    },
    List {
        #[arg(long)]
        account: String,
    },
    Show {
        key_id: String,
    },
    /// Change a key; only the options given change.
    Update {
        key_id: String,
        #[arg(long)]
        label: Option<String>,
        /// The full scope set after the change.
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// The full allow-list after the change.
        #[arg(
            long = "ip",
            value_delimiter = ',',
            conflicts_with = "no_ip_restriction"
        )]
        ips: Option<Vec<String>>,
        /// Remove the IP restriction.
        #[arg(long)]
        no_ip_restriction: bool,
        #[arg(long, conflicts_with = "no_expiry")]
        expires_at: Option<String>,
        #[arg(long)]
        no_expiry: bool,
        #[command(flatten)]
        window: FundWindowArgs,
        /// Make `withdraw`/`transfer` permanent again (a widening).
        #[arg(long, conflicts_with_all = ["fund_window_hours", "cap_usd"])]
        no_fund_window: bool,
        /// The customer's step-up grant: needed for a widening when the customer has an
        /// authenticator.
        #[arg(long)]
        step_up_grant: Option<String>,
    },
    Revoke {
        key_id: String,
    },
    /// Issue a new HMAC secret; the old one stays valid for the overlap.
    Rotate {
        key_id: String,
        #[arg(long)]
        overlap_hours: Option<i64>,
        /// The customer's step-up grant: a key that can withdraw or transfer needs one when
        /// the customer has an authenticator.
        #[arg(long)]
        step_up_grant: Option<String>,
    },
    /// Re-seal every secret under the active master key.
    Rewrap,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain; exits 1 and names the first bad entry if it is broken.
    Verify {
        /// Also require the chain to extend this exported head (from `audit head --out`):
        /// catches newest entries removed together with the database's head.
        #[arg(long, value_name = "FILE")]
        since_head: Option<PathBuf>,
    },
    /// Export the chain's current head, signed with the keyring's audit head key, to keep
    /// outside the database.
    Head {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    List {
        #[arg(long)]
        after: Option<i64>,
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(long)]
    pub api_key: String,
    #[arg(long)]
    pub signature: String,
    #[arg(long)]
    pub payload: String,
    #[arg(long)]
    pub ip: String,
    #[arg(long)]
    pub scope: String,
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// The exchange's official contacts (changes need an admin token; every change is audited).
    Official {
        #[command(subcommand)]
        command: OfficialCommand,
    },
    /// Is this phone number, e-mail address, domain, link or handle really the exchange's?
    /// With --file, one value a line, answered as one JSON object a line on stdout in input
    /// order (a bad line gets an error object; the rest are answered).
    Verify {
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The region (ISO 3166 alpha-2) of national phone numbers written without `+`.
        #[arg(long)]
        region: Option<String>,
    },
    /// Reported contacts grouped with their counts, most recently reported first.
    Reports {
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OfficialCommand {
    Add {
        /// domain, phone, email or handle.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        value: String,
        /// Where it is used: phone, email, web, telegram, x, whatsapp, ...
        #[arg(long)]
        channel: Option<String>,
        /// inbound (customers reach us; we never contact anyone from it), outbound or both.
        #[arg(long)]
        direction: Option<String>,
        /// What customers are told, e.g. "24/7 support line".
        #[arg(long)]
        note: Option<String>,
    },
    List,
    Remove {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// The graph around an entity (kind: account, address, ip, device or number).
    Show {
        kind: String,
        value: String,
        /// 0 to 3 (default 2).
        #[arg(long)]
        hops: Option<u8>,
    },
    /// Overrides on entities (every change is audited).
    Override {
        #[command(subcommand)]
        command: OverrideCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum OverrideCommand {
    /// suppress (a known-good link) or force (counts as confirmed fraud; admins only).
    Set {
        kind: String,
        value: String,
        #[arg(long)]
        action: String,
        /// RFC 3339; absent: until lifted.
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Lift the overrides in force on an entity (of one action, or both).
    Lift {
        kind: String,
        value: String,
        #[arg(long)]
        action: Option<String>,
    },
    /// The overrides in force (--all: also the lifted and expired ones).
    List {
        #[arg(long)]
        all: bool,
    },
}
