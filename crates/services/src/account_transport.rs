//! Sending replies and read receipts through the live client of a personal account (the
//! supervisor's; no other client is ever created for it).

use crate::accounts::AccountSupervisor;
use crate::outbox::{SendFailure, Sent, Transport};
use std::time::Duration;
use switchboard_domain::{Chat, Media, MediaKind, OutboxItem, Timestamp};
use switchboard_files::{FileId, FileStore};
use switchboard_telegram::Error as TgError;
use switchboard_telegram::send::{self, Attachment};

/// How long one send may take before it counts as a failed attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Personal-account transport: the supervisor plus where uploaded files live.
#[derive(Clone)]
pub struct AccountTransport {
    supervisor: AccountSupervisor,
    files: FileStore,
}

impl AccountTransport {
    /// A transport over `supervisor`'s clients; attachments are read from `files`.
    pub fn new(supervisor: AccountSupervisor, files: FileStore) -> Self {
        Self { supervisor, files }
    }

    /// The account's live client (the supervisor's one client), if it is connected.
    pub fn client(
        &self,
        account: switchboard_domain::AccountId,
    ) -> Option<switchboard_telegram::grammers_client::Client> {
        self.supervisor.client(account)
    }

    async fn peer(
        &self,
        chat: &Chat,
    ) -> Result<
        (
            switchboard_telegram::grammers_client::Client,
            switchboard_telegram::grammers_client::session::types::PeerRef,
        ),
        SendFailure,
    > {
        let account = chat.account_id.ok_or_else(|| SendFailure::Permanent {
            code: "not_an_account_chat".into(),
        })?;
        let client = self.live_client(account)?;
        let peer = self.cached_peer(account, chat.peer_id).await?;
        Ok((client, peer))
    }

    /// The account's one live client (the supervisor's); `account_offline`, retried later,
    /// while it has none.
    fn live_client(
        &self,
        account: switchboard_domain::AccountId,
    ) -> Result<switchboard_telegram::grammers_client::Client, SendFailure> {
        self.supervisor
            .client(account)
            .ok_or_else(|| SendFailure::Retry {
                code: "account_offline".into(),
                after: None,
            })
    }

    /// A peer of the account's peer cache, by its Bot-API style id.
    async fn cached_peer(
        &self,
        account: switchboard_domain::AccountId,
        peer_id: i64,
    ) -> Result<switchboard_telegram::grammers_client::session::types::PeerRef, SendFailure> {
        let cached = self
            .supervisor
            .store()
            .get_cached_peer(account, peer_id)
            .await
            .map_err(|_| SendFailure::Retry {
                code: "store_error".into(),
                after: None,
            })?
            .ok_or_else(|| SendFailure::Permanent {
                code: "peer_unknown".into(),
            })?;
        send::peer_ref(&cached).ok_or_else(|| SendFailure::Permanent {
            code: "peer_unknown".into(),
        })
    }

    async fn attachment(
        &self,
        client: &switchboard_telegram::grammers_client::Client,
        media: Option<&Media>,
    ) -> Result<Option<Attachment>, SendFailure> {
        let Some((media, file_id)) = media.and_then(|m| Some((m, m.file_id.as_deref()?))) else {
            return Ok(None);
        };
        let id: FileId = file_id.parse().map_err(|_| SendFailure::Permanent {
            code: "file_missing".into(),
        })?;
        let bytes =
            tokio::fs::read(self.files.path(&id))
                .await
                .map_err(|_| SendFailure::Permanent {
                    code: "file_missing".into(),
                })?;
        let name = media.file_name.as_deref().unwrap_or("file").to_string();
        let file = send::upload(client, &bytes, &name)
            .await
            .map_err(|e| failure(&e))?;
        Ok(Some(Attachment {
            file,
            as_photo: media.kind == MediaKind::Photo,
            mime_type: media
                .mime_type
                .as_deref()
                .unwrap_or("application/octet-stream")
                .to_string(),
            file_name: name,
        }))
    }
}

impl AccountTransport {
    /// The message an earlier attempt of `item` posted, found in the chat's history; if
    /// Telegram's history does not show it, the operator decides.
    async fn already_sent(
        &self,
        client: &switchboard_telegram::grammers_client::Client,
        peer: switchboard_telegram::grammers_client::session::types::PeerRef,
        item: &OutboxItem,
    ) -> Result<Sent, SendFailure> {
        let recent = self
            .supervisor
            .store()
            .list_chat_messages(item.chat.workspace_id, item.chat.id, None, 200)
            .await
            .map_err(|_| SendFailure::Retry {
                code: "store_error".into(),
                after: None,
            })?;
        // Ids other replies of the chat already hold are not this one.
        let taken: Vec<i64> = recent
            .iter()
            .filter(|m| m.author_id.is_some() && m.id != item.message.id)
            .filter_map(|m| m.tg_message_id)
            .collect();
        let since = item.message.sent_at.0 / 1000 - CLOCK_SLACK_SECS;
        let since = i32::try_from(since).unwrap_or(0);
        match send::find_sent(client, peer, &item.message.text, since, &taken).await {
            Ok(Some(sent)) => {
                tracing::info!(outbox_id = %item.id, tg_message_id = sent.id,
                    "a repeated send was already posted; recorded as sent");
                Ok(sent_of(sent))
            }
            Ok(None) => Err(SendFailure::Uncertain),
            Err(e) => Err(failure(&e)),
        }
    }
}

impl AccountTransport {
    /// Sends a text message with entities from `account` through its live client (the
    /// supervisor's one client; `account_offline` when it has none) with `random_id`: to the
    /// account's own Saved Messages (`InputPeerSelf`) when `peer_id` is `None`, else to that
    /// peer (Bot-API style id) from the account's peer cache. A repeat Telegram refuses with
    /// `RANDOM_ID_DUPLICATE` was posted by an earlier attempt: it counts as sent, with the id
    /// found in the chat's recent history (0 when it is not there).
    pub async fn send_text(
        &self,
        account: switchboard_domain::AccountId,
        peer_id: Option<i64>,
        text: &str,
        entities: &[switchboard_domain::Entity],
        random_id: i64,
    ) -> Result<Sent, SendFailure> {
        use switchboard_telegram::grammers_client::session::types::PeerRef;
        let client = self.live_client(account)?;
        let peer = match peer_id {
            None => {
                PeerRef::from(switchboard_telegram::grammers_client::tl::types::InputPeerSelf {})
            }
            Some(peer_id) => self.cached_peer(account, peer_id).await?,
        };
        let sent = timed(send::send(
            &client, peer, text, entities, None, None, random_id,
        ))
        .await?;
        match sent {
            Ok(sent) => Ok(sent_of(sent)),
            Err(TgError::Rpc { name, .. }) if name == "RANDOM_ID_DUPLICATE" => {
                let since =
                    i32::try_from(Timestamp::now().0 / 1000 - LEAD_LOOKBACK_SECS).unwrap_or(0);
                let found = send::find_sent(&client, peer, text, since, &[])
                    .await
                    .ok()
                    .flatten();
                tracing::info!(
                    tg_message_id = found.map(|s| s.id),
                    "a repeated lead message was already posted; recorded as sent"
                );
                Ok(found.map(sent_of).unwrap_or(Sent {
                    tg_message_id: 0,
                    sent_at: Timestamp::now(),
                }))
            }
            Err(e) => Err(failure(&e)),
        }
    }
}

/// How far back a lead message posted by an earlier attempt is looked for.
const LEAD_LOOKBACK_SECS: i64 = 7 * 24 * 3600;

/// How far Telegram's clock may be behind ours when looking for a message sent earlier.
const CLOCK_SLACK_SECS: i64 = 60;

/// `send` within [`SEND_TIMEOUT`]; one that takes longer is retried later (`send_timeout`).
async fn timed<T>(send: impl Future<Output = T>) -> Result<T, SendFailure> {
    tokio::time::timeout(SEND_TIMEOUT, send)
        .await
        .map_err(|_| SendFailure::Retry {
            code: "send_timeout".into(),
            after: None,
        })
}

fn sent_of(sent: send::SentMessage) -> Sent {
    Sent {
        tg_message_id: i64::from(sent.id),
        sent_at: Timestamp(i64::from(sent.date) * 1000),
    }
}

/// Sorts a Telegram error into retry-later or give-up.
pub fn failure(e: &TgError) -> SendFailure {
    match e {
        TgError::FloodWait { seconds } => SendFailure::Retry {
            code: "FLOOD_WAIT".into(),
            after: Some(Duration::from_secs(u64::from(*seconds))),
        },
        TgError::Unreachable(_) | TgError::ClientCrashed | TgError::Store(_) => {
            SendFailure::Retry {
                code: e.code().into(),
                after: None,
            }
        }
        TgError::Rpc { code, name } if *code >= 500 || *code == -503 => SendFailure::Retry {
            code: name.clone(),
            after: None,
        },
        TgError::Rpc { name, .. } => SendFailure::Permanent { code: name.clone() },
        TgError::Unauthorized | TgError::Banned => SendFailure::Retry {
            code: e.code().into(),
            after: None,
        },
        other => SendFailure::Permanent {
            code: other.code().into(),
        },
    }
}

#[async_trait::async_trait]
impl Transport for AccountTransport {
    async fn send(&self, item: &OutboxItem) -> Result<Sent, SendFailure> {
        let (client, peer) = self.peer(&item.chat).await?;
        let attachment = self
            .attachment(&client, item.message.media.as_ref())
            .await?;
        let reply_to = item
            .message
            .reply_to_tg_id
            .and_then(|id| i32::try_from(id).ok());
        let sent = timed(send::send(
            &client,
            peer,
            &item.message.text,
            &item.message.entities,
            reply_to,
            attachment,
            item.random_id,
        ))
        .await?;
        let sent = match sent {
            Ok(sent) => sent,
            // An earlier attempt reached Telegram (its answer was lost, or we crashed).
            Err(TgError::Rpc { name, .. }) if name == "RANDOM_ID_DUPLICATE" => {
                return self.already_sent(&client, peer, item).await;
            }
            Err(e) => return Err(failure(&e)),
        };
        Ok(sent_of(sent))
    }

    async fn mark_read(&self, chat: &Chat, max_tg_id: i64) -> Result<(), SendFailure> {
        let (client, peer) = self.peer(chat).await?;
        let max_id = i32::try_from(max_tg_id).unwrap_or(i32::MAX);
        send::read_history(&client, peer, chat.peer_kind, max_id)
            .await
            .map_err(|e| failure(&e))
    }
}
