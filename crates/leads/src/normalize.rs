//! Text normalisation and word tokenisation, shared by queries, posts, regexes and SimHash.
//!
//! A post and a query word go through the same steps, so matching compares like with like:
//!
//! 1. Unicode lowercase (`char::to_lowercase`), then `ё` → `е` (Russian writes ё as е freely).
//! 2. Invisible format characters are dropped: soft hyphen (U+00AD), Mongolian vowel separator
//!    (U+180E), zero-width space / non-joiner / joiner and the direction marks
//!    (U+200B–U+200F), bidi embeddings (U+202A–U+202E), word joiner and invisible operators
//!    (U+2060–U+2064) and the byte-order mark (U+FEFF). Spammers put them inside words to dodge
//!    filters; `раз\u{200B}работчик` reads as `разработчик`.
//! 3. Combining accents (U+0300–U+036F) are dropped, after a decomposed `и` + U+0306 is composed
//!    to `й` (and `е` + U+0308, a decomposed `ё`, to `е`): stress marks (`вака́нсия`) do not
//!    split a word.
//!
//! A **word** is a maximal run of alphanumeric characters (`char::is_alphanumeric`: Cyrillic,
//! Latin, digits and every other script's letters); everything else (spaces, punctuation,
//! hyphens, emoji) separates words. `Rust-разработчик` is two words.
//!
//! The normalised text keeps a way back to the original: when every character kept its UTF-8
//! length (the usual case: ASCII, Russian), byte offsets are the same in both; otherwise
//! [`Normalized::to_original`] rebuilds a per-byte map on demand (only for posts that matched).

use std::ops::Range;

/// A post or query text after normalisation.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The normalised text.
    pub text: String,
    /// Whether every byte offset of `text` is the same offset in the original.
    aligned: bool,
}

/// Where the normalised bytes came from, per byte of the normalised text: the original
/// character's byte range.
#[derive(Debug)]
pub(crate) struct OffsetMap {
    map: Vec<(u32, u32)>,
}

/// Receives, for each byte written to the normalised text, the original character's range.
trait OffsetSink {
    /// Whether the sink records anything (the hot path's `()` does not).
    const ACTIVE: bool;
    fn push(&mut self, bytes: usize, orig: Range<usize>);
    /// The last pushed character now also covers original bytes up to `end` (composition).
    fn extend_last(&mut self, end: usize);
}

impl OffsetSink for () {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn push(&mut self, _: usize, _: Range<usize>) {}
    #[inline(always)]
    fn extend_last(&mut self, _: usize) {}
}

impl OffsetSink for Vec<(u32, u32)> {
    const ACTIVE: bool = true;
    fn push(&mut self, bytes: usize, orig: Range<usize>) {
        for _ in 0..bytes {
            self.push((orig.start as u32, orig.end as u32));
        }
    }
    fn extend_last(&mut self, end: usize) {
        // The composed character is the last one written; all its bytes share one range.
        let Some(&(start, _)) = self.last() else {
            return;
        };
        for entry in self.iter_mut().rev() {
            if entry.0 != start {
                break;
            }
            entry.1 = end as u32;
        }
    }
}

/// Whether `c` is an invisible format character that normalisation drops.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// Whether `c` belongs to a word.
#[inline]
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Normalises `text` (lowercase, ё→е, invisible characters and combining accents dropped).
pub fn normalize(text: &str) -> Normalized {
    let mut out = String::with_capacity(text.len());
    let aligned = normalize_into(text, &mut out, &mut ());
    Normalized { text: out, aligned }
}

/// The normalised form of `text` as a plain string.
pub fn normalize_str(text: &str) -> String {
    normalize(text).text
}

impl Normalized {
    /// The per-byte map back to the original, or `None` when offsets are unchanged.
    pub(crate) fn offset_map(&self, original: &str) -> Option<OffsetMap> {
        if self.aligned {
            return None;
        }
        let mut out = String::with_capacity(original.len());
        let mut map = Vec::with_capacity(self.text.len());
        normalize_into(original, &mut out, &mut map);
        Some(OffsetMap { map })
    }

    /// Maps a byte range of the normalised text to the original text's byte range (whole
    /// characters). `map` comes from [`Normalized::offset_map`] on the same original.
    pub(crate) fn to_original(
        &self,
        map: Option<&OffsetMap>,
        range: Range<usize>,
        original_len: usize,
    ) -> Range<usize> {
        match map {
            None => range,
            Some(OffsetMap { map }) => {
                if range.start >= range.end {
                    let at = map
                        .get(range.start)
                        .map_or(original_len, |&(s, _)| s as usize);
                    return at..at;
                }
                let start = map
                    .get(range.start)
                    .map_or(original_len, |&(s, _)| s as usize);
                let end = map
                    .get(range.end - 1)
                    .map_or(original_len, |&(_, e)| e as usize);
                start..end.max(start)
            }
        }
    }
}

/// The normalisation loop; returns whether offsets stayed aligned. Bytes that normalisation
/// leaves alone (lowercase ASCII and Cyrillic, punctuation) are copied in runs; uppercase ASCII
/// and two-byte Cyrillic are lowered in place; everything else goes through
/// `char::to_lowercase`.
fn normalize_into<S: OffsetSink>(text: &str, out: &mut String, sink: &mut S) -> bool {
    let bytes = text.as_bytes();
    let mut aligned = true;
    let mut i = 0;
    // Start of the bytes not yet copied (all unchanged by normalisation).
    let mut run = 0;
    let flush = |out: &mut String, sink: &mut S, from: usize, to: usize| {
        if from < to {
            out.push_str(&text[from..to]);
            if S::ACTIVE {
                for (k, c) in text[from..to].char_indices() {
                    sink.push(c.len_utf8(), from + k..from + k + c.len_utf8());
                }
            }
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if b.is_ascii_uppercase() {
                flush(out, sink, run, i);
                out.push(char::from(b.to_ascii_lowercase()));
                sink.push(1, i..i + 1);
                run = i + 1;
            }
            i += 1;
            continue;
        }
        if (b == 0xD0 || b == 0xD1)
            && let Some(&b2) = bytes.get(i + 1)
        {
            // Already lowercase and not ё: а–п (D0 B0–BF), р–я and ѐ–џ but ё (D1 80–9F).
            if (b == 0xD0 && b2 >= 0xB0) || (b == 0xD1 && b2 < 0xA0 && b2 != 0x91) {
                i += 2;
                continue;
            }
            // U+0400..U+047F: Cyrillic. Lowercase in place, ё → е.
            let cp = (((b & 0x1F) as u32) << 6) | (b2 & 0x3F) as u32;
            let lower = match cp {
                0x0410..=0x042F => cp + 0x20,
                0x0401 | 0x0451 => 0x0435,
                0x0400..=0x040F => cp + 0x50,
                0x0460..=0x047F if cp.is_multiple_of(2) => cp + 1,
                _ => cp,
            };
            if lower != cp {
                flush(out, sink, run, i);
                if let Some(c) = char::from_u32(lower) {
                    out.push(c);
                    sink.push(2, i..i + 2);
                }
                run = i + 2;
            }
            i += 2;
            continue;
        }
        // General path: one character.
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        flush(out, sink, run, i);
        let len = c.len_utf8();
        let range = i..i + len;
        i += len;
        run = i;
        if is_invisible(c) {
            aligned = false;
            continue;
        }
        if ('\u{0300}'..='\u{036F}').contains(&c) {
            aligned = false;
            if c == '\u{0306}' && out.ends_with('и') {
                out.pop();
                out.push('й');
                sink.extend_last(range.end);
            } else if !out.is_empty() {
                // Other accents (and the diaeresis of a decomposed ё) are dropped; the
                // previous character's span covers them so highlights include the mark.
                sink.extend_last(range.end);
            }
            continue;
        }
        let before = out.len();
        for l in c.to_lowercase() {
            out.push(if l == 'ё' { 'е' } else { l });
        }
        let written = out.len() - before;
        if written != len {
            aligned = false;
        }
        sink.push(written, range);
    }
    flush(out, sink, run, bytes.len());
    aligned
}

/// The script a word is stemmed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    /// The word has a Cyrillic letter: the Russian Snowball stemmer.
    Russian,
    /// The word has a Latin letter (and no Cyrillic one): the English (Porter2) stemmer.
    English,
    /// Digits or another script: no stemming, the word only matches itself.
    None,
}

/// Which stemmer a (normalised) word takes.
pub fn lang_of(word: &str) -> Lang {
    let mut latin = false;
    for c in word.chars() {
        match c {
            '\u{0400}'..='\u{04FF}' => return Lang::Russian,
            'a'..='z' => latin = true,
            _ => {}
        }
    }
    if latin { Lang::English } else { Lang::None }
}

/// The byte ranges of the words of a normalised text.
pub fn words(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(text.len() / 6);
    words_into(text, &mut out);
    out
}

/// Appends the byte ranges of the words of `text` to `out` (fast paths for ASCII and
/// Cyrillic: a separator run, then a word run, each in its own tight loop).
pub(crate) fn words_into(text: &str, out: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    // Whether the character at `i` belongs to a word, and its length.
    let class = |i: usize| -> (bool, usize) {
        let b = bytes[i];
        if b < 0x80 {
            (b.is_ascii_alphanumeric(), 1)
        } else if b == 0xD0 || b == 0xD1 {
            // U+0400..U+047F are all letters.
            (true, 2)
        } else {
            text[i..]
                .chars()
                .next()
                .map_or((false, 1), |c| (is_word_char(c), c.len_utf8()))
        }
    };
    let mut i = 0;
    while i < n {
        // Separators.
        loop {
            if i >= n {
                return;
            }
            let b = bytes[i];
            if b.is_ascii_alphanumeric() || b == 0xD0 || b == 0xD1 {
                break;
            }
            if b < 0x80 {
                i += 1;
                continue;
            }
            let (word, len) = class(i);
            if word {
                break;
            }
            i += len;
        }
        let start = i;
        // The word.
        while i < n {
            let b = bytes[i];
            if b.is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            if b == 0xD0 || b == 0xD1 {
                i += 2;
                continue;
            }
            if b < 0x80 {
                break;
            }
            let (word, len) = class(i);
            if !word {
                break;
            }
            i += len;
        }
        out.push(start..i.min(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward definition the fast paths must agree with.
    fn reference(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            if is_invisible(c) {
                continue;
            }
            if ('\u{0300}'..='\u{036F}').contains(&c) {
                if c == '\u{0306}' && out.ends_with('и') {
                    out.pop();
                    out.push('й');
                }
                continue;
            }
            for l in c.to_lowercase() {
                out.push(if l == 'ё' { 'е' } else { l });
            }
        }
        out
    }

    #[test]
    fn lowercases_and_folds_yo() {
        assert_eq!(
            normalize_str("Ищем РАЗРАБОТЧИКА Ёжика"),
            "ищем разработчика ежика"
        );
        assert_eq!(normalize_str("Senior RUST Dev"), "senior rust dev");
        assert_eq!(normalize_str("ЁЛКА ёлка"), "елка елка");
    }

    #[test]
    fn strips_invisible_characters_inside_words() {
        let text = "раз\u{200B}ра\u{00AD}бот\u{200D}чик va\u{2060}can\u{FEFF}cy";
        assert_eq!(normalize_str(text), "разработчик vacancy");
        assert_eq!(
            words(&normalize_str(text)).len(),
            2,
            "an invisible character does not split a word"
        );
    }

    #[test]
    fn composes_decomposed_short_i_and_drops_stress_marks() {
        assert_eq!(normalize_str("стро\u{0438}\u{0306}ка"), "стройка");
        assert_eq!(normalize_str("вака\u{0301}нсия"), "вакансия");
        assert_eq!(normalize_str("е\u{0308}лка"), "елка");
    }

    #[test]
    fn maps_offsets_back_to_the_original() {
        let original = "Раз\u{200B}работчик İstanbul";
        let n = normalize(original);
        let map = n.offset_map(original);
        assert!(map.is_some(), "an invisible character breaks alignment");
        let w = words(&n.text);
        let first = n.to_original(map.as_ref(), w[0].clone(), original.len());
        assert_eq!(&original[first], "Раз\u{200B}работчик");
        let second = n.to_original(map.as_ref(), w[1].clone(), original.len());
        assert!(original[second].starts_with('İ'));
    }

    #[test]
    fn aligned_text_needs_no_map() {
        let original = "Ищем Rust-разработчика, Ёлки";
        let n = normalize(original);
        assert!(n.offset_map(original).is_none());
        assert_eq!(n.text.len(), original.len());
    }

    #[test]
    fn tokenises_cyrillic_latin_and_digits() {
        let text = normalize_str("Ищем Rust-разработчика (2 года), з/п 300к!");
        let got: Vec<&str> = words(&text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            got,
            [
                "ищем",
                "rust",
                "разработчика",
                "2",
                "года",
                "з",
                "п",
                "300к"
            ]
        );
    }

    #[test]
    fn picks_the_stemmer_by_script() {
        assert_eq!(lang_of("разработчик"), Lang::Russian);
        assert_eq!(lang_of("rust"), Lang::English);
        assert_eq!(lang_of("javaразработчик"), Lang::Russian);
        assert_eq!(lang_of("2024"), Lang::None);
    }

    proptest::proptest! {
        #[test]
        fn fast_paths_equal_the_reference(text in "\\PC{0,64}") {
            proptest::prop_assert_eq!(normalize_str(&text), reference(&text));
        }

        #[test]
        fn words_equal_a_split(text in "\\PC{0,64}") {
            let n = normalize_str(&text);
            let fast: Vec<&str> = words(&n).into_iter().map(|r| &n[r]).collect();
            let slow: Vec<&str> = n.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty()).collect();
            proptest::prop_assert_eq!(fast, slow);
        }

        #[test]
        fn offsets_map_to_char_boundaries(text in "\\PC{0,64}") {
            let n = normalize(&text);
            let map = n.offset_map(&text);
            for w in words(&n.text) {
                let r = n.to_original(map.as_ref(), w, text.len());
                proptest::prop_assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
                proptest::prop_assert!(r.start <= r.end && r.end <= text.len());
            }
        }
    }
}
