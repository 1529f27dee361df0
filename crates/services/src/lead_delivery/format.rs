//! The text of lead messages (pure): one lead ("instant"), a digest of several, and the splitter
//! that keeps every message within Telegram's limit of [`MESSAGE_LIMIT`] UTF-16 code units,
//! cutting only between leads (or, for a block that cannot fit, between words) and never inside
//! a formatting entity. Entities are Bot-API style (`offset`/`length` in UTF-16 code units), the
//! form both the MTProto and the Bot API senders take.

use std::ops::Range;
use switchboard_domain::{Entity, EntityKind, Lead, Locale};

/// Telegram's longest message text, in UTF-16 code units.
pub const MESSAGE_LIMIT: usize = 4096;
/// Longest snippet shown in a message, in characters (the rest is cut with `…`).
pub const SNIPPET_CHARS: usize = 1000;
/// Longest task name, source title or author name shown, in characters.
const NAME_CHARS: usize = 120;

/// A message to send: text and its entities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// Formatting (UTF-16 offsets), sorted by offset.
    pub entities: Vec<Entity>,
}

impl Rendered {
    /// Length in UTF-16 code units.
    pub fn units(&self) -> usize {
        utf16_len(&self.text)
    }
}

/// What a lead message says about the lead's source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLabel {
    /// The channel's or chat's title (or what the user typed).
    pub title: String,
    /// A public link to it (`https://t.me/name`), when it has one.
    pub link: Option<String>,
}

/// Everything a message about one lead shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadView<'a> {
    /// The lead.
    pub lead: &'a Lead,
    /// Its source.
    pub source: SourceLabel,
}

/// The words of a message, in the owner's language.
struct Words {
    source: &'static str,
    author: &'static str,
    open: &'static str,
    digest: &'static str,
    leads: &'static str,
}

fn words(locale: Locale) -> Words {
    match locale {
        Locale::Ru => Words {
            source: "Источник",
            author: "Автор",
            open: "Открыть пост",
            digest: "дайджест",
            leads: "лидов",
        },
        Locale::En => Words {
            source: "Source",
            author: "Author",
            open: "Open the post",
            digest: "digest",
            leads: "leads",
        },
    }
}

/// UTF-16 length of a string.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Text with entities, built piece by piece.
#[derive(Default)]
struct Builder {
    out: Rendered,
    units: usize,
}

impl Builder {
    fn push(&mut self, s: &str) {
        self.out.text.push_str(s);
        self.units += utf16_len(s);
    }

    fn styled(&mut self, s: &str, kind: EntityKind, url: Option<&str>) {
        let start = self.units;
        self.push(s);
        let len = self.units - start;
        if len > 0 {
            let mut e = Entity::new(kind, to_i32(start), to_i32(len));
            e.url = url.map(str::to_string);
            self.out.entities.push(e);
        }
    }

    /// `text` with the byte ranges `bold` in bold.
    fn highlighted(&mut self, text: &str, bold: &[Range<usize>]) {
        let mut at = 0;
        for r in bold {
            if r.start < at || r.end > text.len() || r.start >= r.end {
                continue;
            }
            self.push(&text[at..r.start]);
            self.styled(&text[r.clone()], EntityKind::Bold, None);
            at = r.end;
        }
        self.push(&text[at..]);
    }

    fn append(&mut self, other: &Rendered) {
        let base = self.units;
        self.push(&other.text);
        for e in &other.entities {
            let mut e = e.clone();
            e.offset += to_i32(base);
            self.out.entities.push(e);
        }
    }

    fn finish(self) -> Rendered {
        self.out
    }
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// At most `max` characters of `s` (trimmed), with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}…", s[..cut].trim_end()),
    }
}

/// The author line's text: `Name (@username)`, either alone, or `None`.
fn author_of(lead: &Lead) -> Option<String> {
    let name = lead
        .author
        .name
        .as_deref()
        .map(|n| clip(n, NAME_CHARS))
        .filter(|n| !n.is_empty());
    let user = lead
        .author
        .username
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| format!("@{u}"));
    match (name, user) {
        (Some(n), Some(u)) => Some(format!("{n} ({u})")),
        (Some(n), None) => Some(n),
        (None, Some(u)) => Some(u),
        (None, None) => None,
    }
}

/// Where the matched terms are in `snippet` (byte ranges, sorted, merged): each term label
/// (`word`, `!word`, `"a b"`, `[a b]`) is found again with the matching engine, so a word
/// matches in every form exactly as it did in the post. Regex terms are not highlighted.
pub fn term_ranges(snippet: &str, terms: &[String]) -> Vec<Range<usize>> {
    use switchboard_leads::{Matcher, Query, TaskSpec};
    let specs: Vec<TaskSpec<usize>> = terms
        .iter()
        .enumerate()
        .filter_map(|(id, t)| {
            Query::parse(t).ok().map(|query| TaskSpec {
                id,
                query,
                ignore_forwards: false,
            })
        })
        .collect();
    if specs.is_empty() {
        return Vec::new();
    }
    let Ok(matcher) = Matcher::build(specs) else {
        return Vec::new();
    };
    let mut ranges: Vec<Range<usize>> = matcher
        .match_post(snippet)
        .into_iter()
        .flat_map(|m| m.spans.into_iter().map(|s| s.range))
        .collect();
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// The body of one lead: source, author, snippet (terms in bold) and the link to the post.
fn lead_block(view: &LeadView<'_>, w: &Words, numbered: Option<usize>) -> Rendered {
    let lead = view.lead;
    let mut b = Builder::default();
    if let Some(n) = numbered {
        b.styled(&format!("{n}."), EntityKind::Bold, None);
        b.push(" ");
    } else {
        b.push(w.source);
        b.push(": ");
    }
    let title = clip(&view.source.title, NAME_CHARS);
    match &view.source.link {
        Some(link) if !title.is_empty() => b.styled(&title, EntityKind::TextLink, Some(link)),
        _ => b.push(&title),
    }
    b.push("\n");
    if let Some(author) = author_of(lead) {
        b.push(w.author);
        b.push(": ");
        b.push(&author);
        b.push("\n");
    }
    let snippet = clip(&lead.snippet, SNIPPET_CHARS);
    let bold = term_ranges(&snippet, &lead.terms);
    b.highlighted(&snippet, &bold);
    if let Some(link) = lead.link.as_deref().filter(|l| !l.is_empty()) {
        b.push("\n");
        b.styled(&format!("→ {}", w.open), EntityKind::TextLink, Some(link));
    }
    b.finish()
}

/// The message of one lead found by an instant task.
pub fn instant(task_name: &str, view: &LeadView<'_>, locale: Locale) -> Rendered {
    let w = words(locale);
    let mut b = Builder::default();
    b.push("🔔 ");
    b.styled(&clip(task_name, NAME_CHARS), EntityKind::Bold, None);
    b.push("\n");
    b.append(&lead_block(view, &w, None));
    b.finish()
}

/// The header of a digest of `count` leads.
fn digest_header(task_name: &str, count: usize, w: &Words) -> Rendered {
    let mut b = Builder::default();
    b.push("📋 ");
    b.styled(&clip(task_name, NAME_CHARS), EntityKind::Bold, None);
    b.push(&format!(" — {}, {}: {count}", w.digest, w.leads));
    b.finish()
}

/// Separator between the blocks of a digest (and the only place it is split).
const BLOCK_BREAK: &str = "\n\n";

/// One digest message with every lead of `views`, numbered, separated by blank lines. It may
/// be longer than [`MESSAGE_LIMIT`]: [`split`] cuts it between leads.
pub fn digest(task_name: &str, views: &[LeadView<'_>], locale: Locale) -> Rendered {
    let w = words(locale);
    let mut b = Builder::default();
    b.append(&digest_header(task_name, views.len(), &w));
    for (i, view) in views.iter().enumerate() {
        b.push(BLOCK_BREAK);
        b.append(&lead_block(view, &w, Some(i + 1)));
    }
    b.finish()
}

/// How many of `views` (taken in order, at least one) fit in one digest message of at most
/// `limit` UTF-16 code units: how a digest is cut into messages before they are queued.
pub fn digest_fit(task_name: &str, views: &[LeadView<'_>], locale: Locale, limit: usize) -> usize {
    let w = words(locale);
    // The header with the largest count it may show, so the real one never outgrows it.
    let mut units = digest_header(task_name, views.len().max(1), &w).units();
    let mut fit = 0;
    for (i, view) in views.iter().enumerate() {
        let block = lead_block(view, &w, Some(i + 1)).units() + utf16_len(BLOCK_BREAK);
        if fit > 0 && units + block > limit {
            break;
        }
        units += block;
        fit += 1;
    }
    fit.max(1).min(views.len().max(1))
}

/// Cuts a message into parts of at most `limit` UTF-16 code units. A cut is made, in this
/// order of preference, after a blank line (between the leads of a digest), after a line
/// break, after a space, or anywhere between characters — and never inside an entity unless
/// one entity alone is longer than `limit` (then it is split in two, each part keeping the
/// formatting). A surrogate pair (an emoji) is never cut. Whitespace at the edge of a part is
/// dropped; entities are moved to the part they are in.
pub fn split(msg: &Rendered, limit: usize) -> Vec<Rendered> {
    let limit = limit.max(2);
    // UTF-16 offset of every char boundary, and the char there.
    let mut bounds: Vec<(usize, usize)> = Vec::new(); // (utf16 offset, byte offset)
    let mut u = 0;
    for (i, c) in msg.text.char_indices() {
        bounds.push((u, i));
        u += c.len_utf16();
    }
    let total = u;
    bounds.push((total, msg.text.len()));
    let inside_entity = |at: usize| {
        msg.entities.iter().any(|e| {
            let (s, l) = (e.offset.max(0) as usize, e.length.max(0) as usize);
            s < at && at < s + l
        })
    };
    let byte_at = |unit: usize| -> usize {
        let i = bounds.partition_point(|(u, _)| *u < unit);
        bounds.get(i).map_or(msg.text.len(), |b| b.1)
    };
    let mut parts = Vec::new();
    let mut start = 0;
    while start < total {
        let end = if total - start <= limit {
            total
        } else {
            let max = start + limit;
            // Candidate boundaries in (start, max], best kind first, the latest of that kind.
            let candidates = |pred: &dyn Fn(usize, usize) -> bool| {
                bounds
                    .iter()
                    .rev()
                    .filter(|(u, b)| *u > start && *u <= max && pred(*u, *b))
                    .map(|(u, _)| *u)
                    .find(|u| !inside_entity(*u))
            };
            let text = msg.text.as_bytes();
            let after = |s: &'static [u8]| {
                move |_u: usize, b: usize| b >= s.len() && &text[b - s.len()..b] == s
            };
            candidates(&after(b"\n\n"))
                .or_else(|| candidates(&after(b"\n")))
                .or_else(|| candidates(&after(b" ")))
                .or_else(|| candidates(&|_, _| true))
                .or_else(|| {
                    // One entity longer than the limit: cut it at the last char boundary.
                    bounds
                        .iter()
                        .rev()
                        .map(|(u, _)| *u)
                        .find(|u| *u > start && *u <= max)
                })
                .unwrap_or(total)
        };
        parts.push(part(msg, start, end, &byte_at));
        start = end;
    }
    parts.retain(|p| !p.text.is_empty());
    parts
}

/// The part `[start, end)` (UTF-16) of a message, edges trimmed, entities clipped and moved.
fn part(msg: &Rendered, start: usize, end: usize, byte_at: &dyn Fn(usize) -> usize) -> Rendered {
    let slice = &msg.text[byte_at(start)..byte_at(end)];
    let lead_ws = utf16_len(&slice[..slice.len() - slice.trim_start().len()]);
    let text = slice.trim().to_string();
    let from = start + lead_ws;
    let to = from + utf16_len(&text);
    let mut entities = Vec::new();
    for e in &msg.entities {
        let (s, l) = (e.offset.max(0) as usize, e.length.max(0) as usize);
        let (s, t) = (s.max(from), (s + l).min(to));
        if s < t {
            let mut e = e.clone();
            e.offset = to_i32(s - from);
            e.length = to_i32(t - s);
            entities.push(e);
        }
    }
    Rendered { text, entities }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::{LeadAuthor, LeadId, SourceId, TaskId, Timestamp, WorkspaceId};

    fn lead(snippet: &str, terms: &[&str]) -> Lead {
        Lead {
            id: LeadId(1),
            workspace_id: WorkspaceId(1),
            task_id: TaskId(1),
            source_id: SourceId(1),
            tg_message_id: 7,
            revision: 0,
            channel_id: Some(-1001),
            link: Some("https://t.me/rust_go_jobs/7".into()),
            author: LeadAuthor {
                id: Some(5),
                name: Some("Иван Петров".into()),
                username: Some("ivan".into()),
            },
            text: snippet.into(),
            snippet: snippet.into(),
            terms: terms.iter().map(|t| t.to_string()).collect(),
            posted_at: Timestamp(0),
            forward_origin: None,
            grouped_id: None,
            simhash: None,
            read: false,
            delivery_id: None,
            created_at: Timestamp(0),
        }
    }

    fn view(l: &Lead) -> LeadView<'_> {
        LeadView {
            lead: l,
            source: SourceLabel {
                title: "Rust & Go Jobs".into(),
                link: Some("https://t.me/rust_go_jobs".into()),
            },
        }
    }

    /// The text an entity covers.
    fn covered(r: &Rendered, e: &Entity) -> String {
        let units: Vec<u16> = r.text.encode_utf16().collect();
        let (s, l) = (e.offset as usize, e.length as usize);
        String::from_utf16(&units[s..s + l]).unwrap_or_else(|_| "<split pair>".into())
    }

    fn bold(r: &Rendered) -> Vec<String> {
        r.entities
            .iter()
            .filter(|e| e.kind == EntityKind::Bold)
            .map(|e| covered(r, e))
            .collect()
    }

    #[test]
    fn an_instant_lead_names_task_source_author_terms_and_post() {
        let l = lead(
            "🔥 Ищем Rust-разработчика, удалённо. Вакансии недели",
            &["rust", "вакансия"],
        );
        let r = instant("Rust jobs", &view(&l), Locale::Ru);
        assert!(
            r.text
                .starts_with("🔔 Rust jobs\nИсточник: Rust & Go Jobs\n")
        );
        assert!(r.text.contains("Автор: Иван Петров (@ivan)\n"));
        assert!(r.text.ends_with("→ Открыть пост"));
        // The task name and each matched word (in any form) in bold, at UTF-16 offsets.
        assert_eq!(bold(&r), vec!["Rust jobs", "Rust", "Вакансии"]);
        let links: Vec<(String, Option<String>)> = r
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::TextLink)
            .map(|e| (covered(&r, e), e.url.clone()))
            .collect();
        assert_eq!(
            links,
            vec![
                (
                    "Rust & Go Jobs".to_string(),
                    Some("https://t.me/rust_go_jobs".to_string())
                ),
                (
                    "→ Открыть пост".to_string(),
                    Some("https://t.me/rust_go_jobs/7".to_string())
                ),
            ]
        );
        let en = instant("Rust jobs", &view(&l), Locale::En);
        assert!(en.text.contains("Source: ") && en.text.contains("Author: "));
        assert!(en.text.ends_with("→ Open the post"));
    }

    #[test]
    fn phrases_and_exact_forms_are_highlighted_and_regexes_are_not() {
        let r = term_ranges(
            "Senior Rust developer; rust developers wanted",
            &[
                "\"rust developer\"".into(),
                "!senior".into(),
                "/\\d+k/".into(),
            ],
        );
        let text = "Senior Rust developer; rust developers wanted";
        let got: Vec<&str> = r.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(got, vec!["Senior", "Rust developer", "rust developers"]);
    }

    #[test]
    fn a_lead_without_author_or_link_still_reads() {
        let mut l = lead("go go go", &["go"]);
        l.author = LeadAuthor::default();
        l.link = None;
        let v = LeadView {
            lead: &l,
            source: SourceLabel {
                title: "Private chat".into(),
                link: None,
            },
        };
        let r = instant("T", &v, Locale::En);
        assert_eq!(r.text, "🔔 T\nSource: Private chat\ngo go go");
        assert_eq!(bold(&r), vec!["T", "go", "go", "go"]);
    }

    #[test]
    fn a_long_snippet_is_clipped() {
        let l = lead(&"слово ".repeat(1000), &["слово"]);
        let r = instant("T", &view(&l), Locale::Ru);
        assert!(r.units() < MESSAGE_LIMIT);
        assert!(r.text.contains('…'));
    }

    #[test]
    fn a_digest_numbers_its_leads_and_fit_keeps_it_under_the_limit() {
        let leads: Vec<Lead> = (0..40)
            .map(|i| {
                lead(
                    &format!("{i} Rust 🦀 вакансия {}", "ж".repeat(300)),
                    &["rust"],
                )
            })
            .collect();
        let views: Vec<LeadView<'_>> = leads.iter().map(view).collect();
        let d = digest("Rust jobs", &views[..2], Locale::En);
        assert!(
            d.text
                .starts_with("📋 Rust jobs — digest, leads: 2\n\n1. Rust & Go Jobs\n")
        );
        assert!(d.text.contains("\n\n2. Rust & Go Jobs\n"));
        let mut at = 0;
        let mut messages = 0;
        while at < views.len() {
            let n = digest_fit("Rust jobs", &views[at..], Locale::En, MESSAGE_LIMIT);
            let m = digest("Rust jobs", &views[at..at + n], Locale::En);
            assert!(m.units() <= MESSAGE_LIMIT, "{}", m.units());
            assert_eq!(split(&m, MESSAGE_LIMIT).len(), 1);
            at += n;
            messages += 1;
        }
        assert!(messages >= 3, "{messages}");
    }

    fn entity(kind: EntityKind, offset: usize, length: usize) -> Entity {
        Entity::new(kind, to_i32(offset), to_i32(length))
    }

    /// Every part within the limit, every entity whole and on its text, nothing lost but edge
    /// whitespace.
    fn check_parts(msg: &Rendered, parts: &[Rendered], limit: usize) {
        for p in parts {
            assert!(p.units() <= limit, "{} > {limit}", p.units());
            assert!(!p.text.is_empty());
            for e in &p.entities {
                assert!((e.offset + e.length) as usize <= p.units());
            }
        }
        let joined: String = parts.iter().map(|p| p.text.as_str()).collect();
        let original: String = msg.text.split_whitespace().collect();
        let again: String = joined.split_whitespace().collect();
        assert_eq!(original, again);
    }

    #[test]
    fn split_cuts_between_blocks_not_inside_them() {
        // Three blocks of 30 units each; a limit of 70 holds two of them.
        let block = |c: &str| format!("{} {}", c.repeat(14), c.repeat(15));
        let text = format!("{}\n\n{}\n\n{}", block("а"), block("b"), block("в"));
        let msg = Rendered {
            entities: vec![entity(EntityKind::Bold, 32, 14)],
            text,
        };
        let parts = split(&msg, 70);
        check_parts(&msg, &parts, 70);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].text, format!("{}\n\n{}", block("а"), block("b")));
        assert_eq!(parts[1].text, block("в"));
        assert_eq!(bold(&parts[0]), vec!["b".repeat(14)]);
    }

    #[test]
    fn split_never_cuts_an_entity_or_a_surrogate_pair() {
        // Emoji are two UTF-16 units each; the bold run may not be cut although a space inside
        // it would make a longer first part.
        let text = "😀😀😀 😀😀 начало жирного текста конец";
        let start = utf16_len("😀😀😀 😀😀 ");
        let len = utf16_len("начало жирного текста");
        let msg = Rendered {
            text: text.into(),
            entities: vec![entity(EntityKind::Bold, start, len)],
        };
        for limit in 3..utf16_len(text) {
            let parts = split(&msg, limit);
            check_parts(&msg, &parts, limit);
            for p in &parts {
                assert!(String::from_utf16(&p.text.encode_utf16().collect::<Vec<_>>()).is_ok());
            }
            if limit >= len {
                assert!(
                    parts
                        .iter()
                        .any(|p| bold(p) == vec!["начало жирного текста"]),
                    "limit {limit}: {parts:?}"
                );
            }
        }
    }

    #[test]
    fn an_entity_longer_than_the_limit_is_split_keeping_its_formatting() {
        let text = "x ".to_string() + &"я".repeat(50);
        let msg = Rendered {
            entities: vec![entity(EntityKind::Bold, 2, 50)],
            text,
        };
        let parts = split(&msg, 20);
        check_parts(&msg, &parts, 20);
        let bold_units: usize = parts
            .iter()
            .flat_map(|p| p.entities.iter().map(|e| e.length as usize))
            .sum();
        assert_eq!(bold_units, 50);
    }

    #[test]
    fn a_message_within_the_limit_is_one_part_unchanged() {
        let l = lead("Rust 🦀", &["rust"]);
        let r = instant("T", &view(&l), Locale::En);
        assert_eq!(split(&r, MESSAGE_LIMIT), vec![r.clone()]);
        // Exactly at the limit in UTF-16 (emoji count twice), and one unit over.
        let at = Rendered {
            text: "😀".repeat(2048),
            entities: vec![],
        };
        assert_eq!(split(&at, MESSAGE_LIMIT).len(), 1);
        let over = Rendered {
            text: format!("{}a", "😀".repeat(2048)),
            entities: vec![],
        };
        let parts = split(&over, MESSAGE_LIMIT);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].text, "a");
    }
}
