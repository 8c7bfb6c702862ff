//! What the guard announces through the official channels, and in what words: every notice
//! goes into the same commit as the change it announces (nothing is announced that did not
//! happen, and nothing happens unannounced).

use super::Guard;
use crate::changes::Change;
use crate::error::AppResult;
use crate::notify::announce;
use crate::ports::{PendingAction, PendingChange};
use portcullis_core::guard::{PendingStatus, Widening, hold};
use portcullis_core::notice::{Notice, NoticeKind};
use portcullis_core::time::UnixMillis;

/// What a held change's announcement says comes next: who decides, that nobody will call to
/// "release" it, and how to stop it now.
pub const HELD_NEXT: &str = "The change stays on hold, with no date set, until the exchange's security team has reviewed it. Nobody from the exchange will ever call or message you to release it, or ask you for a code to do so: anyone who offers is a scammer. If you did not make this change of your own accord, cancel it in your security center, or freeze your account with the link below. If you have a question, contact the exchange only through its official website or app, never through a number or link someone gave you.";

/// What the customer reads about a change, one line per effect (a key named by its id).
pub fn describe(change: &PendingChange) -> Vec<String> {
    describe_named(change, None)
}

/// What the customer reads about a change, a key named by `key_label` when it has one.
pub fn describe_named(change: &PendingChange, key_label: Option<&str>) -> Vec<String> {
    let key_name = |key_id: &str| match key_label {
        Some(label) if !label.is_empty() => format!("key '{label}'"),
        _ => format!("key {key_id}"),
    };
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
            lines.push(format!("{}: usable from {reach}", key_name(key_id)));
        }
        PendingAction::KeyChange { key_id, .. } => lines.push(key_name(key_id)),
        PendingAction::AddAddress {
            address,
            asset,
            network,
            ..
        } => lines.push(format!("address {address} ({asset} on {network})")),
        PendingAction::Unfreeze => {}
        PendingAction::RemoveTotp => lines.push("remove your authenticator app".into()),
        PendingAction::ContactChange {
            email,
            anti_phishing_code,
        } => lines.extend(super::contact::describe_contact(email, anti_phishing_code)),
    }
    lines
}

/// A notice about a pending change.
pub(crate) fn change_notice(kind: NoticeKind, change: &PendingChange, now: UnixMillis) -> Notice {
    let mut details = vec![
        ("Change".into(), change.id.clone()),
        ("Confirmed with".into(), change.step_up.as_str().into()),
    ];
    if let PendingStatus::Held { reason, .. } = &change.status {
        details.extend(
            hold::seen(reason)
                .into_iter()
                .map(|line| ("What we saw".into(), line.into())),
        );
        details.push(("What happens next".into(), HELD_NEXT.into()));
    }
    Notice {
        kind,
        key: format!("{}:{}", change.id, kind.type_name()),
        account: change.account.clone(),
        occurred_at: now,
        summary: describe(change).join("; "),
        details,
        // A held change has no time to promise: it applies only if it is released.
        takes_effect_at: matches!(change.status, PendingStatus::Pending)
            .then_some(change.applies_at),
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
    /// What the customer reads about `change`, its key named by its label (as the security
    /// center and every announcement name it).
    pub async fn describe_change(&self, change: &PendingChange) -> AppResult<Vec<String>> {
        let label = match &change.action {
            PendingAction::KeyChange { key_id, .. } => {
                self.store.key(key_id).await?.map(|key| key.label)
            }
            _ => None,
        };
        Ok(describe_named(change, label.as_deref()))
    }

    /// [`change_notice`], its summary naming the key by its label.
    pub(crate) async fn named_change_notice(
        &self,
        kind: NoticeKind,
        change: &PendingChange,
        now: UnixMillis,
    ) -> AppResult<Notice> {
        let mut notice = change_notice(kind, change, now);
        notice.summary = self.describe_change(change).await?.join("; ");
        Ok(notice)
    }

    /// `change` with `notice` queued on every official channel, carrying a new single-use
    /// freeze link: for every notice that tells the customer to freeze if it was not them.
    pub(crate) async fn announced_with_freeze_link(
        &self,
        change: Change,
        mut notice: Notice,
        now: UnixMillis,
    ) -> AppResult<Change> {
        let (write, url) = self.new_freeze_link(&notice.account, now)?;
        notice.freeze_url = Some(url);
        self.announced(change.write(write), &notice, now).await
    }

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
