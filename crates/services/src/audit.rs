//! Writing audit events. Failing to audit never fails the action itself, but is logged.

use switchboard_domain::{NewAuditEvent, Store, Timestamp, UserId, WorkspaceId};

/// One audit record to append; build with [`Audit::new`] and the setters.
#[derive(Debug, Clone)]
pub struct Audit {
    event: NewAuditEvent,
}

impl Audit {
    /// An event named `action` (e.g. `auth.login_succeeded`).
    pub fn new(action: &str) -> Self {
        Self {
            event: NewAuditEvent {
                workspace_id: None,
                actor_user_id: None,
                action: action.to_string(),
                target: None,
                ip: None,
                details: serde_json::json!({}),
                created_at: Timestamp::now(),
            },
        }
    }

    /// The workspace concerned.
    pub fn workspace(mut self, id: WorkspaceId) -> Self {
        self.event.workspace_id = Some(id);
        self
    }

    /// Who did it.
    pub fn actor(mut self, id: UserId) -> Self {
        self.event.actor_user_id = Some(id);
        self
    }

    /// What it was done to.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.event.target = Some(target.into());
        self
    }

    /// The client address.
    pub fn ip(mut self, ip: Option<&str>) -> Self {
        self.event.ip = ip.map(str::to_string);
        self
    }

    /// Extra facts; never pass secrets.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.event.details = details;
        self
    }

    /// The event, to append in the same transaction as what it records.
    pub fn into_event(self) -> NewAuditEvent {
        self.event
    }

    /// Appends the event.
    pub async fn record(self, store: &dyn Store) {
        if let Err(e) = store.append_audit(&self.event).await {
            tracing::error!(action = %self.event.action, error = %e, "could not write audit event");
        }
    }
}
