//! The Schedule page's server-rendered frame: the upcoming runs (a calendar-like list grouped
//! by day in the viewer's time zone), the posts, the history of runs with their status and the
//! link to the published post, and the editor (sender and target, text, media and album, a
//! preview of how the post will look, link preview and silent, once / daily / weekdays /
//! weekly / cron in a time zone, grace period, pin and delete-after, draft).
//! `assets/schedule.js` fills them from the API and the WebSocket (`post_updated`,
//! `post_deleted`, `post_run_updated`); its strings travel in the page (`data-strings`) in the
//! member's language. Operators see everything read-only: the store refuses their changes.

use crate::AppState;
use maud::{Markup, html};
use switchboard_domain::Locale;
use switchboard_domain::i18n::t;
use switchboard_services::SessionContext;

/// Catalogue keys `schedule.js` looks up at run time.
const SCRIPT_KEYS: &[&str] = &[
    "schedule_no_upcoming",
    "schedule_no_posts",
    "schedule_no_history",
    "schedule_today",
    "schedule_tomorrow",
    "schedule_kind_once",
    "schedule_kind_daily",
    "schedule_kind_weekdays",
    "schedule_kind_weekly",
    "schedule_kind_cron",
    "schedule_state_active",
    "schedule_state_draft",
    "schedule_state_finished",
    "schedule_state_cancelled",
    "schedule_run_scheduled",
    "schedule_run_publishing",
    "schedule_run_published",
    "schedule_run_failed",
    "schedule_run_missed",
    "schedule_run_send_uncertain",
    "schedule_run_cancelled",
    "schedule_open_post",
    "schedule_saved",
    "schedule_delete_confirm",
    "schedule_pick_target",
    "schedule_targets_loading",
    "schedule_uploading",
    "schedule_remove_media",
    "schedule_album",
    "schedule_silent_note",
    "schedule_chars",
    "schedule_error_at",
    "schedule_published_now",
    "schedule_media_only",
];

/// The script's strings, with the text of every error a run's history may show
/// ([`switchboard_domain::RUN_ERROR_CODES`], `run_error_other` for the rest).
fn strings(locale: Locale) -> String {
    let run_errors: Vec<String> = switchboard_domain::RUN_ERROR_CODES
        .iter()
        .map(|c| switchboard_domain::run_error_key(c))
        .chain(["run_error_other".to_string()])
        .collect();
    let keys: Vec<&str> = SCRIPT_KEYS
        .iter()
        .copied()
        .chain(run_errors.iter().map(String::as_str))
        .collect();
    crate::inbox_page::script_strings(&keys, locale)
}

/// Time zones offered first in the picker (any IANA name may be typed).
const ZONES: &[&str] = &[
    "Europe/Moscow",
    "Europe/Kaliningrad",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Vladivostok",
    "Europe/Kyiv",
    "Europe/Minsk",
    "Asia/Almaty",
    "Asia/Tashkent",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
];

/// The Schedule frame for the signed-in member.
pub(crate) async fn schedule(state: &AppState, ctx: &SessionContext, locale: Locale) -> Markup {
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
        div #schedule.schedule data-admin=(admin) data-locale=(locale.code()) data-strings=(strings(locale)) {
            p #schedule-conn.inbox-conn role="status" hidden { (t(locale, "inbox_reconnecting")) }
            div.schedule-cols {
                section.schedule-upcoming aria-labelledby="upcoming-title" {
                    header.leads-head {
                        h2 #upcoming-title { (l("schedule_upcoming")) }
                        @if admin { button #post-new type="button" { (l("schedule_new_post")) } }
                    }
                    p.hint.small #upcoming-zone {}
                    div #upcoming-list.upcoming-list aria-live="polite" {}
                    p #upcoming-empty.hint hidden { (l("schedule_no_upcoming")) }
                    h2 { (l("schedule_posts")) }
                    ul #post-list.task-list {}
                    p #post-list-empty.hint hidden { (l("schedule_no_posts")) }
                }
                div #post-placeholder.card.task-form.post-placeholder {
                    h2 { (l("schedule_editor")) }
                    p.hint { (l(if admin { "schedule_pick_post" } else { "schedule_pick_post_read_only" })) }
                }
                form #post-form.card.task-form hidden autocomplete="off" novalidate {
                    h2 #post-form-title { (l("schedule_editor")) }
                    @if !admin { p.hint { (l("schedule_read_only")) } }
                    fieldset #post-fields disabled[!admin] {
                        div.row {
                            label { (l("schedule_sender"))
                                select #post-sender {
                                    @for a in &accounts {
                                        @let name = format!("{} {}", a.first_name, a.last_name.clone().unwrap_or_default());
                                        option value=(format!("account:{}", a.id.0)) { (name.trim()) @if let Some(u) = &a.username { " (@" (u) ")" } }
                                    }
                                    @for b in &bots {
                                        option value=(format!("bot:{}", b.id.0)) { "@" (b.username) }
                                    }
                                }
                            }
                            label { (l("schedule_target"))
                                select #post-target { option value="" { (l("schedule_pick_target")) } }
                            }
                            label #post-target-peer-wrap hidden { (l("schedule_target_peer"))
                                input #post-target-peer type="number" placeholder="-100…";
                            }
                        }
                        label { (l("schedule_text"))
                            textarea #post-text rows="6" {}
                        }
                        p.hint.small #post-text-count {}
                        div.row {
                            label { (l("schedule_media"))
                                input #post-file type="file" multiple accept="image/*,video/*,audio/*,application/pdf,application/zip,text/plain";
                            }
                        }
                        ul #post-media.post-media {}
                        div.checks {
                            label.check { input #post-link-preview type="checkbox" checked; (l("schedule_link_preview")) }
                            label.check { input #post-silent type="checkbox"; (l("schedule_silent")) }
                            label.check { input #post-draft type="checkbox"; (l("schedule_draft")) }
                        }
                        div.row {
                            label { (l("schedule_when"))
                                select #post-kind {
                                    option value="once" { (l("schedule_kind_once")) }
                                    option value="daily" { (l("schedule_kind_daily")) }
                                    option value="weekdays" { (l("schedule_kind_weekdays")) }
                                    option value="weekly" { (l("schedule_kind_weekly")) }
                                    option value="cron" { (l("schedule_kind_cron")) }
                                }
                            }
                            label #post-at-wrap { (l("schedule_at"))
                                input #post-at type="datetime-local";
                            }
                            label #post-time-wrap hidden { (l("schedule_time"))
                                input #post-time type="time" value="09:00";
                            }
                            label #post-weekday-wrap hidden { (l("schedule_weekday"))
                                select #post-weekday {
                                    @for (n, key) in [(1, "weekday_1"), (2, "weekday_2"), (3, "weekday_3"), (4, "weekday_4"), (5, "weekday_5"), (6, "weekday_6"), (7, "weekday_7")] {
                                        option value=(n) { (l(key)) }
                                    }
                                }
                            }
                            label #post-cron-wrap hidden { (l("schedule_cron"))
                                input #post-cron type="text" spellcheck="false" placeholder="0 9 * * 1-5";
                            }
                            label { (l("schedule_zone"))
                                input #post-zone type="text" list="zone-list" spellcheck="false";
                                datalist #zone-list { @for z in ZONES { option value=(z) {} } }
                            }
                        }
                        p.hint.small { (l("schedule_when_hint")) }
                        div.row {
                            label { (l("schedule_grace"))
                                input #post-grace type="number" min="0" max="1440" value="15";
                            }
                            label { (l("schedule_pin_hours"))
                                input #post-pin type="number" min="1" max="744" placeholder="—";
                            }
                            label { (l("schedule_delete_after"))
                                input #post-delete-after type="number" min="1" max="744" placeholder="—";
                            }
                        }
                    }
                    h3 { (l("schedule_preview")) }
                    div #post-preview.post-preview aria-live="polite" {}
                    p #post-error.error role="alert" hidden {}
                    p #post-status.ok role="status" hidden {}
                    div.actions {
                        @if admin {
                            button #post-save type="submit" { (l("schedule_save")) }
                            button #post-publish.secondary type="button" hidden { (l("schedule_publish_now")) }
                            button #post-cancel-post.secondary type="button" hidden { (l("schedule_cancel_post")) }
                            button #post-delete.danger type="button" hidden { (l("schedule_delete")) }
                        }
                        button #post-close.secondary type="button" { (l("schedule_close")) }
                    }
                }
            }
            section.schedule-history aria-labelledby="history-title" {
                h2 #history-title { (l("schedule_history")) }
                table.history {
                    thead { tr {
                        th { (l("schedule_col_due")) } th { (l("schedule_col_post")) }
                        th { (l("schedule_col_status")) } th { (l("schedule_col_link")) }
                    } }
                    tbody #history-list {}
                }
                p #history-empty.hint hidden { (l("schedule_no_history")) }
            }
        }
        script src="/assets/schedule.js" defer {}
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
        assert_eq!(ru["schedule_today"], "Сегодня");
    }

    #[test]
    fn every_run_error_travels_with_the_page_in_both_languages() {
        for locale in [Locale::En, Locale::Ru] {
            let strings: serde_json::Value = serde_json::from_str(&strings(locale)).unwrap();
            for code in switchboard_domain::RUN_ERROR_CODES {
                let key = switchboard_domain::run_error_key(code);
                assert_eq!(strings[&key], t(locale, &key), "{code} in {locale:?}");
            }
            assert_eq!(strings["run_error_other"], t(locale, "run_error_other"));
        }
        let ru: serde_json::Value = serde_json::from_str(&strings(Locale::Ru)).unwrap();
        assert_eq!(
            ru["run_error_chat_admin_required"],
            "Отправитель не администратор с правом публикации в этом канале."
        );
    }
}
