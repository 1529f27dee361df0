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
//! Latin, digits and every other script's letters) of the original text; invisible characters
//! and combining accents inside it belong to it (they do not split it). Everything else
//! (spaces, punctuation, hyphens, emoji) separates words: `Rust-разработчик` is two words. Each
//! word is normalised on its own ([`normalize_word`]); its byte range in the original text is
//! what a highlight shows.
//!
//! For the keyword automaton a normalised word is written in a compact alphabet
//! (`encode_into`): ASCII as itself, the Cyrillic letters а–я and ѐ–џ (U+0430–U+045F) as one
//! byte each (0x80–0xAF), anything else as its UTF-8 bytes (which start with a byte ≥ 0xC2, so
//! the code stays unambiguous). A Russian word costs one automaton step per letter, not two.
//! Words of only ASCII letters/digits and Cyrillic letters up to U+045F ("simple" words, nearly
//! all of them) are lowered and encoded byte by byte without building a string.
//!
//! Regexes run on the normalised *text* ([`normalize`]), which keeps a way back to the
//! original: when every character kept its UTF-8 length (the usual case: ASCII, Russian), byte
//! offsets are the same in both; otherwise a per-byte map is rebuilt on demand.

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

/// Whether `c` is a combining accent (U+0300–U+036F), dropped by normalisation.
pub fn is_accent(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Whether `c` is dropped by normalisation without splitting a word.
fn is_transparent(c: char) -> bool {
    is_invisible(c) || is_accent(c)
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
        let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
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
        if is_accent(c) {
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
            if is_accent(l) {
                // `İ` lowercases to `i` + U+0307: the accent goes, as in the original text.
                continue;
            }
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

/// The byte ranges of the words of `text` (the original, not normalised).
pub fn words(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(text.len() / 6);
    scan_words(text, |range, _| out.push(range));
    out
}

/// The normalised words of `text`, in order (words that normalise to nothing are left out).
pub fn tokens(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .map(|r| normalize_word(&text[r]))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The normalised form of one word of the original text.
pub fn normalize_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    normalize_word_into(word, &mut out);
    out
}

/// Appends the normalised form of one word to `out`.
pub(crate) fn normalize_word_into(word: &str, out: &mut String) {
    normalize_into(word, out, &mut ());
}

/// The character at byte `i` and its length.
fn decode(text: &str, i: usize) -> (char, usize) {
    text.get(i..)
        .and_then(|t| t.chars().next())
        .map_or(('\u{FFFD}', 1), |c| (c, c.len_utf8()))
}

/// Byte classes of the tokeniser.
const SEP: u8 = 0; // ASCII that is not a letter or digit
const WORD: u8 = 1; // ASCII letter or digit
const D0: u8 = 2; // 0xD0 lead: a letter U+0400–U+043F, two bytes
const D1: u8 = 3; // 0xD1 lead: a letter; simple unless U+0460 or above
const OTHER: u8 = 4; // another lead byte or a stray continuation byte: decode the character

static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c < 0x80 {
            if c.is_ascii_alphanumeric() { WORD } else { SEP }
        } else if c == 0xD0 {
            D0
        } else if c == 0xD1 {
            D1
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

/// Calls `f` with the byte range of each word of `text` and whether the word is *simple*: only
/// ASCII letters and digits and Cyrillic letters U+0400–U+045F (two-byte sequences led by 0xD0
/// or 0xD1 < 0xA0), which [`simple_code`] encodes byte by byte. One table lookup per ASCII
/// byte or Cyrillic letter; other characters are decoded and skipped whole.
pub(crate) fn scan_words(text: &str, mut f: impl FnMut(Range<usize>, bool)) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    loop {
        // Separators.
        let start = loop {
            if i >= n {
                return;
            }
            match CLASS[bytes[i] as usize] {
                SEP => i += 1,
                WORD | D0 | D1 => break i,
                _ => {
                    let (c, len) = decode(text, i);
                    if is_word_char(c) {
                        break i;
                    }
                    i += len;
                }
            }
        };
        // The word.
        let mut simple = true;
        while i < n {
            match CLASS[bytes[i] as usize] {
                WORD => i += 1,
                SEP => break,
                D0 => i += 2,
                D1 => {
                    if bytes.get(i + 1).is_some_and(|&b2| b2 >= 0xA0) {
                        simple = false;
                    }
                    i += 2;
                }
                _ => {
                    let (c, len) = decode(text, i);
                    if !is_word_char(c) && !is_transparent(c) {
                        break;
                    }
                    simple = false;
                    i += len;
                }
            }
        }
        f(start..i.min(n), simple);
    }
}

/// The automaton code of the normalised character starting at `word[*k]` of a simple word
/// (see [`scan_words`]); advances `k`. Lowercases and folds ё on the way.
#[inline]
pub(crate) fn simple_code(word: &[u8], k: &mut usize) -> u8 {
    let b = word[*k];
    if b < 0x80 {
        *k += 1;
        return b.to_ascii_lowercase();
    }
    let b2 = word.get(*k + 1).copied().unwrap_or(0x80);
    *k += 2;
    let cp = (((b & 0x1F) as u32) << 6) | (b2 & 0x3F) as u32;
    let lower = match cp {
        0x0410..=0x042F => cp + 0x20,
        0x0401 | 0x0451 => 0x0435,
        0x0400..=0x040F => cp + 0x50,
        _ => cp,
    };
    0x80 + (lower.saturating_sub(0x0430) as u8 & 0x3F)
}

/// Appends the automaton code of a normalised string (see the module docs) to `out`.
pub(crate) fn encode_into(normalized: &str, out: &mut Vec<u8>) {
    for c in normalized.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else if ('\u{0430}'..='\u{045F}').contains(&c) {
            out.push(0x80 + (c as u32 - 0x0430) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// A straightforward tokeniser, the definition the fast one must agree with.
#[cfg(test)]
pub(crate) fn reference_words(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if is_word_char(c) {
            start.get_or_insert(i);
        } else if is_transparent(c) && start.is_some() {
            // Inside a word: part of it.
        } else if let Some(s) = start.take() {
            out.push(s..i);
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
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
            if is_accent(c) {
                if c == '\u{0306}' && out.ends_with('и') {
                    out.pop();
                    out.push('й');
                }
                continue;
            }
            for l in c.to_lowercase().filter(|l| !is_accent(*l)) {
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
            tokens(text),
            ["разработчик", "vacancy"],
            "an invisible character does not split a word"
        );
        assert_eq!(
            &text[words(text)[0].clone()],
            "раз\u{200B}ра\u{00AD}бот\u{200D}чик"
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
        assert_eq!(n.text, "разработчик istanbul");
        let map = n.offset_map(original);
        assert!(map.is_some(), "an invisible character breaks alignment");
        let first = n.to_original(map.as_ref(), 0.."разработчик".len(), original.len());
        assert_eq!(&original[first], "Раз\u{200B}работчик");
        let at = "разработчик ".len();
        let second = n.to_original(map.as_ref(), at..at + 1, original.len());
        assert_eq!(&original[second], "İ");
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
        assert_eq!(
            tokens("Ищем Rust-разработчика (2 года), з/п 300к!"),
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
        assert_eq!(
            tokens("İstanbul вака\u{0301}нсия"),
            ["istanbul", "вакансия"]
        );
    }

    #[test]
    fn encodes_cyrillic_in_one_byte() {
        let mut codes = Vec::new();
        encode_into("яа z", &mut codes);
        assert_eq!(codes, [0x9F, 0x80, b' ', b'z']);
        let mut codes = Vec::new();
        encode_into("ѣ", &mut codes);
        assert_eq!(codes, "ѣ".as_bytes(), "other characters stay UTF-8");
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
        fn words_equal_the_reference_tokeniser(text in "\\PC{0,64}") {
            proptest::prop_assert_eq!(words(&text), reference_words(&text));
        }

        #[test]
        fn simple_words_encode_like_normalised_ones(text in "[a-zA-Z0-9а-яА-ЯёЁѐ-џЀ-Џ .,-]{0,64}") {
            let mut simple_seen = 0;
            scan_words(&text, |range, simple| {
                if simple {
                    simple_seen += 1;
                    let word = &text.as_bytes()[range.clone()];
                    let mut fast = Vec::new();
                    let mut k = 0;
                    while k < word.len() {
                        fast.push(simple_code(word, &mut k));
                    }
                    let mut slow = Vec::new();
                    encode_into(&normalize_word(&text[range]), &mut slow);
                    assert_eq!(fast, slow);
                }
            });
            proptest::prop_assert!(simple_seen <= text.len());
        }

        #[test]
        fn offsets_map_to_char_boundaries(text in "\\PC{0,64}", a in 0usize..200, b in 0usize..200) {
            let n = normalize(&text);
            let map = n.offset_map(&text);
            let (mut a, mut b) = (a.min(n.text.len()), b.min(n.text.len()));
            while !n.text.is_char_boundary(a) { a -= 1; }
            while !n.text.is_char_boundary(b) { b -= 1; }
            let r = n.to_original(map.as_ref(), a.min(b)..a.max(b), text.len());
            proptest::prop_assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
            proptest::prop_assert!(r.start <= r.end && r.end <= text.len());
        }
    }
}
