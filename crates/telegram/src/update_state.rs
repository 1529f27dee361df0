//! grammers' update-state bookkeeping after a batch is committed: which `pts`, `qts` and
//! channel `pts` the account's saved update state may advance to ([`UpdateCheckpoint`]). The
//! saved state only moves past what is stored, so a crash fetches again rather than loses.

use std::collections::HashMap;

use grammers_client::update::Update;
use grammers_session::updates::{MessageBox, State};
use switchboard_domain::{AccountId, AccountStore, StoreError};

/// Where an account's saved update state may advance once a batch of updates is committed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UpdateCheckpoint {
    /// The common message box: `(pts, date, seq)`.
    common: Option<(i32, i32, i32)>,
    /// The secondary box (`qts`).
    qts: Option<i32>,
    /// Each channel's `pts`.
    channels: HashMap<i64, i32>,
}

impl UpdateCheckpoint {
    /// The highest state per message box reached by `batch`, except the state of the batch's
    /// trailing run of updates that share one state: every message of one `getDifference`
    /// (slice) carries the difference's final state, so that run may be only the first part of
    /// a difference whose rest has not been committed yet. Its state is saved with the next
    /// batch; until then a restart fetches the run again (and the store drops the duplicates).
    pub fn after<U: AsRef<Update>>(batch: &[U]) -> Self {
        let states: Vec<&State> = batch.iter().filter_map(|u| state_of(u.as_ref())).collect();
        let complete = match states.last() {
            Some(last) => states.len() - states.iter().rev().take_while(|s| *s == last).count(),
            None => 0,
        };
        let mut cp = Self::default();
        for s in states.into_iter().take(complete) {
            match s.message_box {
                Some(MessageBox::Common { pts }) if cp.common.is_none_or(|(p, _, _)| pts >= p) => {
                    cp.common = Some((pts, s.date, s.seq));
                }
                Some(MessageBox::Common { .. }) => {}
                Some(MessageBox::Secondary { qts: q }) => {
                    cp.qts = Some(cp.qts.map_or(q, |old| old.max(q)));
                }
                Some(MessageBox::Channel { channel_id, pts }) => {
                    let e = cp.channels.entry(channel_id).or_insert(pts);
                    *e = (*e).max(pts);
                }
                None => {}
            }
        }
        cp
    }

    /// True when the batch moves nothing.
    pub fn is_empty(&self) -> bool {
        self.common.is_none() && self.qts.is_none() && self.channels.is_empty()
    }

    /// Saves the state into the account's session data (`set_update_primary`,
    /// `set_update_qts`, `set_channel_pts`).
    pub async fn save(
        &self,
        store: &dyn AccountStore,
        account: AccountId,
    ) -> Result<(), StoreError> {
        if let Some((pts, date, seq)) = self.common {
            store.set_update_primary(account, pts, date, seq).await?;
        }
        if let Some(q) = self.qts {
            store.set_update_qts(account, q).await?;
        }
        for (channel, pts) in &self.channels {
            store.set_channel_pts(account, *channel, *pts).await?;
        }
        Ok(())
    }
}

fn state_of(u: &Update) -> Option<&State> {
    match u {
        Update::NewMessage(m) | Update::MessageEdited(m) => Some(&m.state),
        Update::MessageDeleted(d) => Some(&d.state),
        Update::Raw(r) => Some(&r.state),
        _ => None,
    }
}
