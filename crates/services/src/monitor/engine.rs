//! The matching engine at run time: posts in, leads out. It holds the current
//! [`Matcher`](switchboard_leads::Matcher) of every active task behind a [`MatcherHandle`]
//! (rebuilt by the `lead_matcher` worker when a task changes and swapped in whole, so matching
//! never waits), and per reading account a cache of its watched sources by chat id (so a post
//! of a chat nobody monitors costs one hash lookup). [`Engine::handle`] matches a batch of one
//! account's posts against the tasks that watch each post's source, stores the leads in one
//! `insert_leads` (the database drops duplicates), publishes `lead_found`, wakes the delivery
//! worker and advances each source's high-water mark. `docs/leads.md` ("The engine at run
//! time") describes the behaviour.

use crate::events::{Audience, EventBus, ServerEvent};
use crate::lead_delivery::LeadDelivery;
use crate::workers::Workers;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_domain::{
    AccountId, Lead, LeadOutcome, LeadStore, NewLead, Post, Source, SourceId, SourceKind,
    StoreError, Task, TaskId, Timestamp, WatchedSource,
};
use switchboard_leads::{Matcher, MatcherHandle, Query, TaskMatch, TaskSpec, simhash64, snippet};
use tokio::sync::{Notify, OnceCell, watch};

/// How long the rebuild worker waits after a change before it builds, so that a burst of
/// changes (a user saving a task, then its sources; an import of many tasks) costs one build.
pub const REBUILD_COALESCE: Duration = Duration::from_millis(50);
/// The longest a batch waits for the rebuild that adds a task watching its source
/// ([`Engine::await_new_tasks`]).
pub const NEW_TASK_WAIT: Duration = Duration::from_secs(5);
/// Longest snippet of a lead, in characters (plus the `…` marks where the post was cut).
pub const SNIPPET_CHARS: usize = 280;

/// Posts in, leads out (see the module docs of `monitor`). Cloning shares it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn LeadStore>,
    events: EventBus,
    delivery: LeadDelivery,
    matcher: MatcherHandle<TaskId>,
    /// The first build, done before the first post is matched.
    initial: OnceCell<()>,
    /// Bumped by every [`Engine::tasks_changed`]; the worker builds while `built` is behind.
    wanted: AtomicU64,
    /// The `wanted` value the current matcher was built for.
    built: watch::Sender<u64>,
    wake: Notify,
    /// Each reading account's watched sources, loaded on first use.
    sources: Mutex<SourceCache>,
}

#[derive(Default)]
struct SourceCache {
    by_account: HashMap<AccountId, Arc<WatchedSources>>,
    /// Bumped by every invalidation: a load that started before one is not cached.
    generation: u64,
}

/// The sources of one reading account that active tasks watch, by the chat's Bot-API style
/// peer id ([`Post::peer_id`]). Sources not resolved yet have no chat id and are not here.
#[derive(Debug, Default)]
pub struct WatchedSources {
    by_peer: HashMap<i64, WatchedSource>,
}

impl WatchedSources {
    fn new(list: Vec<WatchedSource>) -> Self {
        let by_peer = list
            .into_iter()
            .filter(|w| !w.tasks.is_empty())
            .filter_map(|w| Some((w.source.channel_id?, w)))
            .collect();
        WatchedSources { by_peer }
    }

    /// True when a task watches the chat `peer_id` (one hash lookup).
    pub fn contains(&self, peer_id: i64) -> bool {
        self.by_peer.contains_key(&peer_id)
    }

    /// True when the account watches nothing.
    pub fn is_empty(&self) -> bool {
        self.by_peer.is_empty()
    }

    /// The watched source of a chat, with its tasks.
    pub fn get(&self, peer_id: i64) -> Option<&WatchedSource> {
        self.by_peer.get(&peer_id)
    }
}

impl Engine {
    /// An engine over the lead store. It matches nothing until its first build, which
    /// [`Engine::start`] (or the first [`Engine::handle`]) does.
    pub fn new(store: Arc<dyn LeadStore>, events: EventBus, delivery: LeadDelivery) -> Self {
        let (built, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                store,
                events,
                delivery,
                matcher: MatcherHandle::new(Matcher::empty()),
                initial: OnceCell::new(),
                wanted: AtomicU64::new(0),
                built,
                wake: Notify::new(),
                sources: Mutex::new(SourceCache::default()),
            }),
        }
    }

    /// Builds the matcher from the active tasks and starts the `lead_matcher` worker that
    /// rebuilds it after [`Engine::tasks_changed`]. Call it before the accounts start, so the
    /// first posts are matched against every task.
    pub async fn start(&self, workers: &Workers) -> Result<(), StoreError> {
        self.ready().await?;
        let engine = self.clone();
        workers.spawn("lead_matcher", move |cancel| {
            let engine = engine.clone();
            async move {
                loop {
                    let behind =
                        engine.inner.wanted.load(Ordering::Acquire) > *engine.inner.built.borrow();
                    if !behind {
                        tokio::select! {
                            () = cancel.cancelled() => return Ok(()),
                            () = engine.inner.wake.notified() => {}
                        }
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(REBUILD_COALESCE) => {}
                    }
                    engine.rebuild().await.map_err(|e| e.to_string())?;
                }
            }
        });
        Ok(())
    }

    /// Matches `posts` of `account`'s sources, stores the leads, publishes them, wakes delivery
    /// and advances the high-water marks. Returns the new leads.
    ///
    /// Only posts of chats the account's active tasks watch are matched, and each only against
    /// the tasks that watch its chat (a task with "ignore forwards" skips forwards). A post
    /// with `edit_date` is an edit: the store keeps a lead of it only for terms the message had
    /// not matched before. Every watched source's high-water mark moves to the highest message
    /// id of the batch, whether it matched or not.
    #[tracing::instrument(skip_all, fields(account_id = %account, posts = posts.len()))]
    pub async fn handle(
        &self,
        account: AccountId,
        posts: &[Post],
    ) -> Result<Vec<Lead>, StoreError> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        self.ready().await?;
        let mut retried = false;
        loop {
            let watched = self.watching(account).await?;
            self.await_new_tasks(&watched, posts).await;
            let (batch, highest) = self.matches(&watched, posts);
            let now = Timestamp::now();
            let outcomes = if batch.is_empty() {
                Vec::new()
            } else {
                match self.inner.store.insert_leads(&batch, now).await {
                    Ok(o) => o,
                    // A task or source went away since the cache was loaded (deleted, or moved
                    // to another account): look again once.
                    Err(StoreError::NotFound) if !retried => {
                        tracing::info!("a task or source changed under a batch; reloading");
                        retried = true;
                        self.sources_changed(account);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            let leads: Vec<Lead> = outcomes
                .into_iter()
                .filter_map(|o| match o {
                    LeadOutcome::New(lead) => Some(*lead),
                    LeadOutcome::Duplicate(_) => None,
                })
                .collect();
            for lead in &leads {
                self.inner.events.publish(
                    lead.workspace_id,
                    Audience::Workspace,
                    ServerEvent::LeadFound { lead },
                );
            }
            if !leads.is_empty() {
                tracing::debug!(matched = batch.len(), new = leads.len(), "leads found");
                self.inner.delivery.wake();
            }
            for (source, last) in highest {
                match self
                    .inner
                    .store
                    .advance_source(source, last, None, now)
                    .await
                {
                    Ok(_) => {}
                    // Deleted meanwhile (two spellings of one channel merged): nothing to keep.
                    Err(StoreError::NotFound) => self.sources_changed(account),
                    Err(e) => return Err(e),
                }
            }
            return Ok(leads);
        }
    }

    /// Rebuilds the matcher from the active tasks, off the hot path (coalescing bursts), and
    /// reloads every account's watched sources. Posts are matched on the previous matcher
    /// until the new one is swapped in.
    pub fn tasks_changed(&self) {
        self.inner.wanted.fetch_add(1, Ordering::AcqRel);
        self.invalidate(None);
        self.inner.wake.notify_one();
    }

    /// `account`'s sources changed (resolved, joined, left, merged): its watched sources are
    /// read again before its next post.
    pub fn sources_changed(&self, account: AccountId) {
        self.invalidate(Some(account));
    }

    /// Waits until the matcher reflects every [`Engine::tasks_changed`] made before this call
    /// (for a caller that must know a change is in force, e.g. before answering a request).
    pub async fn rebuilt(&self) {
        let target = self.inner.wanted.load(Ordering::Acquire);
        let mut rx = self.inner.built.subscribe();
        let _ = rx.wait_for(|built| *built >= target).await;
    }

    /// The sources `account`'s active tasks watch, by chat id (cached until a change). The
    /// account's update writer asks this before mapping a chat's message to a [`Post`].
    pub async fn watching(&self, account: AccountId) -> Result<Arc<WatchedSources>, StoreError> {
        let generation = {
            let cache = self.cache();
            if let Some(w) = cache.by_account.get(&account) {
                return Ok(Arc::clone(w));
            }
            cache.generation
        };
        let list = self.inner.store.watched_sources(account).await?;
        let watched = Arc::new(WatchedSources::new(list));
        let mut cache = self.cache();
        if cache.generation == generation {
            cache.by_account.insert(account, Arc::clone(&watched));
        }
        Ok(watched)
    }

    /// The number of tasks the current matcher holds.
    pub fn task_count(&self) -> usize {
        self.inner.matcher.load().task_count()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SourceCache> {
        self.inner.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn invalidate(&self, account: Option<AccountId>) {
        let mut cache = self.cache();
        cache.generation += 1;
        match account {
            Some(a) => {
                cache.by_account.remove(&a);
            }
            None => cache.by_account.clear(),
        }
    }

    /// The first build, once.
    async fn ready(&self) -> Result<(), StoreError> {
        self.inner
            .initial
            .get_or_try_init(|| self.rebuild())
            .await
            .map(|_| ())
    }

    /// Reads the active tasks, builds a matcher of them on a blocking thread and swaps it in.
    async fn rebuild(&self) -> Result<(), StoreError> {
        let target = self.inner.wanted.load(Ordering::Acquire);
        let started = std::time::Instant::now();
        let tasks = self.inner.store.active_tasks().await?;
        let count = tasks.len();
        let built = tokio::task::spawn_blocking(move || build(tasks))
            .await
            .map_err(|_| StoreError::Backend("the matcher build panicked".into()))?;
        match built {
            Ok(matcher) => {
                tracing::info!(
                    tasks = matcher.task_count(),
                    terms = matcher.term_count(),
                    skipped = count - matcher.task_count(),
                    ms = started.elapsed().as_millis() as u64,
                    "lead matcher rebuilt"
                );
                self.inner.matcher.replace(matcher);
            }
            // Deterministic for this set of tasks: keep matching with the previous matcher
            // until the tasks change again.
            Err(e) => {
                tracing::error!(error = %e, "lead matcher build failed; keeping the previous one")
            }
        }
        // The tasks each source is watched by may have changed with the tasks.
        self.invalidate(None);
        self.inner.built.send_modify(|b| *b = (*b).max(target));
        Ok(())
    }

    /// A task created or resumed a moment ago can watch a source before the matcher that
    /// knows it is swapped in (its sources resolve while the rebuild coalesces). Its posts
    /// must not be matched without it: the high-water mark moves past them and they would
    /// never be read again. So when a rebuild is pending and a task watching one of the
    /// batch's sources is not in the current matcher, this waits for the rebuild (tens of
    /// milliseconds, at most [`NEW_TASK_WAIT`]). Every other batch matches at once.
    async fn await_new_tasks(&self, watched: &WatchedSources, posts: &[Post]) {
        if self.inner.wanted.load(Ordering::Acquire) <= *self.inner.built.borrow() {
            return;
        }
        let matcher = self.inner.matcher.load();
        let missing = posts
            .iter()
            .filter_map(|p| watched.get(p.peer_id))
            .flat_map(|w| &w.tasks)
            .any(|t| !matcher.has_task(t));
        drop(matcher);
        if missing
            && tokio::time::timeout(NEW_TASK_WAIT, self.rebuilt())
                .await
                .is_err()
        {
            tracing::warn!("the lead matcher was not rebuilt in time; matching without a new task");
        }
    }

    /// The leads of a batch (not yet stored) and the highest message id per watched source.
    fn matches(
        &self,
        watched: &WatchedSources,
        posts: &[Post],
    ) -> (Vec<NewLead>, HashMap<SourceId, i64>) {
        let matcher = self.inner.matcher.load();
        let mut batch = Vec::new();
        let mut highest: HashMap<SourceId, i64> = HashMap::new();
        for post in posts {
            let Some(w) = watched.get(post.peer_id) else {
                continue;
            };
            highest
                .entry(w.source.id)
                .and_modify(|h| *h = (*h).max(post.tg_message_id))
                .or_insert(post.tg_message_id);
            let mut simhash = None;
            for m in matcher.match_post(&post.text) {
                if !w.tasks.contains(&m.task) || (m.ignore_forwards && post.is_forward) {
                    continue;
                }
                let hash = *simhash.get_or_insert_with(|| fingerprint(&post.text));
                batch.push(new_lead(&w.source, post, &m, hash));
            }
        }
        (batch, highest)
    }
}

/// The matcher of `tasks`; a task whose stored query no longer parses (the language changed
/// since it was saved) is skipped and logged.
fn build(tasks: Vec<Task>) -> Result<Matcher<TaskId>, switchboard_leads::BuildError> {
    let specs = tasks
        .into_iter()
        .filter_map(|t| match Query::parse(&t.query) {
            Ok(query) => Some(TaskSpec {
                id: t.id,
                query,
                ignore_forwards: t.ignore_forwards,
            }),
            Err(e) => {
                tracing::warn!(
                    task_id = %t.id,
                    position = e.position,
                    expected = e.expected(),
                    "a task's stored query does not parse; the task is not matched"
                );
                None
            }
        });
    Matcher::build(specs)
}

/// The SimHash of a post's normalised words as stored; `None` for a text without words.
fn fingerprint(text: &str) -> Option<i64> {
    let hash = simhash64(text);
    (hash != 0).then_some(hash as i64)
}

/// The link to a message: `t.me/<username>/<id>` for a source named by its username,
/// `t.me/c/<id>/<msg>` for another channel or supergroup (members open it), none for a basic
/// group.
fn post_link(source: &Source, post: &Post) -> Option<String> {
    if source.kind == SourceKind::Username {
        return Some(format!(
            "https://t.me/{}/{}",
            source.key, post.tg_message_id
        ));
    }
    // Bot-API style: -100<channel id> for channels and supergroups.
    let channel = post.peer_id.checked_neg()?.checked_sub(1_000_000_000_000)?;
    (channel > 0).then(|| format!("https://t.me/c/{channel}/{}", post.tg_message_id))
}

fn new_lead(source: &Source, post: &Post, m: &TaskMatch<TaskId>, simhash: Option<i64>) -> NewLead {
    let spans: Vec<_> = m.spans.iter().map(|s| s.range.clone()).collect();
    NewLead {
        task: m.task,
        source: source.id,
        tg_message_id: post.tg_message_id,
        revision: post.edit_date.unwrap_or(0),
        link: post_link(source, post),
        author: post.author.clone(),
        text: post.text.clone(),
        snippet: snippet(&post.text, &spans, SNIPPET_CHARS).text,
        terms: m.terms.clone(),
        posted_at: post.posted_at,
        forward_origin: post.forward_origin,
        grouped_id: post.grouped_id,
        simhash,
        random_id: crate::outbox::random_id(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use switchboard_domain::{LeadAuthor, SourceState};

    fn source(kind: SourceKind, key: &str) -> Source {
        Source {
            id: SourceId(1),
            account_id: AccountId(1),
            kind,
            key: key.into(),
            input: key.into(),
            channel_id: Some(-1_001_234_567_890),
            access_hash: None,
            title: None,
            state: SourceState::Joined,
            wait_until: None,
            failure: None,
            read_via: None,
            joined_by_us: false,
            leave_allowed: false,
            last_message_id: 0,
            pts: None,
            checked_at: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn post(peer_id: i64) -> Post {
        Post {
            peer_id,
            tg_message_id: 42,
            edit_date: None,
            posted_at: Timestamp(0),
            text: "x".into(),
            author: LeadAuthor::default(),
            is_forward: false,
            forward_origin: None,
            grouped_id: None,
        }
    }

    #[test]
    fn links_name_the_username_or_the_channel_id() {
        let p = post(-1_001_234_567_890);
        assert_eq!(
            post_link(&source(SourceKind::Username, "rust_jobs"), &p).as_deref(),
            Some("https://t.me/rust_jobs/42")
        );
        assert_eq!(
            post_link(&source(SourceKind::Invite, "AbC"), &p).as_deref(),
            Some("https://t.me/c/1234567890/42")
        );
        assert_eq!(
            post_link(&source(SourceKind::Dialog, "-77"), &post(-77)),
            None
        );
        assert_eq!(
            post_link(&source(SourceKind::Dialog, "x"), &post(i64::MIN)),
            None
        );
    }

    #[test]
    fn a_text_without_words_has_no_fingerprint() {
        assert_eq!(fingerprint(" !! "), None);
        assert!(fingerprint("Rust developer wanted").is_some());
    }
}
