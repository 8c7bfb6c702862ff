//! The decision format of the contract.

use serde::Serialize;

/// What the exchange should do with the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Challenge,
    Hold,
    Block,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Allow,
        Verdict::Challenge,
        Verdict::Hold,
        Verdict::Block,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Challenge => "challenge",
            Verdict::Hold => "hold",
            Verdict::Block => "block",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// One decision, serialised exactly as the contract's example:
/// `{"event_id":"e2","decision":"hold","score":87,"reasons":["escalation_cooldown",...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub event_id: String,
    pub decision: Verdict,
    pub score: u8,
    pub reasons: Vec<String>,
}

impl Decision {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
