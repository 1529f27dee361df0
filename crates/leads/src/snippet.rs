//! A short window of a post around its first match, for a lead's notification and list row.

use std::ops::Range;

/// A piece of a post with highlights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The window, with `…` where the post was cut.
    pub text: String,
    /// Byte ranges of `text` to highlight: sorted, merged, on character boundaries.
    pub highlights: Vec<Range<usize>>,
}

/// How far (in characters) a cut may move to land on a space.
const SNAP: usize = 20;

/// A window of at most `max_chars` characters of `text` (plus the `…` marks) around the first of
/// `spans` (byte ranges of `text`, such as [`crate::MatchSpan::range`]): about a third of the
/// room before it, the rest after; cuts move to a nearby space. Spans that are out of range or
/// not on character boundaries are ignored.
pub fn snippet(text: &str, spans: &[Range<usize>], max_chars: usize) -> Snippet {
    let spans: Vec<Range<usize>> = spans
        .iter()
        .filter(|r| {
            r.start < r.end
                && r.end <= text.len()
                && text.is_char_boundary(r.start)
                && text.is_char_boundary(r.end)
        })
        .cloned()
        .collect();
    // Byte offset of every character, plus the end.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let total = offsets.len() - 1;
    let char_at = |byte: usize| offsets.partition_point(|&o| o < byte);
    let first = spans.iter().min_by_key(|r| r.start).cloned();

    let (from, to) = if total <= max_chars {
        (0, total)
    } else {
        let (s, e) = first
            .as_ref()
            .map_or((0, 0), |r| (char_at(r.start), char_at(r.end)));
        let room = max_chars.saturating_sub(e - s);
        let from = s.saturating_sub(room / 3);
        let to = (from + max_chars).min(total);
        let from = to.saturating_sub(max_chars);
        // Snap cuts to spaces, never past the first match.
        let chars: Vec<char> = text.chars().collect();
        let mut from = from;
        if from > 0
            && let Some(k) = (from..(from + SNAP).min(s)).find(|&k| chars[k].is_whitespace())
        {
            from = k + 1;
        }
        let mut to = to;
        if to < total
            && let Some(k) = (e.max(to.saturating_sub(SNAP))..to)
                .rev()
                .find(|&k| chars[k].is_whitespace())
        {
            to = k;
        }
        (from, to)
    };
    // Drop whitespace at the cut edges.
    let body_start = offsets[from];
    let body = &text[body_start..offsets[to]];
    let trimmed_start = body.len() - body.trim_start().len();
    let body = body.trim();
    let body_start = body_start + trimmed_start;
    let (cut_start, cut_end) = (from > 0, to < total);

    let prefix = if cut_start { "…" } else { "" };
    let mut out = String::with_capacity(body.len() + 6);
    out.push_str(prefix);
    out.push_str(body);
    if cut_end {
        out.push('…');
    }
    let shift = prefix.len();
    let body_end = body_start + body.len();
    let mut highlights: Vec<Range<usize>> = spans
        .iter()
        .filter(|r| r.start < body_end && r.end > body_start)
        .map(|r| {
            r.start.max(body_start) - body_start + shift..r.end.min(body_end) - body_start + shift
        })
        .collect();
    highlights.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(highlights.len());
    for r in highlights {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    Snippet {
        text: out,
        highlights: merged,
    }
}

#[cfg(test)]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "a list of one span is still a list of spans"
)]
mod tests {
    use super::*;

    #[test]
    fn short_posts_are_whole() {
        let text = "Ищем Rust-разработчика";
        let s = snippet(text, &[9..13], 100);
        assert_eq!(s.text, text);
        assert_eq!(s.highlights, [9..13]);
        assert_eq!(&s.text[s.highlights[0].clone()], "Rust");
    }

    #[test]
    fn long_posts_are_cut_around_the_first_match_on_spaces() {
        let before =
            "Доброе утро всем участникам чата, сегодня пятница и погода отличная. ".repeat(5);
        let after = " Пишите в личку, подробности при созвоне. ".repeat(5);
        let text = format!("{before}Ищем вакансию Rust-разработчика{after}");
        let at = text.find("вакансию").unwrap_or(0);
        let span = at..at + "вакансию".len();
        let s = snippet(&text, &[span], 80);
        assert!(
            s.text.starts_with('…') && s.text.ends_with('…'),
            "{}",
            s.text
        );
        assert!(s.text.chars().count() <= 82);
        assert_eq!(s.highlights.len(), 1);
        assert_eq!(&s.text[s.highlights[0].clone()], "вакансию");
        let inner = s.text.trim_matches('…');
        assert!(!inner.starts_with(' ') && !inner.ends_with(' '));
    }

    #[test]
    fn overlapping_highlights_merge_and_bad_spans_are_ignored() {
        let text = "rust developer wanted";
        let s = snippet(text, &[0..14, 5..14, 0..4, 100..200, 1..1], 100);
        assert_eq!(s.highlights, [0..14]);
        let s = snippet("ёж", &[1..2], 10);
        assert!(s.highlights.is_empty(), "not a char boundary");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_stays_on_char_boundaries(
            text in "\\PC{0,300}",
            a in 0usize..700,
            b in 0usize..700,
            max in 0usize..120,
        ) {
            let s = snippet(&text, &[a.min(b)..a.max(b)], max);
            for h in &s.highlights {
                proptest::prop_assert!(s.text.is_char_boundary(h.start) && s.text.is_char_boundary(h.end));
            }
            proptest::prop_assert!(s.text.chars().count() <= max.max(text.chars().count().min(max)) + 2);
        }
    }
}
