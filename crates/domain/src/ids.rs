//! Newtype identifiers, so that a user id can never be passed where a workspace id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant.
    WorkspaceId
);
id_type!(
    /// A person who signs in to the web app.
    UserId
);
id_type!(
    /// A signed-in browser session.
    WebSessionId
);
id_type!(
    /// An entry of the append-only audit log.
    AuditEventId
);
id_type!(
    /// A personal Telegram account.
    AccountId
);
id_type!(
    /// A conversation in the inbox.
    ChatId
);
id_type!(
    /// A stored message.
    MessageId
);
id_type!(
    /// A Telegram bot connected through the Bot API.
    BotId
);
id_type!(
    /// An item of the durable outbox (one outbound message to send).
    OutboxId
);
