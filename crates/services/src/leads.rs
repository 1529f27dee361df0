//! Lead monitoring as people use it: tasks (create, change, pause, resume, delete) with their
//! queries checked by the matching engine's parser and their sources named by reference or
//! picked from the reading account's chats; the leads found (filters, search, paging, read
//! flags, CSV export); the "try it" box (a query run against the last posts of the sources);
//! and "write to the author", which opens the inbox chat with a lead's author through the
//! task's reading account. Who may do what is the store's rule (`Viewer`); every change is
//! audited and tells the monitor (`Monitor::tasks_changed`).

use crate::audit::Audit;
use crate::inbox::Inbox;
use crate::monitor::sources::DialogChat;
use crate::monitor::{Monitor, MonitorError};
use std::ops::Range;
use std::sync::Arc;
use switchboard_domain::{
    AccountId, AccountStore, Chat, IngestOutcome, Lead, LeadFilter, LeadId, LeadStore, PeerKind,
    PrivatePeer, Source, SourceId, SourceRef, Store, StoreError, Task, TaskId, TaskSpec, Timestamp,
    Viewer,
};
use switchboard_leads::{Matcher, Query, QueryError, TaskSpec as MatchSpec};

/// Posts of each source the "try it" box reads.
pub const TRY_POSTS_PER_SOURCE: u32 = 20;
/// Most posts the "try it" box returns.
pub const TRY_MAX_MATCHES: usize = 50;

/// A query the parser refused: where, and what it expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryProblem {
    /// 0-based character position.
    pub position: usize,
    /// Short machine-readable expectation (`)`, `word`, `valid_regex`, …).
    pub expected: &'static str,
    /// English description, e.g. `expected ")" at 22`.
    pub message: String,
}

impl From<QueryError> for QueryProblem {
    fn from(e: QueryError) -> Self {
        QueryProblem {
            position: e.position,
            expected: e.expected(),
            message: e.to_string(),
        }
    }
}

/// Why a lead-monitoring request was refused.
#[derive(Debug, thiserror::Error)]
pub enum LeadsError {
    /// The query does not parse (`query_invalid`).
    #[error("query_invalid: {}", .0.message)]
    Query(QueryProblem),
    /// The lead's author is not known to the reading account (`lead_author_unknown`).
    #[error("the author is unknown to the reading account")]
    AuthorUnknown,
    /// The monitor could not read the sources (offline account, FloodWait, Telegram).
    #[error(transparent)]
    Monitor(MonitorError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MonitorError> for LeadsError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::Store(s) => LeadsError::Store(s),
            other => LeadsError::Monitor(other),
        }
    }
}

/// How a source is named when a task's sources are set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceInput {
    /// `@name`, `t.me/name`, `t.me/c/…`, `t.me/+hash`, `t.me/joinchat/hash`.
    Reference(String),
    /// A group or channel of the reading account's chats, by its Bot-API style id.
    Dialog {
        /// Negative peer id.
        peer_id: i64,
        /// Its title, shown.
        title: String,
    },
}

/// A post of the "try it" box that the query matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TryMatch {
    /// The chat it is in (Bot-API style id).
    pub peer_id: i64,
    /// Its Telegram message id.
    pub tg_message_id: i64,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// Its text.
    pub text: String,
    /// The terms that matched.
    pub terms: Vec<String>,
    /// Byte ranges of `text` to highlight, sorted and merged.
    pub highlights: Vec<Range<usize>>,
}

/// What the "try it" box found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TryOutcome {
    /// Posts read.
    pub checked: usize,
    /// The matching ones, newest first.
    pub matches: Vec<TryMatch>,
}

/// The lead-monitoring service the web layer calls.
#[derive(Clone)]
pub struct Leads {
    store: Arc<dyn Store>,
    accounts: Arc<dyn AccountStore>,
    monitor: Monitor,
    inbox: Inbox,
}

/// Parses a query as the engine will, so a task is never saved with one it cannot run.
pub fn check_query(query: &str) -> Result<Query, LeadsError> {
    Query::parse(query).map_err(|e| LeadsError::Query(e.into()))
}

/// Parses source inputs into references; the first bad one refuses them all.
pub fn source_refs(inputs: &[SourceInput]) -> Result<Vec<SourceRef>, LeadsError> {
    inputs
        .iter()
        .map(|i| match i {
            SourceInput::Reference(text) => Ok(SourceRef::parse(text)?),
            SourceInput::Dialog { peer_id, title } if *peer_id < 0 => {
                Ok(SourceRef::dialog(*peer_id, title.trim()))
            }
            SourceInput::Dialog { .. } => Err(LeadsError::Store(StoreError::Conflict(
                switchboard_domain::ErrorCode::SourceInvalid,
            ))),
        })
        .collect()
}

/// What a create or replace checks before anything is written: the role, the query and the
/// sources.
fn checked_input(
    viewer: &Viewer,
    spec: &TaskSpec,
    sources: Option<&[SourceInput]>,
) -> Result<Option<Vec<SourceRef>>, LeadsError> {
    viewer.check_manage_tasks()?;
    check_query(&spec.query)?;
    sources.map(source_refs).transpose()
}

impl Leads {
    /// The service over the stores, the monitor and the inbox.
    pub fn new(
        store: Arc<dyn Store>,
        accounts: Arc<dyn AccountStore>,
        monitor: Monitor,
        inbox: Inbox,
    ) -> Self {
        Self {
            store,
            accounts,
            monitor,
            inbox,
        }
    }

    fn leads(&self) -> &Arc<dyn LeadStore> {
        self.monitor.store()
    }

    async fn audit(&self, viewer: &Viewer, ip: Option<&str>, action: &str, task: &Task) {
        Audit::new(action)
            .workspace(viewer.workspace)
            .actor(viewer.user)
            .target(format!("task:{}", task.id.0))
            .ip(ip)
            .details(serde_json::json!({
                "name": task.name,
                "account_id": task.account_id.0,
                "active": task.active,
            }))
            .record(&*self.store)
            .await;
    }

    // --- tasks ---

    /// The tasks of the viewer's workspace, by name.
    pub async fn tasks(&self, viewer: &Viewer) -> Result<Vec<Task>, LeadsError> {
        Ok(self.leads().list_tasks(viewer).await?)
    }

    /// One task with its sources.
    pub async fn task(
        &self,
        viewer: &Viewer,
        task: TaskId,
    ) -> Result<(Task, Vec<Source>), LeadsError> {
        let t = self.leads().get_task(viewer, task).await?;
        let sources = self.leads().task_sources(viewer, task).await?;
        Ok((t, sources))
    }

    /// Creates a task (active) and, when given, its sources. The query and every source are
    /// checked first: a refusal writes nothing.
    pub async fn create_task(
        &self,
        viewer: &Viewer,
        ip: Option<&str>,
        spec: &TaskSpec,
        sources: Option<&[SourceInput]>,
    ) -> Result<(Task, Vec<Source>), LeadsError> {
        let refs = checked_input(viewer, spec, sources)?;
        let now = Timestamp::now();
        let task = self.leads().create_task(viewer, spec, now).await?;
        let sources = match refs {
            Some(refs) if !refs.is_empty() => {
                match self
                    .leads()
                    .set_task_sources(viewer, task.id, &refs, now)
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        // The sources were refused (too many, an account gone): the task goes
                        // too, so a refused request leaves nothing behind.
                        if let Err(del) = self.leads().delete_task(viewer, task.id).await {
                            tracing::error!(task_id = %task.id, error = %del, "could not undo a task");
                        }
                        return Err(e.into());
                    }
                }
            }
            _ => Vec::new(),
        };
        self.audit(viewer, ip, "leads.task_created", &task).await;
        self.monitor.tasks_changed(Some(task.account_id));
        Ok((task, sources))
    }

    /// Replaces a task's settings (and its sources, when given).
    pub async fn update_task(
        &self,
        viewer: &Viewer,
        ip: Option<&str>,
        task: TaskId,
        spec: &TaskSpec,
        sources: Option<&[SourceInput]>,
    ) -> Result<(Task, Vec<Source>), LeadsError> {
        let refs = checked_input(viewer, spec, sources)?;
        let before = self.leads().get_task(viewer, task).await?;
        let now = Timestamp::now();
        let updated = self.leads().update_task(viewer, task, spec, now).await?;
        let sources = match refs {
            Some(refs) => {
                self.leads()
                    .set_task_sources(viewer, task, &refs, now)
                    .await?
            }
            None => self.leads().task_sources(viewer, task).await?,
        };
        self.audit(viewer, ip, "leads.task_updated", &updated).await;
        if before.account_id != updated.account_id {
            self.monitor.tasks_changed(Some(before.account_id));
        }
        self.monitor.tasks_changed(Some(updated.account_id));
        Ok((updated, sources))
    }

    /// Pauses (`false`) or resumes (`true`) a task.
    pub async fn set_active(
        &self,
        viewer: &Viewer,
        ip: Option<&str>,
        task: TaskId,
        active: bool,
    ) -> Result<Task, LeadsError> {
        let t = self
            .leads()
            .set_task_active(viewer, task, active, Timestamp::now())
            .await?;
        let action = if active {
            "leads.task_resumed"
        } else {
            "leads.task_paused"
        };
        self.audit(viewer, ip, action, &t).await;
        self.monitor.tasks_changed(Some(t.account_id));
        Ok(t)
    }

    /// Deletes a task with its leads.
    pub async fn delete_task(
        &self,
        viewer: &Viewer,
        ip: Option<&str>,
        task: TaskId,
    ) -> Result<(), LeadsError> {
        viewer.check_manage_tasks()?;
        let t = self.leads().get_task(viewer, task).await?;
        self.leads().delete_task(viewer, task).await?;
        self.audit(viewer, ip, "leads.task_deleted", &t).await;
        self.monitor.tasks_changed(Some(t.account_id));
        Ok(())
    }

    /// The sources of a task, by id.
    pub async fn sources(&self, viewer: &Viewer, task: TaskId) -> Result<Vec<Source>, LeadsError> {
        Ok(self.leads().task_sources(viewer, task).await?)
    }

    /// Replaces a task's sources.
    pub async fn set_sources(
        &self,
        viewer: &Viewer,
        ip: Option<&str>,
        task: TaskId,
        inputs: &[SourceInput],
    ) -> Result<Vec<Source>, LeadsError> {
        viewer.check_manage_tasks()?;
        let refs = source_refs(inputs)?;
        let t = self.leads().get_task(viewer, task).await?;
        let sources = self
            .leads()
            .set_task_sources(viewer, task, &refs, Timestamp::now())
            .await?;
        Audit::new("leads.sources_set")
            .workspace(viewer.workspace)
            .actor(viewer.user)
            .target(format!("task:{}", task.0))
            .ip(ip)
            .details(serde_json::json!({
                "sources": refs.iter().map(|r| format!("{}:{}", r.kind.as_str(), r.key)).collect::<Vec<_>>(),
            }))
            .record(&*self.store)
            .await;
        self.monitor.tasks_changed(Some(t.account_id));
        Ok(sources)
    }

    /// Resolves a `failed` source of a task again (the user's retry); a source in another state
    /// is returned as it is. Owners and admins.
    pub async fn retry_source(
        &self,
        viewer: &Viewer,
        ip: Option<&str>,
        task: TaskId,
        source: SourceId,
    ) -> Result<Source, LeadsError> {
        let before = self
            .leads()
            .task_sources(viewer, task)
            .await?
            .into_iter()
            .find(|s| s.id == source);
        let s = self
            .leads()
            .retry_source(viewer, task, source, Timestamp::now())
            .await?;
        if before.is_some_and(|b| b.state != s.state) {
            Audit::new("leads.source_retried")
                .workspace(viewer.workspace)
                .actor(viewer.user)
                .target(format!("task:{}", task.0))
                .ip(ip)
                .details(serde_json::json!({"source_id": source.0, "failure": s.failure}))
                .record(&*self.store)
                .await;
            self.monitor.source_changed(viewer.workspace, &s);
        }
        Ok(s)
    }

    /// The groups and channels of a reading account's dialogs, read from Telegram through its
    /// live client (to pick sources from; the inbox stores only some chats). Owners and admins;
    /// an account of another workspace is `NotFound`.
    pub async fn dialogs(
        &self,
        viewer: &Viewer,
        account: AccountId,
    ) -> Result<Vec<DialogChat>, LeadsError> {
        viewer.check_manage_tasks()?;
        let account = self.accounts.get_account(viewer.workspace, account).await?;
        Ok(self.monitor.sources().dialogs(account.id).await?)
    }

    /// The "try it" box: `query` (the task's own when `None`) run against the last
    /// [`TRY_POSTS_PER_SOURCE`] posts of each of the task's sources, read through its account.
    pub async fn try_query(
        &self,
        viewer: &Viewer,
        task: TaskId,
        query: Option<&str>,
    ) -> Result<TryOutcome, LeadsError> {
        let t = self.leads().get_task(viewer, task).await?;
        let query = check_query(query.unwrap_or(&t.query))?;
        let sources = self.leads().task_sources(viewer, task).await?;
        let posts = self
            .monitor
            .recent_posts(t.account_id, &sources, TRY_POSTS_PER_SOURCE)
            .await?;
        let matcher = Matcher::build([MatchSpec {
            id: (),
            query,
            ignore_forwards: t.ignore_forwards,
        }])
        .map_err(|e| StoreError::Backend(format!("try it: {e}")))?;
        let checked = posts.len();
        let mut matches = Vec::new();
        for post in posts {
            if matches.len() >= TRY_MAX_MATCHES {
                break;
            }
            let Some(m) = matcher.match_post(&post.text).into_iter().next() else {
                continue;
            };
            if m.ignore_forwards && post.is_forward {
                continue;
            }
            let highlights = merge(m.spans.iter().map(|s| s.range.clone()).collect());
            matches.push(TryMatch {
                peer_id: post.peer_id,
                tg_message_id: post.tg_message_id,
                posted_at: post.posted_at,
                text: post.text,
                terms: m.terms,
                highlights,
            });
        }
        Ok(TryOutcome { checked, matches })
    }

    // --- leads ---

    /// Leads of the viewer's workspace, newest first.
    pub async fn list(
        &self,
        viewer: &Viewer,
        filter: &LeadFilter,
    ) -> Result<Vec<Lead>, LeadsError> {
        Ok(self.leads().list_leads(viewer, filter).await?)
    }

    /// Marks one lead read or unread.
    pub async fn set_read(
        &self,
        viewer: &Viewer,
        lead: LeadId,
        read: bool,
    ) -> Result<Lead, LeadsError> {
        Ok(self.leads().set_lead_read(viewer, lead, read).await?)
    }

    /// Marks every lead (of one task) read; how many changed.
    pub async fn mark_all_read(
        &self,
        viewer: &Viewer,
        task: Option<TaskId>,
    ) -> Result<u64, LeadsError> {
        Ok(self.leads().mark_all_leads_read(viewer, task).await?)
    }

    /// "Write to the author": the inbox chat of the task's reading account with the lead's
    /// author, created when there is none. The author must be a person the account knows (its
    /// peer cache holds them: Telegram needs their access hash to deliver a message).
    pub async fn open_author_chat(
        &self,
        viewer: &Viewer,
        ip: Option<&str>,
        lead: LeadId,
    ) -> Result<(Chat, bool), LeadsError> {
        let lead = self.leads().get_lead(viewer, lead).await?;
        let task = self.leads().get_task(viewer, lead.task_id).await?;
        let author = lead
            .author
            .id
            .filter(|id| *id > 0)
            .ok_or(LeadsError::AuthorUnknown)?;
        let cached = self
            .accounts
            .get_cached_peer(task.account_id, author)
            .await?
            .filter(|p| p.access_hash.is_some())
            .ok_or(LeadsError::AuthorUnknown)?;
        let kind = if cached.subtype & 2 != 0 {
            PeerKind::Bot
        } else {
            PeerKind::User
        };
        let title = lead
            .author
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| lead.author.username.as_ref().map(|u| format!("@{u}")))
            .unwrap_or_else(|| author.to_string());
        let peer = PrivatePeer {
            peer_id: author,
            kind,
            title,
            username: lead.author.username.clone(),
        };
        let (chat, created) = self
            .accounts
            .open_private_chat(viewer.workspace, task.account_id, &peer, Timestamp::now())
            .await?;
        if created {
            Audit::new("leads.author_chat_opened")
                .workspace(viewer.workspace)
                .actor(viewer.user)
                .target(format!("chat:{}", chat.id.0))
                .ip(ip)
                .details(serde_json::json!({"lead_id": lead.id.0, "account_id": task.account_id.0}))
                .record(&*self.store)
                .await;
            let outcome = IngestOutcome {
                inserted: Vec::new(),
                chats: vec![chat.clone()],
            };
            self.inbox.after_ingest(viewer.workspace, &outcome).await;
        }
        Ok((chat, created))
    }

    /// The reading account of a task (for callers that need to name it).
    pub async fn task_account(
        &self,
        viewer: &Viewer,
        task: TaskId,
    ) -> Result<AccountId, LeadsError> {
        Ok(self.leads().get_task(viewer, task).await?.account_id)
    }
}

/// Sorted, merged ranges.
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

// --- CSV ---

/// The header row of a lead export.
pub const CSV_HEADER: &[&str] = &[
    "id",
    "task_id",
    "task",
    "source_id",
    "posted_at",
    "link",
    "author_id",
    "author_name",
    "author_username",
    "terms",
    "text",
    "read",
];

/// One CSV field, RFC 4180 quoted when it needs it. A text cell starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet shows it instead of
/// running it as a formula (OWASP's CSV injection advice).
pub fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// One CSV line (with CRLF) of fields.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The CSV line of a lead; `task_name` is its task's name.
pub fn csv_lead(lead: &Lead, task_name: &str) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    csv_line(&[
        lead.id.0.to_string(),
        lead.task_id.0.to_string(),
        task_name.to_string(),
        lead.source_id.0.to_string(),
        iso8601(lead.posted_at),
        opt(&lead.link),
        lead.author.id.map(|i| i.to_string()).unwrap_or_default(),
        opt(&lead.author.name),
        opt(&lead.author.username),
        lead.terms.join("; "),
        lead.text.clone(),
        lead.read.to_string(),
    ])
}

/// `2026-12-05T19:34:27Z` (UTC, seconds).
pub fn iso8601(t: Timestamp) -> String {
    let secs = t.0.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=1+2"), "'=1+2");
        assert_eq!(csv_field("+7 999"), "'+7 999");
        assert_eq!(csv_field("-2"), "'-2");
        assert_eq!(csv_field("@user"), "'@user");
        assert_eq!(
            csv_field("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_line(&["a", "b"]), "a,b\r\n");
    }

    #[test]
    fn timestamps_print_as_utc() {
        assert_eq!(iso8601(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(Timestamp(951_782_400_000)), "2000-02-29T00:00:00Z");
        assert_eq!(
            iso8601(Timestamp(1_796_499_267_000)),
            "2026-12-05T19:34:27Z"
        );
    }

    #[test]
    fn highlights_merge() {
        assert_eq!(merge(vec![5..7, 0..2, 1..3, 7..9]), vec![0..3, 5..9]);
    }

    #[test]
    fn a_bad_query_names_its_place() {
        let Err(LeadsError::Query(p)) = check_query("(rust | go") else {
            panic!("accepted")
        };
        assert_eq!((p.position, p.expected), (10, ")"));
        let Err(LeadsError::Store(StoreError::Conflict(c))) = source_refs(&[SourceInput::Dialog {
            peer_id: 5,
            title: "x".into(),
        }]) else {
            panic!("a person is not a source")
        };
        assert_eq!(c.code(), "source_invalid");
    }
}
