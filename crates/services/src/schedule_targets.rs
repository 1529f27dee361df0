//! Where a sender can post, asked from Telegram: a personal account's channels and groups from
//! its dialogs, through its one supervised client (`messages.getDialogs`: a channel it created
//! or administers with the right to post, a group it may write in); a bot's chat with the Bot
//! API (`getChat`, then `getChatMember` of the bot itself: a channel's creator or an
//! administrator with `can_post_messages`, a group's member). A bot cannot list its chats.

use crate::accounts::AccountSupervisor;
use crate::bots::{BotError, BotService};
use crate::monitor::MonitorError;
use crate::schedule::PostTargets;
use switchboard_domain::{PostSender, PostTarget, StoreError};
use switchboard_telegram::botapi::BotApiError;
use switchboard_telegram::channels;

/// Most dialogs read for an account's targets (five pages).
const DIALOGS: usize = 500;

/// [`PostTargets`] through the accounts' live clients and the bots' Bot API.
#[derive(Clone)]
pub struct TelegramTargets {
    accounts: AccountSupervisor,
    bots: BotService,
}

impl TelegramTargets {
    /// Over the account supervisor and the bot service.
    pub fn new(accounts: AccountSupervisor, bots: BotService) -> Self {
        Self { accounts, bots }
    }
}

fn bot_error(e: BotError) -> MonitorError {
    match e {
        BotError::Store(s) => MonitorError::Store(s),
        BotError::NotFound => MonitorError::Store(StoreError::NotFound),
        BotError::Telegram(BotApiError::RetryAfter(s)) => MonitorError::FloodWait {
            seconds: u32::try_from(s).unwrap_or(u32::MAX),
        },
        other => MonitorError::Telegram(other.code().to_string()),
    }
}

#[async_trait::async_trait]
impl PostTargets for TelegramTargets {
    async fn list(&self, sender: PostSender) -> Result<Option<Vec<PostTarget>>, MonitorError> {
        let PostSender::Account { account } = sender else {
            return Ok(None);
        };
        let client = self
            .accounts
            .client(account)
            .ok_or(MonitorError::AccountOffline)?;
        let chats = channels::chat_dialogs(&client, DIALOGS).await?;
        Ok(Some(
            chats
                .into_iter()
                .filter(|c| c.can_post)
                .map(|c| PostTarget {
                    peer_id: c.peer_id,
                    title: c.title,
                    username: c.username,
                    access_hash: c.access_hash,
                })
                .collect(),
        ))
    }

    async fn check(
        &self,
        sender: PostSender,
        peer_id: i64,
    ) -> Result<Option<PostTarget>, MonitorError> {
        match sender {
            PostSender::Account { .. } => Ok(self
                .list(sender)
                .await?
                .unwrap_or_default()
                .into_iter()
                .find(|t| t.peer_id == peer_id)),
            PostSender::Bot { bot } => {
                let (api, info) = self.bots.api_of(bot).await.map_err(bot_error)?;
                let chat = match api.get_chat(peer_id).await {
                    Ok(c) => c,
                    Err(BotApiError::ChatNotFound | BotApiError::Forbidden(_)) => return Ok(None),
                    Err(e) => return Err(bot_error(BotError::Telegram(e))),
                };
                if chat.kind == "private" {
                    return Ok(None);
                }
                let member = match api.get_chat_member(peer_id, info.telegram_bot_id).await {
                    Ok(m) => m,
                    Err(BotApiError::ChatNotFound | BotApiError::Forbidden(_)) => return Ok(None),
                    Err(e) => return Err(bot_error(BotError::Telegram(e))),
                };
                Ok(member.can_post(&chat.kind).then(|| PostTarget {
                    peer_id,
                    title: chat.title,
                    username: chat.username,
                    access_hash: None,
                }))
            }
        }
    }
}
