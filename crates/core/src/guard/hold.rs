//! A held change in the customer's words: what was seen, instead of the risk engine's rule ids.
//!
//! A hold is where a fake support caller steps in ("I can release it for you"), so the page and
//! the e-mail must say plainly what was seen and that nobody will call to release it. Each rule
//! of the default policy that can stop a widening has its sentence; any other reason (a rule
//! added later, an operator's own words) gets a general one, never the raw id.

/// The reason a hold is recorded with when the risk engine could not decide in time.
pub const ENGINE_UNAVAILABLE: &str = "engine_unavailable";

/// What the customer reads for one rule id; `None` for an id this list does not know.
fn plain(rule: &str) -> Option<&'static str> {
    Some(match rule {
        "call_during_escalation" => {
            "The change was made during a phone call, or within an hour of one. Scammers pretending to be support stay on the line while their victim makes it."
        }
        "remote_access_during_escalation" => {
            "The change was made while a remote-desktop program was running, or within an hour of it."
        }
        "unverified_call_before_escalation" => {
            "You received a call from a number that could not be verified shortly before the change."
        }
        "unseen_ip_allowlisted" => {
            "The key was allowed to be used from a network you have never used before."
        }
        "ip_restriction_dropped" => {
            "A key that can move money was allowed to be used from more addresses, or from anywhere."
        }
        "weak_step_up_escalation" => {
            "The change was confirmed with a code that someone else could have had read out to them."
        }
        "new_device_escalation" => {
            "The change came from a device or network your account has not used before."
        }
        "reported_contact_recently" => {
            "You reported a suspicious call or message this week: scammers may be working on your account."
        }
        "called_by_confirmed_fraud_number" => {
            "A number that contacted you has been used in a confirmed scam."
        }
        "address_flagged_elsewhere" | "confirmed_fraud_address" | "blocked_address" => {
            "The address has been linked to scams against other customers."
        }
        "allowlisted_ip_flagged_elsewhere" | "ip_flagged_elsewhere" => {
            "The network address has been linked to scams against other customers."
        }
        "busy_market" => "The market is unusually busy, a time scammers choose.",
        ENGINE_UNAVAILABLE => {
            "Our automatic check could not look at the change in time, so a person will review it."
        }
        _ => return None,
    })
}

/// What was seen, one sentence each, for a hold recorded with `reason` (rule ids separated by
/// commas, possibly after a `challenge without a passkey:` prefix). Never empty, never an id.
pub fn seen(reason: &str) -> Vec<&'static str> {
    let (weak, rules) = match reason.split_once(':') {
        Some((prefix, rest)) if prefix.starts_with("challenge") => (true, rest),
        _ => (false, reason),
    };
    let mut lines: Vec<&'static str> = Vec::new();
    if weak {
        lines.push(
            "The change looked risky enough to need a passkey, and it was confirmed without one.",
        );
    }
    for line in rules.split(',').filter_map(|rule| plain(rule.trim())) {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        lines.push("Something about the change looked like the phone scams we protect you from.");
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_become_sentences_once_each() {
        let lines = seen(
            "call_during_escalation,new_device_escalation,address_flagged_elsewhere,blocked_address",
        );
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("phone call"));
        assert!(lines.iter().all(|l| !l.contains('_')));
    }

    #[test]
    fn a_challenge_without_a_passkey_says_so() {
        let lines = seen("challenge without a passkey: weak_step_up_escalation");
        assert!(lines[0].contains("passkey"));
        assert!(lines[1].contains("code"));
    }

    #[test]
    fn unknown_reasons_get_a_general_sentence_never_the_id() {
        for reason in ["some_future_rule", "", "operator: looks odd"] {
            let lines = seen(reason);
            assert_eq!(lines.len(), 1);
            assert!(!lines[0].contains("some_future_rule"));
        }
        assert!(seen(ENGINE_UNAVAILABLE)[0].contains("a person will review"));
    }
}
