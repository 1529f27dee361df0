//! Autoposting as people use it: scheduled posts (create, change, cancel, delete, publish now),
//! their history and upcoming runs, and the follow-ups of a published run (edit, delete). A
//! post's target is checked with Telegram when it is saved — the sender must be able to post
//! there ([`PostTargets`]) — and its schedule is parsed with its position and reason on error.
//! Who may do what is the store's rule (`Viewer`); every change is audited, announced on the
//! event bus (`post_updated`, `post_deleted`, `post_run_updated`) and wakes the publisher
//! ([`Scheduler::wakeup`]).

use crate::audit::Audit;
use crate::events::{Audience, EventBus, ServerEvent};
use crate::monitor::MonitorError;
use std::sync::Arc;
use switchboard_domain::schedule::check_schedule;
use switchboard_domain::{
    ActionKind, DEFAULT_GRACE_MINUTES, FollowUps, PostAction, PostContent, PostEdit, PostFilter,
    PostId, PostRun, PostRunId, PostSender, PostSpec, PostState, PostTarget, Recurrence, RunFilter,
    Schedule, ScheduleInvalid, ScheduleStore, ScheduledPost, Store, StoreError, Timestamp, Viewer,
};
use tokio::sync::Notify;

/// Most upcoming runs one answer lists.
pub const MAX_UPCOMING: usize = 500;
/// The furthest ahead the upcoming list looks, in days.
pub const MAX_UPCOMING_DAYS: u32 = 60;

/// Why an autoposting request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule does not parse (`schedule_invalid`, with where and why).
    #[error("schedule_invalid: {0}")]
    Schedule(ScheduleInvalid),
    /// Telegram could not be asked about the target (offline account, FloodWait, a refusal).
    #[error(transparent)]
    Telegram(MonitorError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MonitorError> for ScheduleError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::Store(s) => ScheduleError::Store(s),
            other => ScheduleError::Telegram(other),
        }
    }
}

fn refused(code: switchboard_domain::ErrorCode) -> ScheduleError {
    ScheduleError::Store(StoreError::Conflict(code))
}

/// The channels and groups a sender can post to, as Telegram says now: for an account, the
/// chats of its dialogs where it may post (a channel it created or administers with the right
/// to post, a group it is a member of); for a bot, the chat asked about if the bot may post
/// there.
#[async_trait::async_trait]
pub trait PostTargets: Send + Sync + 'static {
    /// The chats `sender` can post to (a bot cannot list its chats: `None` then).
    async fn list(&self, sender: PostSender) -> Result<Option<Vec<PostTarget>>, MonitorError>;
    /// The chat `peer_id` if `sender` can post there, else `None`.
    async fn check(
        &self,
        sender: PostSender,
        peer_id: i64,
    ) -> Result<Option<PostTarget>, MonitorError>;
}

/// A post as the editor sends it (create and update alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostDraft {
    /// Who publishes it.
    pub sender: PostSender,
    /// The chat, Bot-API style id.
    pub target_peer_id: i64,
    /// What.
    pub content: PostContent,
    /// When.
    pub schedule: Schedule,
    /// In which IANA zone.
    pub time_zone: String,
    /// Minutes late a run may still be published (default 15).
    pub grace_minutes: Option<u32>,
    /// Saved without runs.
    pub draft: bool,
    /// Pin and delete-after.
    pub follow_ups: FollowUps,
}

/// One upcoming run of a post (computed from its schedule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpcomingRun {
    /// The post.
    pub post: PostId,
    /// When.
    pub at: Timestamp,
}

/// The autoposting service the web layer calls.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    posts: Arc<dyn ScheduleStore>,
    audit: Arc<dyn Store>,
    events: EventBus,
    targets: Arc<dyn PostTargets>,
    wake: Arc<Notify>,
}

impl Scheduler {
    /// The service over the schedule store, the audit log, the event bus and the target check.
    pub fn new(
        posts: Arc<dyn ScheduleStore>,
        audit: Arc<dyn Store>,
        events: EventBus,
        targets: Arc<dyn PostTargets>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                posts,
                audit,
                events,
                targets,
                wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ScheduleStore> {
        &self.inner.posts
    }

    /// Notified whenever a run or action may have become due earlier than the publisher
    /// thought (a post created or changed, "publish now", an edit or delete): the publisher
    /// waits on it besides its timer.
    pub fn wakeup(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.wake)
    }

    /// Announces a post to its workspace's members (also for the publisher to call).
    pub fn post_changed(&self, post: &ScheduledPost) {
        self.inner.events.publish(
            post.workspace_id,
            Audience::Workspace,
            ServerEvent::PostUpdated { post },
        );
    }

    /// Announces a run to its workspace's members (also for the publisher to call).
    pub fn run_changed(&self, run: &PostRun) {
        self.inner.events.publish(
            run.workspace_id,
            Audience::Workspace,
            ServerEvent::PostRunUpdated { run },
        );
    }

    async fn audit(&self, viewer: &Viewer, ip: Option<&str>, action: &str, post: &ScheduledPost) {
        Audit::new(action)
            .workspace(viewer.workspace)
            .actor(viewer.user)
            .target(format!("post:{}", post.id.0))
            .ip(ip)
            .details(serde_json::json!({
                "state": post.state.as_str(),
                "version": post.version,
                "target": post.target.peer_id,
                // A text: audit details are flat values (the API documents them so).
                "schedule": serde_json::to_string(&post.schedule).unwrap_or_default(),
                "time_zone": post.time_zone,
            }))
            .record(&*self.inner.audit)
            .await;
    }

    /// Checks everything but the database: the role, the schedule (with its position), then
    /// the target with Telegram.
    async fn spec(&self, viewer: &Viewer, draft: PostDraft) -> Result<PostSpec, ScheduleError> {
        viewer.check_manage_posts()?;
        if let Err(e) = check_schedule(
            &draft.schedule,
            &draft.time_zone,
            draft.draft,
            Timestamp::now(),
        ) {
            return Err(match e {
                switchboard_domain::schedule::ScheduleRefusal::Invalid(i) => {
                    ScheduleError::Schedule(i)
                }
                other => refused(other.code()),
            });
        }
        let mut spec = PostSpec {
            sender: draft.sender,
            target: PostTarget {
                peer_id: draft.target_peer_id,
                title: String::new(),
                username: None,
                access_hash: None,
            },
            content: draft.content,
            schedule: draft.schedule,
            time_zone: draft.time_zone,
            grace_minutes: draft.grace_minutes.unwrap_or(DEFAULT_GRACE_MINUTES),
            draft: draft.draft,
            follow_ups: draft.follow_ups,
        };
        // Everything the store can refuse without Telegram is refused before asking it.
        switchboard_domain::check_post_spec(&spec, Timestamp::now())?;
        if draft.target_peer_id >= 0 {
            return Err(refused(switchboard_domain::ErrorCode::TargetNotAllowed));
        }
        spec.target = self
            .inner
            .targets
            .check(spec.sender, draft.target_peer_id)
            .await?
            .ok_or_else(|| refused(switchboard_domain::ErrorCode::TargetNotAllowed))?;
        Ok(spec)
    }

    /// Creates a post (`post_forbidden`, `schedule_invalid`, the store's codes, …).
    pub async fn create(
        &self,
        viewer: &Viewer,
        draft: PostDraft,
        ip: Option<&str>,
    ) -> Result<ScheduledPost, ScheduleError> {
        let spec = self.spec(viewer, draft).await?;
        let seed = crate::outbox::random_id();
        let post = self
            .inner
            .posts
            .create_post(viewer, &spec, seed, Timestamp::now())
            .await?;
        self.audit(viewer, ip, "posts.created", &post).await;
        self.post_changed(&post);
        self.inner.wake.notify_one();
        Ok(post)
    }

    /// Replaces a post's settings (any time before it is published).
    pub async fn update(
        &self,
        viewer: &Viewer,
        id: PostId,
        draft: PostDraft,
        ip: Option<&str>,
    ) -> Result<ScheduledPost, ScheduleError> {
        // Another workspace's post is `not_found` before Telegram is asked anything.
        self.inner.posts.get_post(viewer, id).await?;
        let spec = self.spec(viewer, draft).await?;
        let post = self
            .inner
            .posts
            .update_post(viewer, id, &spec, Timestamp::now())
            .await?;
        self.audit(viewer, ip, "posts.updated", &post).await;
        self.post_changed(&post);
        self.inner.wake.notify_one();
        Ok(post)
    }

    /// Cancels a post.
    pub async fn cancel(
        &self,
        viewer: &Viewer,
        id: PostId,
        ip: Option<&str>,
    ) -> Result<ScheduledPost, ScheduleError> {
        let post = self
            .inner
            .posts
            .cancel_post(viewer, id, Timestamp::now())
            .await?;
        self.audit(viewer, ip, "posts.cancelled", &post).await;
        self.post_changed(&post);
        Ok(post)
    }

    /// Deletes a post and its history.
    pub async fn delete(
        &self,
        viewer: &Viewer,
        id: PostId,
        ip: Option<&str>,
    ) -> Result<(), ScheduleError> {
        let post = self.inner.posts.get_post(viewer, id).await?;
        self.inner.posts.delete_post(viewer, id).await?;
        self.audit(viewer, ip, "posts.deleted", &post).await;
        self.inner.events.publish(
            post.workspace_id,
            Audience::Workspace,
            ServerEvent::PostDeleted { id },
        );
        Ok(())
    }

    /// Publishes a post now.
    pub async fn publish_now(
        &self,
        viewer: &Viewer,
        id: PostId,
        ip: Option<&str>,
    ) -> Result<PostRun, ScheduleError> {
        let run = self
            .inner
            .posts
            .publish_now(viewer, id, Timestamp::now())
            .await?;
        let post = self.inner.posts.get_post(viewer, id).await?;
        self.audit(viewer, ip, "posts.published_now", &post).await;
        self.run_changed(&run);
        self.post_changed(&post);
        self.inner.wake.notify_one();
        Ok(run)
    }

    /// One post.
    pub async fn post(&self, viewer: &Viewer, id: PostId) -> Result<ScheduledPost, ScheduleError> {
        Ok(self.inner.posts.get_post(viewer, id).await?)
    }

    /// The workspace's posts.
    pub async fn posts(
        &self,
        viewer: &Viewer,
        filter: &PostFilter,
    ) -> Result<Vec<ScheduledPost>, ScheduleError> {
        Ok(self.inner.posts.list_posts(viewer, filter).await?)
    }

    /// Runs (history), newest first.
    pub async fn runs(
        &self,
        viewer: &Viewer,
        filter: &RunFilter,
    ) -> Result<Vec<PostRun>, ScheduleError> {
        if let Some(post) = filter.post {
            self.inner.posts.get_post(viewer, post).await?;
        }
        Ok(self.inner.posts.list_runs(viewer, filter).await?)
    }

    /// The upcoming runs of every active post within `days` of now, in time order: each post's
    /// waiting run, then the next occurrences of its schedule.
    pub async fn upcoming(
        &self,
        viewer: &Viewer,
        days: u32,
    ) -> Result<(Vec<UpcomingRun>, Vec<ScheduledPost>), ScheduleError> {
        let now = Timestamp::now();
        let until = now.plus(std::time::Duration::from_secs(
            u64::from(days.clamp(1, MAX_UPCOMING_DAYS)) * 86_400,
        ));
        let posts = self
            .inner
            .posts
            .list_posts(viewer, &PostFilter::default())
            .await?;
        let mut runs = Vec::new();
        for post in &posts {
            if post.state != PostState::Active {
                continue;
            }
            let Some(first) = post.next_run_at else {
                continue;
            };
            if first > until {
                continue;
            }
            runs.push(UpcomingRun {
                post: post.id,
                at: first,
            });
            if let Ok(r) = Recurrence::new(&post.schedule, &post.time_zone, now)
                && !r.is_once()
            {
                for at in r.upcoming(first, MAX_UPCOMING) {
                    if at > until {
                        break;
                    }
                    runs.push(UpcomingRun { post: post.id, at });
                }
            }
        }
        runs.sort_by_key(|r| (r.at, r.post));
        runs.truncate(MAX_UPCOMING);
        let shown: Vec<ScheduledPost> = posts
            .into_iter()
            .filter(|p| runs.iter().any(|r| r.post == p.id))
            .collect();
        Ok((runs, shown))
    }

    /// The chats a sender can post to (`None` for a bot: it cannot list its chats).
    pub async fn targets(
        &self,
        viewer: &Viewer,
        sender: PostSender,
        owned: bool,
    ) -> Result<Option<Vec<PostTarget>>, ScheduleError> {
        viewer.check_manage_posts()?;
        if !owned {
            return Err(refused(switchboard_domain::ErrorCode::SenderNotFound));
        }
        Ok(self.inner.targets.list(sender).await?)
    }

    /// A run's follow-up actions.
    pub async fn actions(
        &self,
        viewer: &Viewer,
        run: PostRunId,
    ) -> Result<Vec<PostAction>, ScheduleError> {
        Ok(self.inner.posts.list_actions(viewer, run).await?)
    }

    /// Edits a published run's text now.
    pub async fn edit_published(
        &self,
        viewer: &Viewer,
        run: PostRunId,
        edit: PostEdit,
        ip: Option<&str>,
    ) -> Result<PostAction, ScheduleError> {
        self.published_action(viewer, run, ActionKind::Edit, Some(edit), ip)
            .await
    }

    /// Deletes a published run's messages now.
    pub async fn delete_published(
        &self,
        viewer: &Viewer,
        run: PostRunId,
        ip: Option<&str>,
    ) -> Result<PostAction, ScheduleError> {
        self.published_action(viewer, run, ActionKind::Delete, None, ip)
            .await
    }

    async fn published_action(
        &self,
        viewer: &Viewer,
        run: PostRunId,
        kind: ActionKind,
        edit: Option<PostEdit>,
        ip: Option<&str>,
    ) -> Result<PostAction, ScheduleError> {
        viewer.check_manage_posts()?;
        let r = self.inner.posts.get_run(viewer, run).await?;
        let post = self.inner.posts.get_post(viewer, r.post_id).await?;
        if let Some(e) = &edit {
            check_edit(&post, e)?;
        }
        let now = Timestamp::now();
        let action = self
            .inner
            .posts
            .add_action(viewer, run, kind, edit.as_ref(), now, now)
            .await?;
        Audit::new(&format!("posts.run_{}", kind.as_str()))
            .workspace(viewer.workspace)
            .actor(viewer.user)
            .target(format!("post_run:{}", run.0))
            .ip(ip)
            .record(&*self.inner.audit)
            .await;
        self.inner.wake.notify_one();
        Ok(action)
    }
}

/// The new text of a published post keeps the limits of its kind (text or caption).
fn check_edit(post: &ScheduledPost, edit: &PostEdit) -> Result<(), ScheduleError> {
    let spec = PostSpec {
        sender: post.sender,
        target: post.target.clone(),
        content: PostContent {
            text: edit.text.clone(),
            entities: edit.entities.clone(),
            ..post.content.clone()
        },
        schedule: Schedule::Cron {
            expression: "@daily".into(),
        },
        time_zone: "UTC".into(),
        grace_minutes: DEFAULT_GRACE_MINUTES,
        draft: true,
        follow_ups: FollowUps::default(),
    };
    switchboard_domain::check_post_spec(&spec, Timestamp::now())?;
    Ok(())
}
