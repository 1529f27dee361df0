//! The Leads page's server-rendered frame: the task list, the task form (query with the "try
//! it" box, sources with their states, reading account, delivery, flags) and the lead list with
//! its filters. `assets/leads.js` fills them from the API and the WebSocket (`lead_found`,
//! `source_updated`); its strings travel in the page (`data-strings`) in the member's language.
//! Operators see everything read-only: the store refuses their changes anyway.

use crate::AppState;
use maud::{Markup, html};
use switchboard_domain::Locale;
use switchboard_domain::i18n::t;
use switchboard_services::SessionContext;

/// Catalogue keys `leads.js` looks up at run time.
const SCRIPT_KEYS: &[&str] = &[
    "leads_no_tasks",
    "leads_task_active",
    "leads_task_paused",
    "leads_query_error_at",
    "leads_try_none",
    "leads_try_found",
    "leads_try_save_first",
    "leads_pick_chat",
    "leads_source_resolving",
    "leads_source_joined",
    "leads_source_polled",
    "leads_source_flood_wait",
    "leads_source_failed",
    "leads_source_left",
    "leads_delete_confirm",
    "leads_pause",
    "leads_resume",
    "leads_saved",
    "leads_filter_any_source",
    "leads_none",
    "leads_mark_read",
    "leads_mark_unread",
    "leads_write",
    "leads_open_post",
    "leads_new_lead",
    "leads_unknown_author",
    "leads_loading",
    "leads_new_task",
    "leads_source_retry",
];

fn strings(locale: Locale) -> String {
    crate::inbox_page::script_strings(SCRIPT_KEYS, locale)
}

/// The Leads frame for the signed-in member.
pub(crate) async fn leads(state: &AppState, ctx: &SessionContext, locale: Locale) -> Markup {
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
    let l = |key: &'static str| t(locale, key);
    html! {
        div #leads.leads data-admin=(admin) data-locale=(locale.code()) data-strings=(strings(locale)) {
            section.leads-tasks aria-labelledby="leads-tasks-title" {
                header.leads-head {
                    h2 #leads-tasks-title { (l("leads_tasks")) }
                    @if admin { button #task-new type="button" { (l("leads_new_task")) } }
                }
                ul #task-list.task-list {}
                p #task-list-empty.hint hidden { (l("leads_no_tasks")) }
            }
            form #task-form.card.task-form hidden autocomplete="off" novalidate {
                h2 { (l("leads_task_form")) }
                @if !admin { p.hint { (l("leads_read_only")) } }
                fieldset #task-fields disabled[!admin] {
                    label { (l("leads_name")) input #task-name name="name" maxlength="100" required; }
                    label { (l("leads_query"))
                        textarea #task-query name="query" rows="2" spellcheck="false" {}
                    }
                    p.hint.small { (l("leads_query_hint")) }
                    p #task-query-error.error role="alert" hidden {}
                    label { (l("leads_sources"))
                        textarea #task-sources name="sources" rows="3" spellcheck="false" {}
                    }
                    p.hint.small { (l("leads_sources_hint")) }
                    label.sr-only for="task-pick" { (l("leads_pick_chat")) }
                    select #task-pick { option value="" { (l("leads_pick_chat")) } }
                    ul #task-source-states.source-states {}
                    label { (l("leads_account"))
                        select #task-account name="account_id" {
                            @for a in &accounts {
                                @let name = format!("{} {}", a.first_name, a.last_name.clone().unwrap_or_default());
                                option value=(a.id.0) { (name.trim()) @if let Some(u) = &a.username { " (@" (u) ")" } }
                            }
                        }
                    }
                    div.row {
                        label { (l("leads_target"))
                            select #task-target {
                                option value="saved_messages" { (l("leads_target_saved")) }
                                option value="chat" { (l("leads_target_chat")) }
                                option value="bot" { (l("leads_target_bot")) }
                            }
                        }
                        label #task-target-chat-wrap hidden { (l("leads_target_chat_id"))
                            select #task-target-chat {}
                        }
                        label #task-target-bot-wrap hidden { (l("leads_target_bot_id"))
                            select #task-target-bot {
                                @for b in &bots { option value=(b.id.0) { "@" (b.username) } }
                            }
                        }
                        label #task-target-peer-wrap hidden { (l("leads_target_peer"))
                            input #task-target-peer type="number";
                        }
                    }
                    div.row {
                        label { (l("leads_mode"))
                            select #task-mode {
                                option value="instant" { (l("leads_mode_instant")) }
                                option value="digest" { (l("leads_mode_digest")) }
                            }
                        }
                        label #task-digest-wrap hidden { (l("leads_digest_minutes"))
                            input #task-digest type="number" min="1" max="1440" value="60";
                        }
                        label { (l("leads_cap"))
                            input #task-cap type="number" min="1" max="600" value="10";
                        }
                    }
                    div.checks {
                        label.check { input #task-ignore-forwards type="checkbox"; (l("leads_ignore_forwards")) }
                        label.check { input #task-join type="checkbox" checked; (l("leads_join_allowed")) }
                        label.check { input #task-leave type="checkbox"; (l("leads_leave_unused")) }
                        label.check { input #task-active type="checkbox" checked; (l("leads_active")) }
                    }
                }
                div.try-box {
                    button #try-run.secondary type="button" { (l("leads_try")) }
                    span.hint.small { (l("leads_try_hint")) }
                    div #try-results.try-results aria-live="polite" {}
                }
                p #task-error.error role="alert" hidden {}
                p #task-status.ok role="status" hidden {}
                div.actions {
                    @if admin {
                        button #task-save type="submit" { (l("leads_save")) }
                        button #task-delete.danger type="button" hidden { (l("leads_delete")) }
                    }
                    button #task-close.secondary type="button" { (l("leads_cancel")) }
                }
            }
            section.leads-list aria-labelledby="leads-list-title" {
                header.leads-head {
                    h2 #leads-list-title { (l("leads_list")) }
                    a #leads-export href="/api/v1/leads/export.csv" download { (l("leads_export")) }
                }
                div.leads-filters {
                    label { (l("leads_filter_task")) select #lf-task { option value="" { (l("leads_filter_any_task")) } } }
                    label { (l("leads_filter_source")) select #lf-source { option value="" { (l("leads_filter_any_source")) } } }
                    label { (l("leads_filter_from")) input #lf-from type="date"; }
                    label { (l("leads_filter_to")) input #lf-to type="date"; }
                    label { (l("leads_filter_read"))
                        select #lf-read {
                            option value="" { (l("leads_filter_all")) }
                            option value="false" { (l("leads_filter_unread")) }
                            option value="true" { (l("leads_filter_read_only")) }
                        }
                    }
                    label.grow { (l("leads_search")) input #lf-q type="search" placeholder=(l("leads_search_placeholder")); }
                    button #lf-read-all.secondary type="button" { (l("leads_mark_all_read")) }
                }
                p #leads-conn.inbox-conn role="status" hidden { (t(locale, "inbox_reconnecting")) }
                ul #lead-list.lead-list aria-live="polite" {}
                p #lead-list-empty.hint hidden { (l("leads_none")) }
                button #leads-more.secondary type="button" hidden { (l("leads_more")) }
            }
        }
        script src="/assets/leads.js" defer {}
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
        assert_eq!(ru["leads_write"], "Написать автору");
    }
}
