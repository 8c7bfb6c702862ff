//! Each default rule fires on a case made for it and stays silent on the same event without
//! the sign it looks for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_engine::{Features, Policy};

const NEVER: f64 = 1e9;

/// A quiet event of the given type: nothing suspicious, everything long ago.
fn quiet(event_type: &str) -> Features {
    Features {
        event_type: event_type.to_owned(),
        step_up: "passkey".to_owned(),
        minutes_since_call: NEVER,
        minutes_since_unverified_call: NEVER,
        minutes_since_remote_access: NEVER,
        days_since_contact_reported: NEVER,
        minutes_since_escalation: NEVER,
        ip_minutes_known: NEVER,
        key_minutes_since_widened: NEVER,
        address_minutes_since_added: NEVER,
        address_minutes_known: NEVER,
        account_age_days: 400.0,
        amount_usd: 100.0,
        amount_vs_max: 1.0,
        ..Features::default()
    }
}

fn widening() -> Features {
    Features {
        escalation: true,
        ..quiet("api_key.updated")
    }
}

fn withdrawal() -> Features {
    quiet("withdrawal.requested")
}

/// For every rule: the case that should fire it.
fn cases() -> Vec<(&'static str, Features)> {
    vec![
        (
            "key_lacks_withdraw_scope",
            Features {
                via_api: true,
                key_known: true,
                key_lacks_withdraw: true,
                ..withdrawal()
            },
        ),
        (
            "ip_outside_key_allowlist",
            Features {
                via_api: true,
                ip_outside_key_allowlist: true,
                ..withdrawal()
            },
        ),
        (
            "blocked_address",
            Features {
                address_blocked: true,
                ..withdrawal()
            },
        ),
        (
            "address_under_review",
            Features {
                address_under_review: true,
                ..withdrawal()
            },
        ),
        (
            "confirmed_fraud_address",
            Features {
                address_fraud: true,
                ..withdrawal()
            },
        ),
        (
            "address_flagged_elsewhere",
            Features {
                address_flagged_elsewhere: true,
                address_new: true,
                ..withdrawal()
            },
        ),
        (
            "allowlisted_ip_flagged_elsewhere",
            Features {
                allowlist_ip_flagged_elsewhere: true,
                ..widening()
            },
        ),
        (
            "ip_flagged_elsewhere",
            Features {
                ip_flagged_elsewhere: true,
                via_api: true,
                ip_minutes_known: 30.0,
                ..withdrawal()
            },
        ),
        (
            "called_by_confirmed_fraud_number",
            Features {
                fraud_caller_contact: true,
                minutes_since_call: 90.0,
                ..widening()
            },
        ),
        (
            "call_during_escalation",
            Features {
                call_active: true,
                ..widening()
            },
        ),
        (
            "remote_access_during_escalation",
            Features {
                minutes_since_remote_access: 30.0,
                ..widening()
            },
        ),
        (
            "unverified_call_before_escalation",
            Features {
                minutes_since_unverified_call: 200.0,
                ..widening()
            },
        ),
        (
            "unseen_ip_allowlisted",
            Features {
                allowlist_unseen_ips: 1,
                ..widening()
            },
        ),
        (
            "ip_restriction_dropped",
            Features {
                allowlist_loosened: true,
                ..quiet("api_key.updated")
            },
        ),
        (
            "weak_step_up_escalation",
            Features {
                step_up: "sms".into(),
                step_up_weak: true,
                ..widening()
            },
        ),
        (
            "new_device_escalation",
            Features {
                device_new: true,
                ..widening()
            },
        ),
        (
            "reported_contact_recently",
            Features {
                days_since_contact_reported: 2.0,
                ..widening()
            },
        ),
        (
            "escalation_cooldown",
            Features {
                minutes_since_escalation: 30.0,
                ..withdrawal()
            },
        ),
        (
            "new_address",
            Features {
                address_new: true,
                ..withdrawal()
            },
        ),
        (
            "call_before_withdrawal",
            Features {
                minutes_since_call: 90.0,
                ..withdrawal()
            },
        ),
        (
            "key_widened_then_drained",
            Features {
                via_api: true,
                key_minutes_since_widened: 20.0,
                ip_minutes_known: 30.0,
                address_minutes_known: 15.0,
                // The widening came during a call.
                minutes_since_call: 25.0,
                ..withdrawal()
            },
        ),
        (
            "fresh_ip_api_withdrawal",
            Features {
                via_api: true,
                ip_minutes_known: 10.0,
                ..withdrawal()
            },
        ),
        (
            "confirmed_fraud_entity",
            Features {
                network_marked: true,
                network_hops: 0,
                ..withdrawal()
            },
        ),
        (
            "linked_to_confirmed_fraud",
            Features {
                account_marked: true,
                account_network_hops: 1,
                ..widening()
            },
        ),
        (
            "campaign_link",
            Features {
                campaign_accounts: 3,
                ..widening()
            },
        ),
        (
            "unusual_amount",
            Features {
                amount_usd: 5_000.0,
                amount_vs_max: 5.0,
                ..withdrawal()
            },
        ),
        (
            "sweeps_recent_deposits",
            Features {
                deposits_7d_usd: 1_000.0,
                share_of_deposits: 0.95,
                minutes_since_escalation: 5_000.0,
                ..withdrawal()
            },
        ),
        (
            "large_first_send",
            Features {
                amount_usd: 200_000.0,
                address_minutes_since_added: 20.0,
                address_minutes_known: 20.0,
                ..withdrawal()
            },
        ),
        (
            "busy_market",
            Features {
                market_volume_ratio: 4.0,
                minutes_since_call: 30.0,
                ..withdrawal()
            },
        ),
    ]
}

#[test]
fn every_rule_has_a_case_that_fires_it_and_a_quiet_one_that_does_not() {
    let policy = Policy::default_policy().unwrap();
    let cases = cases();
    for (index, rule) in policy.rules.iter().enumerate() {
        let (_, firing) = cases
            .iter()
            .find(|(id, _)| *id == rule.id)
            .unwrap_or_else(|| panic!("no case for rule {}", rule.id));
        let evaluation = policy.evaluate(firing);
        // A shadow rule fires without giving a reason.
        assert!(
            evaluation.fired.contains(&index)
                && (rule.shadow || evaluation.reasons.contains(&rule.id)),
            "{} did not fire on its case: {evaluation:?}",
            rule.id
        );
        let quiet = quiet(&firing.event_type);
        let silent = policy.evaluate(&quiet);
        assert!(
            !silent.fired.contains(&index),
            "{} fired on a quiet {}",
            rule.id,
            quiet.event_type
        );
    }
    for event_type in [
        "api_key.created",
        "api_key.updated",
        "address.added",
        "withdrawal.requested",
    ] {
        let evaluation = policy.evaluate(&quiet(event_type));
        assert!(
            evaluation.reasons.is_empty() && evaluation.score == 0,
            "{event_type}: {evaluation:?}"
        );
    }
}

#[test]
fn links_to_other_accounts_leave_long_used_addresses_and_servers_alone() {
    let policy = Policy::default_policy().unwrap();
    let long_used_address = Features {
        address_flagged_elsewhere: true,
        address_minutes_since_added: 90.0 * 1440.0,
        ..withdrawal()
    };
    let long_used_server = Features {
        ip_flagged_elsewhere: true,
        via_api: true,
        ip_minutes_known: 60.0 * 1440.0,
        ..withdrawal()
    };
    for features in [long_used_address, long_used_server] {
        let evaluation = policy.evaluate(&features);
        assert!(evaluation.reasons.is_empty(), "{evaluation:?}");
    }
}

#[test]
fn a_drain_through_a_widened_key_counts_when_the_widening_had_context() {
    let policy = Policy::default_policy().unwrap();
    // Widened 100 minutes ago; the bot's first payout from its new server to a wallet the
    // feed first met this week.
    let payout = Features {
        via_api: true,
        key_minutes_since_widened: 100.0,
        ip_minutes_known: 90.0,
        address_minutes_known: 60.0,
        ..withdrawal()
    };
    let fires = |features: &Features| {
        (policy.evaluate(features).reasons.iter()).any(|r| r == "key_widened_then_drained")
    };
    assert!(!fires(&payout), "no call, no remote tool, no report");
    // A call ended two hours before the widening: nobody was on the phone then.
    assert!(!fires(&Features {
        minutes_since_call: 100.0 + 120.0,
        ..payout.clone()
    }));
    let contexts = [
        // On the phone half an hour before the widening, or since.
        Features {
            minutes_since_call: 130.0,
            ..payout.clone()
        },
        Features {
            minutes_since_call: 5.0,
            ..payout.clone()
        },
        Features {
            minutes_since_remote_access: 140.0,
            ..payout.clone()
        },
        // A call the carrier could not attest, five hours before the widening.
        Features {
            minutes_since_unverified_call: 100.0 + 300.0,
            ..payout.clone()
        },
        Features {
            days_since_contact_reported: 2.0,
            ..payout.clone()
        },
    ];
    for features in contexts {
        assert!(fires(&features), "{features:?}");
    }
}
