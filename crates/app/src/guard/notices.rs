//! What the guard announces through the official channels, and in what words: every notice
//! goes into the same commit as the change it announces (nothing is announced that did not
//! happen, and nothing happens unannounced).

use super::Guard;
use crate::changes::Change;
use crate::error::AppResult;
use crate::notify::announce;
use crate::ports::{PendingAction, PendingChange};
use portcullis_core::guard::Widening;
use portcullis_core::notice::{Notice, NoticeKind};
use portcullis_core::time::UnixMillis;

/// What the customer reads about a change, one line per effect.
pub fn describe(change: &PendingChange) -> Vec<String> {
    let mut lines: Vec<String> = change
        .widenings
        .iter()
        .map(|w| w.describe().to_owned())
        .collect();
    match &change.action {
        PendingAction::KeyChange {
            key_id,
            ip_allowlist: Some(list),
            ..
        } if change.widenings.contains(&Widening::WidensAllowlist) => {
            let entries = list.entries();
            let reach = if entries.is_empty() {
                "any IP address".to_owned()
            } else {
                entries.join(", ")
            };
            lines.push(format!("key {key_id}: usable from {reach}"));
        }
        PendingAction::KeyChange { key_id, .. } => lines.push(format!("key {key_id}")),
        PendingAction::AddAddress {
            address,
            asset,
            network,
            ..
        } => lines.push(format!("address {address} ({asset} on {network})")),
        PendingAction::Unfreeze => {}
        PendingAction::ContactChange {
            email,
            anti_phishing_code,
        } => lines.extend(super::contact::describe_contact(email, anti_phishing_code)),
    }
    lines
}

/// A notice about a pending change.
pub(crate) fn change_notice(kind: NoticeKind, change: &PendingChange, now: UnixMillis) -> Notice {
    let open = change.status.is_open();
    Notice {
        kind,
        key: format!("{}:{}", change.id, kind.type_name()),
        account: change.account.clone(),
        occurred_at: now,
        summary: describe(change).join("; "),
        details: vec![
            ("Change".into(), change.id.clone()),
            ("Confirmed with".into(), change.step_up.as_str().into()),
        ],
        takes_effect_at: open.then_some(change.applies_at),
        cancel_url: None,
        freeze_url: None,
    }
}

/// A notice about the account itself (freeze, lock, authenticators).
pub(crate) fn account_notice(
    kind: NoticeKind,
    account: &str,
    key: &str,
    summary: &str,
    now: UnixMillis,
) -> Notice {
    Notice {
        kind,
        key: format!("{key}:{}", kind.type_name()),
        account: account.to_owned(),
        occurred_at: now,
        summary: summary.to_owned(),
        details: Vec::new(),
        takes_effect_at: None,
        cancel_url: None,
        freeze_url: None,
    }
}

impl Guard {
    /// `change` with `notice` queued on every official channel of the account.
    pub(crate) async fn announced(
        &self,
        mut change: Change,
        notice: &Notice,
        now: UnixMillis,
    ) -> AppResult<Change> {
        let account = self.account(&notice.account).await?;
        for write in announce(&account, notice, &self.channels, now) {
            change = change.write(write);
        }
        Ok(change)
    }
}
