//! The Inbox page's server-rendered frame: the chat list with its filters, the chat view and
//! the composer. `assets/inbox.js` fills them from the API and the WebSocket; the strings it
//! needs travel in the page (`data-strings`), in the member's language, from the one catalogue.

use crate::AppState;
use maud::{Markup, html};
use std::collections::BTreeMap;
use switchboard_domain::Locale;
use switchboard_domain::i18n::t;
use switchboard_services::SessionContext;

/// Catalogue keys `inbox.js` looks up at run time.
const SCRIPT_KEYS: &[&str] = &[
    "inbox_no_chats",
    "inbox_pick_chat",
    "inbox_loading",
    "inbox_load_older",
    "inbox_unread",
    "inbox_assignee_none",
    "inbox_take",
    "inbox_hand_back",
    "inbox_online",
    "inbox_offline",
    "inbox_edited",
    "inbox_edit_history",
    "inbox_no_history",
    "inbox_deleted",
    "inbox_msg_queued",
    "inbox_msg_sending",
    "inbox_msg_sent",
    "inbox_msg_failed",
    "inbox_retry",
    "inbox_msg_uncertain",
    "inbox_send_again",
    "inbox_mark_sent",
    "send_uncertain",
    "inbox_reply",
    "inbox_replying_to",
    "inbox_reply_unknown",
    "inbox_uploading",
    "inbox_remove_attachment",
    "inbox_media_missing",
    "inbox_download",
    "inbox_reconnecting",
    "inbox_source_account",
    "inbox_source_bot",
    "inbox_you",
    "inbox_spoiler",
    "inbox_chat_removed",
    "inbox_close",
    "inbox_open_chats",
    "inbox_media_photo",
    "inbox_media_video",
    "inbox_media_video_note",
    "inbox_media_animation",
    "inbox_media_voice",
    "inbox_media_audio",
    "inbox_media_document",
    "inbox_media_sticker",
    "inbox_media_location",
    "inbox_media_live_location",
    "inbox_media_venue",
    "inbox_media_contact",
    "inbox_media_poll",
    "inbox_media_dice",
    "inbox_media_other",
    "inbox_status_open",
    "inbox_status_pending",
    "inbox_status_resolved",
];

const STATUSES: [&str; 3] = ["open", "pending", "resolved"];

fn strings(locale: Locale) -> String {
    script_strings(SCRIPT_KEYS, locale)
}

/// The catalogue texts of `keys` in `locale`, as the JSON object a page script reads from its
/// `data-strings` attribute.
pub(crate) fn script_strings(keys: &[&str], locale: Locale) -> String {
    let map: BTreeMap<&str, &str> = keys.iter().map(|k| (*k, t(locale, k))).collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// The inbox frame for the signed-in member.
pub(crate) async fn inbox(state: &AppState, ctx: &SessionContext, locale: Locale) -> Markup {
    let ws = ctx.membership.workspace_id;
    let accounts = state
        .account_store()
        .list_accounts(ws)
        .await
        .unwrap_or_default();
    let bots = state
        .inbox()
        .store()
        .list_bots(ws)
        .await
        .unwrap_or_default();
    let admin = ctx.membership.role.is_admin();
    html! {
        div #inbox.inbox data-user=(ctx.user.id.0) data-admin=(admin) data-locale=(locale.code())
            data-strings=(strings(locale)) {
            section.inbox-list aria-labelledby="inbox-chats-title" {
                h2 #inbox-chats-title.sr-only { (t(locale, "inbox_chats")) }
                div.inbox-filters {
                    div.seg role="group" aria-label=(t(locale, "inbox_filter_assignee")) {
                        @for (value, key) in [("all", "inbox_filter_all"), ("mine", "inbox_filter_mine"), ("unassigned", "inbox_filter_unassigned")] {
                            button type="button" data-assignee=(value) aria-pressed=(value == "all") { (t(locale, key)) }
                        }
                    }
                    label.sr-only for="filter-status" { (t(locale, "inbox_filter_status")) }
                    select #filter-status {
                        option value="" { (t(locale, "inbox_filter_any_status")) }
                        @for s in STATUSES { option value=(s) { (t(locale, &format!("inbox_status_{s}"))) } }
                    }
                    label.sr-only for="filter-source" { (t(locale, "inbox_filter_source")) }
                    select #filter-source {
                        option value="" { (t(locale, "inbox_filter_any_source")) }
                        @for a in &accounts {
                            @let name = format!("{} {}", a.first_name, a.last_name.clone().unwrap_or_default());
                            option value=(format!("account:{}", a.id.0)) data-label=(name.trim()) { (name.trim()) }
                        }
                        @for b in &bots {
                            option value=(format!("bot:{}", b.id.0)) data-label=(format!("@{}", b.username)) { "@" (b.username) }
                        }
                    }
                }
                p #inbox-conn.inbox-conn role="status" hidden { (t(locale, "inbox_reconnecting")) }
                ul #chat-list.chat-list aria-label=(t(locale, "inbox_chats")) {}
                p #chat-list-empty.hint hidden { (t(locale, "inbox_no_chats")) }
                div #chat-list-more.hint hidden { (t(locale, "inbox_loading")) }
                details.team-presence {
                    summary { (t(locale, "inbox_operators")) }
                    ul #team-list {}
                }
            }
            section #chat-view.inbox-chat aria-labelledby="chat-title" {
                p #chat-placeholder.hint { (t(locale, "inbox_pick_chat")) }
                div #chat-pane hidden {
                    header.chat-head {
                        div.chat-ident {
                            h2 #chat-title {}
                            span #chat-sub.hint {}
                        }
                        div.chat-controls {
                            label { (t(locale, "inbox_filter_status"))
                                select #chat-status {
                                    @for s in STATUSES { option value=(s) { (t(locale, &format!("inbox_status_{s}"))) } }
                                }
                            }
                            div #chat-assign.assign {}
                        }
                    }
                    div #messages.messages role="log" aria-live="polite" aria-label=(t(locale, "inbox_messages")) tabindex="0" {}
                    p #chat-error.error role="alert" hidden {}
                    form #composer.composer {
                        div #composer-reply.composer-reply hidden {}
                        div #composer-attachment.composer-attachment hidden {}
                        div.composer-row {
                            label.attach title=(t(locale, "inbox_attach")) {
                                span aria-hidden="true" { "📎" }
                                span.sr-only { (t(locale, "inbox_attach")) }
                                input #composer-file type="file";
                            }
                            label.sr-only for="composer-text" { (t(locale, "inbox_message_label")) }
                            textarea #composer-text rows="2" placeholder=(t(locale, "inbox_composer_placeholder")) {}
                            button #composer-send type="submit" { (t(locale, "inbox_send")) }
                        }
                    }
                }
            }
        }
        script src="/assets/inbox.js" defer {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_script_string_is_in_the_catalogue() {
        for key in SCRIPT_KEYS {
            assert!(switchboard_domain::i18n::has(key), "{key} is missing");
        }
        let ru: serde_json::Value = serde_json::from_str(&strings(Locale::Ru)).unwrap();
        assert_eq!(ru["inbox_take"], "Взять себе");
    }
}
