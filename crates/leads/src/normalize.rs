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
//! all of them) are lowered and encoded in the pass that finds them ([`scan_walk`]), only as far
//! as the automaton goes, without building a string.
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
    scan_words(text, |range| out.push(range));
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
const D1: u8 = 3; // 0xD1 lead: a letter U+0440–U+047F, two bytes
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

/// Calls `f` with the byte range of each word of `text`. One table lookup per ASCII byte or
/// Cyrillic letter; other characters are decoded and skipped whole.
pub(crate) fn scan_words(text: &str, mut f: impl FnMut(Range<usize>)) {
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
        while i < n {
            match CLASS[bytes[i] as usize] {
                WORD => i += 1,
                SEP => break,
                D0 | D1 => i += 2,
                _ => {
                    let (c, len) = decode(text, i);
                    if !is_word_char(c) && !is_transparent(c) {
                        break;
                    }
                    i += len;
                }
            }
        }
        f(start..i.min(n));
    }
}

/// The automaton code of an ASCII byte inside a word: the lowercase letter or digit; 0 for a
/// separator (and for bytes ≥ 0x80, which are not ASCII). 256 entries, so a byte indexes it
/// without a bounds check.
static ASCII_CODE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

/// The automaton code of a two-byte character led by `lead` (0xD0 or 0xD1, U+0400–U+047F),
/// per continuation byte: the code of its normalised (lowercase, ё→е) letter, or 0 for
/// U+0460–U+047F, which a simple word does not hold.
const fn cyrillic_codes(lead: u8) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b2 = 0x80;
    while b2 < 0xC0 {
        let cp = (((lead & 0x1F) as u32) << 6) | (b2 as u32 & 0x3F);
        let lower = match cp {
            0x0401 | 0x0451 => 0x0435,
            0x0400..=0x040F => cp + 0x50,
            0x0410..=0x042F => cp + 0x20,
            _ => cp,
        };
        if lower < 0x0460 {
            t[b2] = 0x80 + (lower - 0x0430) as u8;
        }
        b2 += 1;
    }
    t
}

/// [`cyrillic_codes`] of 0xD0 and 0xD1.
static D0_CODE: [u8; 256] = cyrillic_codes(0xD0);
static D1_CODE: [u8; 256] = cyrillic_codes(0xD1);

/// The code of the simple two-byte character `lead`, `b2` (`lead` is 0xD0 or 0xD1).
#[inline(always)]
fn cyrillic_code(lead: u8, b2: u8) -> u8 {
    let table = if lead == 0xD0 { &D0_CODE } else { &D1_CODE };
    table[b2 as usize]
}

/// What [`scan_walk`] tells the keyword automaton about each word.
pub(crate) trait Walker {
    /// A word starts.
    fn begin(&mut self);
    /// The word's next code byte, the `depth`-th (from 1); `false` once no more of this word is
    /// needed.
    fn feed(&mut self, code: u8, depth: usize) -> bool;
    /// The word `range` ended. `normalized` holds all its codes when the word was not simple;
    /// for a simple word it is `None` ([`simple_codes`] gives them).
    fn end(&mut self, range: Range<usize>, normalized: Option<&[u8]>);
}

/// Splits `text` into words (as [`scan_words`] does) and feeds each word's normalised form in
/// the automaton's alphabet ([`encode_into`]) to `walker`, from the word's first character
/// until the walker has seen enough. The common words — ASCII letters and digits, Cyrillic
/// letters up to U+045F ("simple" words) — are lowered and encoded in the pass that finds
/// them, one table lookup per character, and only as far as the walker goes; the rest of such
/// a word is only looked at to find its end. Any other character sends its word through
/// [`normalize_word_into`] and the walker starts that word again over the normalised codes
/// (words that normalise to nothing are skipped). `codes` and `scratch` are reused buffers.
pub(crate) fn scan_walk(
    text: &str,
    codes: &mut Vec<u8>,
    scratch: &mut String,
    walker: &mut impl Walker,
) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    loop {
        // Separators.
        let start = loop {
            let Some(&b) = bytes.get(i) else {
                return;
            };
            if b < 0x80 {
                if ASCII_CODE[b as usize] != 0 {
                    break i;
                }
                i += 1;
            } else if b == 0xD0 || b == 0xD1 {
                break i;
            } else {
                let (c, len) = decode(text, i);
                if is_word_char(c) {
                    break i;
                }
                i += len;
            }
        };
        walker.begin();
        let mut simple = true;
        let mut walking = true;
        let mut depth = 0;
        // The walk, while the walker wants more and the word is simple.
        while let Some(&b) = bytes.get(i) {
            let code = if b < 0x80 {
                let code = ASCII_CODE[b as usize];
                if code == 0 {
                    break;
                }
                i += 1;
                code
            } else if b == 0xD0 || b == 0xD1 {
                // Valid UTF-8: a continuation byte follows.
                let b2 = bytes.get(i + 1).copied().unwrap_or(0);
                let code = cyrillic_code(b, b2);
                if code == 0 {
                    simple = false;
                    break;
                }
                i += 2;
                code
            } else {
                let (c, _) = decode(text, i);
                if is_word_char(c) || is_transparent(c) {
                    simple = false;
                }
                break;
            };
            depth += 1;
            if !walker.feed(code, depth) {
                walking = false;
                break;
            }
        }
        // The rest of a simple word: only where it ends (and whether it stays simple).
        if simple && !walking {
            while let Some(&b) = bytes.get(i) {
                if b < 0x80 {
                    if ASCII_CODE[b as usize] == 0 {
                        break;
                    }
                    i += 1;
                } else if b == 0xD0 || (b == 0xD1 && bytes.get(i + 1).is_some_and(|&b2| b2 < 0xA0))
                {
                    i += 2;
                } else {
                    let (c, _) = decode(text, i);
                    if is_word_char(c) || is_transparent(c) {
                        simple = false;
                    }
                    break;
                }
            }
        }
        if simple {
            walker.end(start..i, None);
            continue;
        }
        // Not simple: the whole word, normalised, and the walk again.
        while i < n {
            match CLASS[bytes[i] as usize] {
                WORD => i += 1,
                SEP => break,
                D0 | D1 => i += 2,
                _ => {
                    let (c, len) = decode(text, i);
                    if !is_word_char(c) && !is_transparent(c) {
                        break;
                    }
                    i += len;
                }
            }
        }
        let end = i.min(n);
        scratch.clear();
        normalize_word_into(&text[start..end], scratch);
        codes.clear();
        encode_into(scratch, codes);
        if codes.is_empty() {
            continue;
        }
        walker.begin();
        for (k, &code) in codes.iter().enumerate() {
            if !walker.feed(code, k + 1) {
                break;
            }
        }
        walker.end(start..end, Some(codes));
    }
}

/// Writes the codes of a simple word ([`scan_walk`]) to the start of `out`; their number, or
/// `None` when they do not fit.
#[inline]
pub(crate) fn simple_codes_into(word: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    let mut bytes = word.iter();
    while let Some(&b) = bytes.next() {
        *out.get_mut(n)? = if b < 0x80 {
            ASCII_CODE[b as usize]
        } else {
            cyrillic_code(b, bytes.next().copied().unwrap_or(0))
        };
        n += 1;
    }
    Some(n)
}

/// Appends the codes of a simple word ([`scan_walk`]) to `out`.
pub(crate) fn simple_codes(word: &[u8], out: &mut Vec<u8>) {
    out.reserve(word.len());
    let mut bytes = word.iter();
    while let Some(&b) = bytes.next() {
        out.push(if b < 0x80 {
            ASCII_CODE[b as usize]
        } else {
            cyrillic_code(b, bytes.next().copied().unwrap_or(0))
        });
    }
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
        fn the_walk_sees_the_words_and_codes_of_the_reference(
            text in "([a-zA-Z0-9а-яА-ЯёЁѐ-џЀ-Џ .,-]|\\PC){0,64}",
            stop in 0usize..6,
        ) {
            /// Takes at most `stop` codes of each word (all when 0) and records the words.
            struct Record<'t> {
                text: &'t str,
                stop: usize,
                fed: Vec<u8>,
                seen: Vec<(Range<usize>, Vec<u8>, Vec<u8>)>,
            }
            impl Walker for Record<'_> {
                fn begin(&mut self) {
                    self.fed.clear();
                }
                fn feed(&mut self, code: u8, depth: usize) -> bool {
                    assert_eq!(depth, self.fed.len() + 1);
                    self.fed.push(code);
                    self.stop == 0 || depth < self.stop
                }
                fn end(&mut self, range: Range<usize>, normalized: Option<&[u8]>) {
                    let all = match normalized {
                        Some(codes) => codes.to_vec(),
                        None => {
                            let word = &self.text.as_bytes()[range.clone()];
                            let mut codes = Vec::new();
                            simple_codes(word, &mut codes);
                            let mut fixed = [0u8; 8];
                            match simple_codes_into(word, &mut fixed) {
                                Some(n) => assert_eq!(&fixed[..n], &codes[..]),
                                None => assert!(codes.len() > fixed.len()),
                            }
                            codes
                        }
                    };
                    self.seen.push((range, all, self.fed.clone()));
                }
            }
            let mut walker = Record { text: &text, stop, fed: Vec::new(), seen: Vec::new() };
            scan_walk(&text, &mut Vec::new(), &mut String::new(), &mut walker);
            let want: Vec<(Range<usize>, Vec<u8>)> = reference_words(&text)
                .into_iter()
                .filter_map(|range| {
                    let mut code = Vec::new();
                    encode_into(&normalize_word(&text[range.clone()]), &mut code);
                    (!code.is_empty()).then_some((range, code))
                })
                .collect();
            proptest::prop_assert_eq!(walker.seen.len(), want.len());
            for ((range, all, fed), (want_range, want_codes)) in walker.seen.iter().zip(&want) {
                proptest::prop_assert_eq!(range, want_range);
                proptest::prop_assert_eq!(all, want_codes);
                let fed_len = if stop == 0 { want_codes.len() } else { stop.min(want_codes.len()) };
                proptest::prop_assert_eq!(&fed[..], &want_codes[..fed_len]);
            }
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
