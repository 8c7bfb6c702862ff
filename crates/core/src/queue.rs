//! The analyst console's work queue: campaign alerts, held and pending changes, and held
//! withdrawals in one list, each with its age against a target time; filtered, sorted and
//! counted per state. Pure: the items and `now` come from the caller.

use crate::time::UnixMillis;
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;

/// What kind of work an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Alert,
    Change,
    Withdrawal,
}

impl ItemKind {
    pub const ALL: [ItemKind; 3] = [ItemKind::Alert, ItemKind::Change, ItemKind::Withdrawal];

    pub const fn as_str(self) -> &'static str {
        match self {
            ItemKind::Alert => "alert",
            ItemKind::Change => "change",
            ItemKind::Withdrawal => "withdrawal",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// How soon an item of this kind should be worked: a held change or withdrawal keeps a
    /// customer waiting, an alert may still be forming.
    pub const fn target_ms(self) -> i64 {
        match self {
            ItemKind::Alert => 120 * MINUTE_MS,
            ItemKind::Change | ItemKind::Withdrawal => 30 * MINUTE_MS,
        }
    }
}

/// One line of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// `alert:<id>`, `change:<id>` or `withdrawal:<event id>`.
    pub id: String,
    pub kind: ItemKind,
    /// `open`, `confirmed`, `held`, `pending` or `approved` (held, one operator approved).
    pub state: String,
    /// The rules (or the alert's kind) that raised it.
    pub rules: Vec<String>,
    pub account: Option<String>,
    pub amount_usd: Option<f64>,
    pub opened_at: UnixMillis,
    pub assignee: Option<String>,
    pub summary: String,
}

impl QueueItem {
    pub fn age_ms(&self, now: UnixMillis) -> i64 {
        now.millis_since(self.opened_at).max(0)
    }

    /// When it should have been worked by.
    pub fn due_at(&self) -> UnixMillis {
        self.opened_at.plus_millis(self.kind.target_ms())
    }

    pub fn overdue(&self, now: UnixMillis) -> bool {
        now > self.due_at()
    }
}

/// Who an item is assigned to, as a filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Nobody,
    Operator(String),
}

/// How the queue is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Oldest first: what has waited longest comes first.
    #[default]
    Age,
    /// Largest amount first (items without one last).
    Amount,
    /// Latest first.
    Newest,
}

impl SortBy {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "age" => Some(SortBy::Age),
            "amount" => Some(SortBy::Amount),
            "newest" => Some(SortBy::Newest),
            _ => None,
        }
    }
}

/// What the operator asks to see.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueFilter {
    pub kind: Option<ItemKind>,
    pub rule: Option<String>,
    pub state: Option<String>,
    /// At least this old, in minutes.
    pub min_age_minutes: Option<i64>,
    pub min_amount_usd: Option<f64>,
    pub assignee: AssigneeFilter,
    pub sort: SortBy,
}

impl QueueFilter {
    /// Whether `item` is shown. The state is not part of it: counts are per state of what the
    /// other filters leave.
    fn keeps(&self, item: &QueueItem, now: UnixMillis) -> bool {
        self.kind.is_none_or(|k| k == item.kind)
            && self
                .rule
                .as_deref()
                .is_none_or(|rule| item.rules.iter().any(|r| r == rule))
            && self
                .min_age_minutes
                .is_none_or(|m| item.age_ms(now) >= m.saturating_mul(MINUTE_MS))
            && self
                .min_amount_usd
                .is_none_or(|min| item.amount_usd.is_some_and(|a| a >= min))
            && match &self.assignee {
                AssigneeFilter::Anyone => true,
                AssigneeFilter::Nobody => item.assignee.is_none(),
                AssigneeFilter::Operator(op) => item.assignee.as_deref() == Some(op.as_str()),
            }
    }
}

/// The queue as shown: the items kept, sorted, and how many of them are in each state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueView {
    pub items: Vec<QueueItem>,
    pub counts: BTreeMap<String, usize>,
    /// Every rule the unfiltered items name (for the filter's choices).
    pub rules: Vec<String>,
}

/// Filters, counts and sorts `items` at `now`.
pub fn view(items: Vec<QueueItem>, filter: &QueueFilter, now: UnixMillis) -> QueueView {
    let mut rules: Vec<String> = items.iter().flat_map(|i| i.rules.clone()).collect();
    rules.sort();
    rules.dedup();
    let mut counts = BTreeMap::new();
    let mut kept: Vec<QueueItem> = items
        .into_iter()
        .filter(|item| filter.keeps(item, now))
        .inspect(|item| *counts.entry(item.state.clone()).or_insert(0) += 1)
        .filter(|item| filter.state.as_deref().is_none_or(|s| s == item.state))
        .collect();
    match filter.sort {
        SortBy::Age => kept.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then(a.id.cmp(&b.id))),
        SortBy::Newest => kept.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then(a.id.cmp(&b.id))),
        SortBy::Amount => kept.sort_by(|a, b| {
            let amount = |i: &QueueItem| i.amount_usd.unwrap_or(f64::NEG_INFINITY);
            amount(b).total_cmp(&amount(a)).then(a.id.cmp(&b.id))
        }),
    }
    QueueView {
        items: kept,
        counts,
        rules,
    }
}

/// An age in words: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn age_words(ms: i64) -> String {
    let minutes = ms / MINUTE_MS;
    match minutes {
        0 => format!("{} s", ms / 1000),
        1..60 => format!("{minutes} min"),
        60..1440 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} d {} h", minutes / 1440, (minutes % 1440) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = UnixMillis(1_753_711_391_250);

    fn item(id: &str, kind: ItemKind, state: &str, minutes_ago: i64) -> QueueItem {
        QueueItem {
            id: id.into(),
            kind,
            state: state.into(),
            rules: vec![format!("rule_{id}")],
            account: Some("acc".into()),
            amount_usd: None,
            opened_at: T0.plus_millis(-minutes_ago * MINUTE_MS),
            assignee: None,
            summary: String::new(),
        }
    }

    #[test]
    fn filters_count_per_state_and_sort_oldest_first() {
        let mut big = item("w", ItemKind::Withdrawal, "held", 5);
        big.amount_usd = Some(9_000.0);
        let mut mine = item("c", ItemKind::Change, "held", 40);
        mine.assignee = Some("op_1".into());
        let items = vec![item("a", ItemKind::Alert, "open", 10), mine, big];
        let all = view(items.clone(), &QueueFilter::default(), T0);
        let ids: Vec<&str> = all.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "w"]);
        assert_eq!(all.counts["held"], 2);
        assert_eq!(all.counts["open"], 1);
        assert!(all.items[0].overdue(T0) && !all.items[1].overdue(T0));

        let held = QueueFilter {
            state: Some("held".into()),
            sort: SortBy::Amount,
            ..QueueFilter::default()
        };
        let ids: Vec<String> = view(items.clone(), &held, T0)
            .items
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["w", "c"]);

        let filters = [
            (
                QueueFilter {
                    kind: Some(ItemKind::Alert),
                    ..QueueFilter::default()
                },
                "a",
            ),
            (
                QueueFilter {
                    rule: Some("rule_w".into()),
                    ..QueueFilter::default()
                },
                "w",
            ),
            (
                QueueFilter {
                    min_age_minutes: Some(30),
                    ..QueueFilter::default()
                },
                "c",
            ),
            (
                QueueFilter {
                    min_amount_usd: Some(100.0),
                    ..QueueFilter::default()
                },
                "w",
            ),
            (
                QueueFilter {
                    assignee: AssigneeFilter::Operator("op_1".into()),
                    ..QueueFilter::default()
                },
                "c",
            ),
        ];
        for (filter, only) in filters {
            let kept = view(items.clone(), &filter, T0);
            assert_eq!(kept.items.len(), 1, "{filter:?}");
            assert_eq!(kept.items[0].id, only, "{filter:?}");
        }
        let nobody = QueueFilter {
            assignee: AssigneeFilter::Nobody,
            ..QueueFilter::default()
        };
        assert_eq!(view(items, &nobody, T0).items.len(), 2);
    }

    #[test]
    fn ages_read_in_words() {
        assert_eq!(age_words(45_000), "45 s");
        assert_eq!(age_words(12 * MINUTE_MS), "12 min");
        assert_eq!(age_words(185 * MINUTE_MS), "3 h 5 min");
        assert_eq!(age_words(52 * 60 * MINUTE_MS), "2 d 4 h");
        assert_eq!(ItemKind::parse("change"), Some(ItemKind::Change));
        assert_eq!(SortBy::parse("x"), None);
    }
}
