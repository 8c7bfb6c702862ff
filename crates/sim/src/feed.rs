//! The feed being written. Each customer's and each crew's story is told on its own, so events
//! arrive out of order; `Feed::finish` sorts them by event time, numbers them, and renders the
//! contract's JSON Lines with one label line for every event that asks for a decision.

use portcullis_core::time::UnixMillis;
use serde::Serialize;
use serde_json::{Map, Value};

/// The truth about an event that asks for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Scam,
    Legit,
}

/// Where an action came from: the contract's `ctx`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ctx {
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub channel: Option<&'static str>,
    pub call_active: bool,
    pub remote_access: bool,
}

impl Ctx {
    /// An API call from `ip`.
    pub fn api(ip: &str) -> Self {
        Self {
            ip: Some(ip.to_owned()),
            channel: Some("api"),
            ..Self::default()
        }
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if let Some(ip) = &self.ip {
            map.insert("ip".into(), ip.as_str().into());
        }
        if let Some(device) = &self.device_id {
            map.insert("device_id".into(), device.as_str().into());
        }
        if let Some(channel) = self.channel {
            map.insert("channel".into(), channel.into());
        }
        // Only a sighting is reported: an app that saw no call says nothing, as real feeds do.
        if self.call_active {
            map.insert("call_active".into(), true.into());
        }
        if self.remote_access {
            map.insert("remote_access".into(), true.into());
        }
        Value::Object(map)
    }
}

/// One event before it has an id.
#[derive(Debug, Clone)]
pub struct Event {
    pub ts: i64,
    pub kind: &'static str,
    pub account: Option<String>,
    /// The type's own fields, in the order they are written.
    pub fields: Vec<(&'static str, Value)>,
    pub ctx: Option<Ctx>,
    /// Set on the events that ask for a decision: the truth and the habit or tactic behind it.
    pub truth: Option<(Label, &'static str)>,
}

impl Event {
    pub fn new(ts: i64, kind: &'static str, account: Option<&str>) -> Self {
        Self {
            ts,
            kind,
            account: account.map(str::to_owned),
            fields: Vec::new(),
            ctx: None,
            truth: None,
        }
    }

    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    pub fn ctx(mut self, ctx: Ctx) -> Self {
        self.ctx = Some(ctx);
        self
    }

    pub fn truth(mut self, label: Label, story: &'static str) -> Self {
        self.truth = Some((label, story));
        self
    }

    fn amount_usd(&self) -> f64 {
        self.fields
            .iter()
            .find(|(name, _)| *name == "amount_usd")
            .and_then(|(_, value)| value.as_f64())
            .unwrap_or(0.0)
    }
}

/// The label line of one decided event (the simulator's output format; `incident` is an
/// addition naming the attacked account, so that an evaluation can time each attack).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LabelLine {
    pub event_id: String,
    pub label: Label,
    pub tactic: String,
    pub amount_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// The rendered feed.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub events: Vec<String>,
    pub labels: Vec<String>,
    /// The event time of each line of `events`, in milliseconds.
    pub times: Vec<i64>,
    /// The truth of each line of `events` that asks for a decision.
    pub truths: Vec<Option<Label>>,
}

/// Events collected in any order.
#[derive(Debug, Default)]
pub struct Feed {
    events: Vec<Event>,
}

impl Feed {
    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Sorts by event time (stable: events told in order at the same millisecond stay in
    /// order), numbers them `ev0000001`..., and renders events and labels.
    pub fn finish(mut self) -> Rendered {
        self.events.sort_by_key(|event| event.ts);
        let mut rendered = Rendered::default();
        for (index, event) in self.events.iter().enumerate() {
            let id = event_id(index);
            rendered.events.push(render(&id, event));
            rendered.times.push(event.ts);
            rendered.truths.push(event.truth.map(|(label, _)| label));
            if let Some((label, story)) = event.truth {
                let line = LabelLine {
                    event_id: id,
                    label,
                    tactic: story.to_owned(),
                    amount_usd: event.amount_usd(),
                    incident: (label == Label::Scam)
                        .then(|| event.account.clone())
                        .flatten(),
                };
                rendered
                    .labels
                    .push(serde_json::to_string(&line).unwrap_or_default());
            }
        }
        rendered
    }
}

/// The id of the `index`th event of a finished feed (from 0).
pub fn event_id(index: usize) -> String {
    format!("ev{:07}", index + 1)
}

/// One contract line: `id`, `ts`, `type`, `account`, the type's fields, `ctx`.
fn render(id: &str, event: &Event) -> String {
    let mut line = String::with_capacity(256);
    line.push_str("{\"id\":");
    push_json(&mut line, &Value::from(id));
    line.push_str(",\"ts\":\"");
    line.push_str(&UnixMillis(event.ts).to_rfc3339());
    line.push_str("\",\"type\":\"");
    line.push_str(event.kind);
    line.push('"');
    if let Some(account) = &event.account {
        line.push_str(",\"account\":");
        push_json(&mut line, &Value::from(account.as_str()));
    }
    for (name, value) in &event.fields {
        line.push_str(",\"");
        line.push_str(name);
        line.push_str("\":");
        push_json(&mut line, value);
    }
    if let Some(ctx) = &event.ctx {
        line.push_str(",\"ctx\":");
        push_json(&mut line, &ctx.to_json());
    }
    line.push('}');
    line
}

fn push_json(line: &mut String, value: &Value) {
    line.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Config;
    use portcullis_core::contract::parse_line;

    #[test]
    fn rendered_lines_parse_as_the_contract_and_labels_name_them() {
        let mut feed = Feed::default();
        feed.push(
            Event::new(
                Config::DEFAULT_START_MS + 2_000,
                "withdrawal.requested",
                Some("acc_1"),
            )
            .field("withdrawal_id", "w1")
            .field("asset", "USDT")
            .field("network", "TRX")
            .field("address", "TXYZ")
            .field("amount", "250")
            .field("amount_usd", 250.0)
            .ctx(Ctx::api("203.0.113.9"))
            .truth(Label::Scam, "widened_key"),
        );
        feed.push(
            Event::new(Config::DEFAULT_START_MS + 1_000, "login", Some("acc_1"))
                .field("method", "password")
                .field("success", true),
        );
        let rendered = feed.finish();
        assert_eq!(rendered.events.len(), 2);
        assert!(rendered.events[0].contains("\"type\":\"login\""));
        for line in &rendered.events {
            parse_line(line).unwrap();
        }
        let label: LabelLine = serde_json::from_str(&rendered.labels[0]).unwrap();
        assert_eq!(label.event_id, "ev0000002");
        assert_eq!(label.label, Label::Scam);
        assert_eq!(label.amount_usd, 250.0);
        assert_eq!(label.incident.as_deref(), Some("acc_1"));
    }
}
