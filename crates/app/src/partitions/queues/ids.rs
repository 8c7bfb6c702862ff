//! One engine's id check in every partition (`Partition::check_id`: an id seen before, or an
//! event older than the dedup horizon behind the newest, is ignored). Every partition reads the
//! whole stream, so each checks every event's id in position order, its own events' and the
//! others' (of those it reads only `id` and `ts`), and all hold the same set: the one engine's.
//! The set is in the engine's checkpoint; what this adds is where the check stands, because a
//! restarted partition reads the stream again from before it: positions up to
//! `checked_through` are not checked twice, and the ones refused among them are remembered.

use crate::ports::IgnoredEvent;
use portcullis_core::time::UnixMillis;
use portcullis_engine::Outcome;
use portcullis_engine::partitioned::Partition;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdCheck {
    /// The last position whose id was checked.
    checked_through: u64,
    /// The positions up to `checked_through` that were refused, until no restart can read
    /// them again.
    refused: BTreeSet<u64>,
    /// This partition's own events refused since they were last taken, to record (so that a
    /// caller waiting for a decision is told there will be none).
    #[serde(skip)]
    ignored: Vec<IgnoredEvent>,
}

/// The two fields the check needs, read without the rest of the line.
#[derive(Deserialize)]
struct IdAndTs<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    ts: UnixMillis,
}

impl IdCheck {
    /// Whether the event at `position` counts: `false` for a duplicate or a late event, which
    /// every partition then skips. `own`: on this partition's subject. `read` is the event's id
    /// and time when the caller parsed its line already (its own events: one parse, not two);
    /// else only those two fields are read from `body`. A line without a readable id and time
    /// is not recorded (its owner refuses it as it does any line it cannot read).
    pub fn admit(
        &mut self,
        partition: &mut Partition,
        (position, own): (u64, bool),
        body: &[u8],
        read: Option<(&str, UnixMillis)>,
    ) -> bool {
        let read = || match read {
            Some((id, ts)) => Some(IdAndTs {
                id: Cow::Borrowed(id),
                ts,
            }),
            None => serde_json::from_slice::<IdAndTs<'_>>(body).ok(),
        };
        if position <= self.checked_through {
            let refused = self.refused.contains(&position);
            if refused
                && own
                && let Some(read) = read()
            {
                // Read again after a restart: recorded again, in case the record was not
                // stored before it (recording twice keeps the first).
                self.record(position, read, None);
            }
            return !refused;
        }
        self.checked_through = position;
        let Some(read) = read() else {
            return true;
        };
        let Some(refused) = partition.check_id(&read.id, read.ts.as_millis()) else {
            return true;
        };
        if own {
            self.record(position, read, Some(&refused));
        }
        self.refused.insert(position);
        false
    }

    /// Keeps an own event refused (why: `None` when read again after a restart, which no
    /// longer knows and says `duplicate or late`) for [`IdCheck::take_ignored`].
    fn record(&mut self, position: u64, read: IdAndTs<'_>, why: Option<&Outcome>) {
        let reason = match why {
            Some(Outcome::Late) => "late",
            Some(_) => "duplicate",
            None => "duplicate or late",
        };
        tracing::info!(position, id = %read.id, reason, "an event of this partition is ignored, as one engine ignores it");
        self.ignored.push(IgnoredEvent {
            event_id: read.id.into_owned(),
            reason: reason.to_owned(),
            event_ts: read.ts,
        });
    }

    /// The own events refused since the last call.
    pub fn take_ignored(&mut self) -> Vec<IgnoredEvent> {
        std::mem::take(&mut self.ignored)
    }

    /// Forgets the refused positions up to `position`: a restart reads the stream again only
    /// after it.
    pub fn forget_through(&mut self, position: u64) {
        self.refused = self.refused.split_off(&(position + 1));
    }
}
