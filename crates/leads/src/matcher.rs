//! The matching engine: every task's query compiled into one keyword automaton (a trie, the
//! goto function of an Aho-Corasick automaton, as a double array) plus a
//! small tree per task.
//!
//! How a post is matched ([`Matcher::match_post`]):
//!
//! 1. **Words.** The original text is split into words ([`crate::normalize`]); each word is
//!    lowered (ё→е, invisible characters and accents dropped) on the fly and written in the
//!    automaton's compact alphabet (one byte per Russian letter).
//! 2. **One automaton over every term.** The automaton holds, for every word of every task
//!    (minus words included), either its exact form (`!word`) or the start of its stem. It runs
//!    *anchored at each word start*, so a pattern only ever matches at a word boundary on the
//!    left, and the walk stops at the first byte no pattern continues with (most words cost a
//!    few steps). When a pattern ends inside the word:
//!    - an exact form matches when it is the whole word;
//!    - a stem matches when the word's own stem (Russian Snowball for words with a Cyrillic
//!      letter, English Porter2 for Latin words, none for digits) equals the term's stem. The
//!      pattern is the part of the stem the keyword spells out (`вакансия` → stem `ваканс`;
//!      `vacancy` → stem `vacanc`; English stems lose a final `e`/`i`/`y` in the pattern so
//!      `hope` also finds `hoping`). So a word matches a stem term when it *starts with that
//!      pattern and has the same stem* — every regular form does; an irregular form that does
//!      not share the pattern (`die` / `dying`) does not. The word is stemmed only when a
//!      pattern ended in it, at most once per word; what a word is an occurrence of is then
//!      remembered per thread (the word memo), so a word seen before costs one lookup.
//! 3. **Per-task evaluation** of the *candidate* tasks only: each task is indexed under its
//!    anchors — terms one of which must occur whenever the task matches (for AND the child
//!    with the least-used terms, for OR every alternative's, for a phrase its least-used
//!    word) — so a task `вакансия rust-разработчик` is not evaluated on every post with
//!    `вакансия`; and a candidate whose required terms (up to four of its rarest terms that
//!    occur in every post it matches) are not all in the post is dropped before its tree is
//!    looked at. Evaluation covers AND, OR, phrases (word positions `p, p+1, …`), order
//!    (increasing positions), minus terms, and regexes — which therefore only run on posts the
//!    automaton pre-selected for that task. A query that is only a regex is refused by the
//!    parser.
//! 4. For each task that matched: the matched terms (labels such as `вакансия`, `!senior`,
//!    `"rust developer"`, `/re/`) and their byte ranges in the **original** text.
//!
//! Terms are shared: two tasks with `вакансия` and `вакансии` use one stem term.

use crate::normalize::{
    Lang, Normalized, OffsetMap, Walker, encode_into, lang_of, normalize, normalize_word_into,
    scan_walk, simple_codes, simple_codes_into,
};
use crate::query::{Node, Query, Word, label};
use aho_corasick::automaton::Automaton;
use aho_corasick::automaton::StateID;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};
use regex::Regex;
use rust_stemmers::{Algorithm, Stemmer};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// At most this many regex matches are reported as spans per regex term.
const MAX_REGEX_SPANS: usize = 32;

/// One monitoring task as the engine sees it.
#[derive(Debug, Clone)]
pub struct TaskSpec<K> {
    /// The caller's task id.
    pub id: K,
    /// The parsed query.
    pub query: Query,
    /// "Ignore forwards": carried through to [`TaskMatch::ignore_forwards`]; the caller drops
    /// matches of forwarded posts for such tasks (the engine does not know what a forward is).
    pub ignore_forwards: bool,
}

/// A task that matched a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMatch<K> {
    /// The task id.
    pub task: K,
    /// The task's "ignore forwards" flag.
    pub ignore_forwards: bool,
    /// The positive terms that made the match, as labels (`вакансия`, `!senior`,
    /// `"rust developer"`, `[a b]`, `/re/`), sorted, without repeats.
    pub terms: Vec<String>,
    /// Where those terms are, as byte ranges of the original text, sorted by start (ranges of
    /// different terms may overlap).
    pub spans: Vec<MatchSpan>,
}

/// One highlighted place in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchSpan {
    /// Byte range in the original text (on character boundaries).
    pub range: Range<usize>,
    /// Index into [`TaskMatch::terms`].
    pub term: usize,
}

/// The terms of `after` that `before` (the same task's match of the previous version of the
/// post, if it matched) did not have. An edit yields a lead only when this is not empty.
pub fn new_terms<'a, K>(before: Option<&TaskMatch<K>>, after: &'a TaskMatch<K>) -> Vec<&'a str> {
    after
        .terms
        .iter()
        .filter(|t| before.is_none_or(|b| b.terms.binary_search(t).is_err()))
        .map(String::as_str)
        .collect()
}

/// The engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The automaton refused the pattern set (too many states).
    #[error("the keyword automaton could not be built: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
    /// The automaton cannot run anchored searches.
    #[error("the keyword automaton has no anchored start state")]
    NoAnchoredStart,
}

/// A term the automaton finds: an exact form or a stem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TermKey {
    Exact(String),
    Stem(String),
}

/// What to check when a pattern ends inside a word.
#[derive(Debug, Clone)]
enum Check {
    /// The pattern must be the whole word.
    Exact(u32),
    /// The word's stem must equal this stem (in the automaton's alphabet).
    Stem { term: u32, stem: Box<[u8]> },
}

/// A compiled query tree; leaves refer to global term ids.
#[derive(Debug)]
enum CNode {
    Seq { terms: Box<[u32]>, leaf: u32 },
    Ordered { seqs: Box<[Box<[u32]>]>, leaf: u32 },
    Regex { regex: Regex, leaf: u32 },
    And(Box<[CNode]>),
    Or(Box<[CNode]>),
    Not(Box<CNode>),
}

#[derive(Debug)]
struct CompiledTask<K> {
    id: K,
    ignore_forwards: bool,
    root: CNode,
    /// Label per leaf.
    labels: Vec<String>,
}

/// The matching engine over a set of tasks. Immutable; rebuild and swap through
/// [`crate::MatcherHandle`] when tasks change.
pub struct Matcher<K> {
    automaton: Option<(NFA, StateID)>,
    /// Per automaton pattern: what a match of it means.
    checks: Vec<Vec<Check>>,
    /// Per term: the tasks for which it is an anchor (a task can only match when one of its
    /// anchors occurs in the post), as one list: term `t`'s tasks are
    /// `anchor_list[anchor_start[t]..anchor_start[t + 1]]`.
    anchor_start: Vec<u32>,
    anchor_list: Vec<u32>,
    /// Per task: up to [`REQUIRED`] terms that occur in every post the task matches (the
    /// rarest ones; `u32::MAX` fills), checked before the task's tree is looked at.
    required: Vec<[u32; REQUIRED]>,
    tasks: Vec<CompiledTask<K>>,
    russian: Stemmer,
    english: Stemmer,
    /// Unique per matcher: what the per-thread word memo is about.
    generation: u64,
}

impl<K> std::fmt::Debug for Matcher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("tasks", &self.tasks.len())
            .field("terms", &self.term_count())
            .field("patterns", &self.checks.len())
            .finish()
    }
}

/// Builds the global tables while tasks are compiled.
struct Builder {
    terms: HashMap<TermKey, u32>,
    term_tasks: Vec<Vec<u32>>,
    patterns: HashMap<String, u32>,
    /// Patterns in the automaton's alphabet (see [`crate::normalize::encode_into`]).
    pattern_text: Vec<Vec<u8>>,
    checks: Vec<Vec<Check>>,
    russian: Stemmer,
    english: Stemmer,
}

impl Builder {
    fn term(&mut self, word: &Word, task: u32, positive: bool) -> u32 {
        let (key, pattern, stem) = if word.exact {
            (TermKey::Exact(word.text.clone()), word.text.clone(), None)
        } else {
            let lang = lang_of(&word.text);
            let stem = stem_with(&self.russian, &self.english, lang, &word.text).into_owned();
            let pattern = stem_pattern(&word.text, &stem, lang);
            (TermKey::Stem(stem.clone()), pattern, Some(stem))
        };
        let next = self.terms.len() as u32;
        let id = *self.terms.entry(key).or_insert(next);
        if id == next {
            self.term_tasks.push(Vec::new());
            let next_pattern = self.pattern_text.len() as u32;
            let pid = *self.patterns.entry(pattern.clone()).or_insert(next_pattern);
            if pid == next_pattern {
                let mut code = Vec::with_capacity(pattern.len());
                encode_into(&pattern, &mut code);
                self.pattern_text.push(code);
                self.checks.push(Vec::new());
            }
            let check = match stem {
                None => Check::Exact(id),
                Some(stem) => {
                    let mut code = Vec::with_capacity(stem.len());
                    encode_into(&stem, &mut code);
                    Check::Stem {
                        term: id,
                        stem: code.into_boxed_slice(),
                    }
                }
            };
            self.checks[pid as usize].push(check);
        }
        if positive {
            let tasks = &mut self.term_tasks[id as usize];
            if tasks.last() != Some(&task) {
                tasks.push(task);
            }
        }
        id
    }

    fn compile(
        &mut self,
        node: &Node,
        query: &Query,
        task: u32,
        positive: bool,
        labels: &mut Vec<String>,
    ) -> CNode {
        let leaf = |labels: &mut Vec<String>| {
            labels.push(label(node, query));
            (labels.len() - 1) as u32
        };
        match node {
            Node::Seq(words) => {
                let terms = words.iter().map(|w| self.term(w, task, positive)).collect();
                CNode::Seq {
                    terms,
                    leaf: leaf(labels),
                }
            }
            Node::Ordered(seqs) => {
                let seqs = seqs
                    .iter()
                    .map(|s| s.iter().map(|w| self.term(w, task, positive)).collect())
                    .collect();
                CNode::Ordered {
                    seqs,
                    leaf: leaf(labels),
                }
            }
            Node::Regex(i) => match query.regex(*i) {
                Some((regex, _)) => CNode::Regex {
                    regex: regex.clone(),
                    leaf: leaf(labels),
                },
                // The parser only makes indices of regexes it stored.
                None => CNode::Or(Box::new([])),
            },
            Node::And(children) => CNode::And(
                children
                    .iter()
                    .map(|c| self.compile(c, query, task, positive, labels))
                    .collect(),
            ),
            Node::Or(children) => CNode::Or(
                children
                    .iter()
                    .map(|c| self.compile(c, query, task, positive, labels))
                    .collect(),
            ),
            Node::Not(child) => {
                CNode::Not(Box::new(self.compile(child, query, task, false, labels)))
            }
        }
    }
}

/// The stem of a normalised word with the stemmer its script takes.
fn stem_with<'w>(russian: &Stemmer, english: &Stemmer, lang: Lang, word: &'w str) -> Cow<'w, str> {
    match lang {
        Lang::Russian => russian.stem(word),
        Lang::English => english.stem(word),
        Lang::None => Cow::Borrowed(word),
    }
}

/// Most words a thread's word memo holds before it starts over.
const MEMO_ENTRIES: usize = 1 << 16;

/// Words of at most this many code bytes are remembered by the word memo (longer ones, rare,
/// are checked every time).
const MEMO_WORD: usize = 23;

/// A word in the automaton's alphabet, stored inline (no pointer to follow on a lookup): its
/// length, then its codes, zero-padded (24 bytes, hashed as three words).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct WordKey {
    len: u8,
    codes: [u8; MEMO_WORD],
}

impl WordKey {
    fn new(codes: &[u8]) -> Option<WordKey> {
        let mut key = WordKey {
            len: u8::try_from(codes.len()).ok()?,
            codes: [0; MEMO_WORD],
        };
        key.codes.get_mut(..codes.len())?.copy_from_slice(codes);
        Some(key)
    }

    /// The key of a simple word ([`crate::normalize::scan_walk`]) of the original text.
    #[inline]
    fn simple(word: &[u8]) -> Option<WordKey> {
        let mut key = WordKey {
            len: 0,
            codes: [0; MEMO_WORD],
        };
        key.len = simple_codes_into(word, &mut key.codes)? as u8;
        Some(key)
    }
}

impl std::hash::Hash for WordKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut bytes = [0u8; 24];
        bytes[0] = self.len;
        bytes[1..].copy_from_slice(&self.codes);
        for chunk in bytes.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            state.write_u64(u64::from_le_bytes(word));
        }
    }
}

/// What the words a thread met mean to one matcher: word → the terms it is an occurrence of.
/// Words in posts follow Zipf's law, so most lookups hit, and a hit replaces the checks of
/// every pattern that ended in the word — stemming above all — by one lookup. Per thread (no
/// lock, matching never waits on another thread), bounded (cleared when full: a few MiB at
/// most), and started over when the thread matches with another matcher.
#[derive(Default)]
struct WordMemo {
    /// The matcher the memo is about ([`Matcher::generation`]).
    matcher: u64,
    /// Word → (start, count) of its terms in `terms`.
    words: HashMap<WordKey, (u32, u32), BuildHasherDefault<WordHasher>>,
    terms: Vec<u32>,
}

impl WordMemo {
    fn clear(&mut self) {
        self.words.clear();
        self.terms.clear();
    }
}

/// Tells matchers apart in the per-thread word memo.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The per-thread buffers of [`Matcher::match_post`], reused from post to post so matching a
/// post allocates nothing unless it matches (or meets a word never seen before).
#[derive(Default)]
struct Scratch {
    /// Byte ranges of the post's words in the original text.
    words: Vec<Range<usize>>,
    /// (term, word index) of every term occurrence.
    hits: Vec<(u32, u32)>,
    /// Patterns that ended inside the current word: (pattern, depth in code bytes).
    pending: Vec<(usize, usize)>,
    /// The current word in the automaton's alphabet (when it is not simple).
    codes: Vec<u8>,
    /// A word being normalised.
    word: String,
    /// A word being stemmed.
    stem_word: String,
    /// A stem in the automaton's alphabet.
    stem: Vec<u8>,
    /// Tasks to evaluate.
    candidates: Vec<u32>,
    /// The terms present in the post, a bit per term (all zero between posts).
    present: Vec<u64>,
    memo: WordMemo,
}

thread_local! {
    /// Per thread: no lock, and matching never waits on another thread.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// FxHash-style multiply-rotate hasher for short words.
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The automaton pattern of a stem term: the part of the stem the keyword spells out; for
/// English, without a final `e`, `i` or `y`, which Porter2 adds or rewrites (`hope`/`hoping`,
/// `happy`/`happiness`). Never empty.
pub(crate) fn stem_pattern(word: &str, stem: &str, lang: Lang) -> String {
    let common: usize = word
        .chars()
        .zip(stem.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let mut pattern = &word[..common];
    if lang == Lang::English && pattern.chars().count() > 2 && pattern.ends_with(['e', 'i', 'y']) {
        pattern = &pattern[..pattern.len() - 1];
    }
    if pattern.is_empty() {
        // A stem that shares nothing with its word: fall back to the word's first letter.
        let first = word.chars().next().map_or(0, char::len_utf8);
        pattern = &word[..first];
    }
    pattern.to_string()
}

/// One step of the anchored walk: feeds `code`, records the patterns that end here and
/// started at the word start (`depth` code bytes ago) as (pattern, depth); false once no
/// pattern continues.
#[inline(always)]
fn step(
    nfa: &NFA,
    sid: &mut StateID,
    code: u8,
    depth: usize,
    pending: &mut Vec<(usize, usize)>,
) -> bool {
    *sid = nfa.next_state(Anchored::Yes, *sid, code);
    if nfa.is_special(*sid) {
        if nfa.is_dead(*sid) {
            return false;
        }
        if nfa.is_match(*sid) {
            for m in 0..nfa.match_len(*sid) {
                let pid = nfa.match_pattern(*sid, m);
                // Match states also carry patterns that end here but started later (copied
                // along failure links for unanchored searches); only those starting at the
                // word start count.
                if nfa.pattern_len(pid) == depth {
                    pending.push((pid.as_usize(), depth));
                }
            }
        }
    }
    true
}

/// What one post looks like to the evaluator.
struct Post<'a> {
    /// The original text.
    text: &'a str,
    /// The normalised text and its map back, computed when a regex needs it.
    norm: std::cell::OnceCell<(Normalized, Option<OffsetMap>)>,
    /// Byte ranges of the words in the original text.
    words: &'a [Range<usize>],
    /// (term, word index), sorted.
    hits: &'a [(u32, u32)],
}

impl Post<'_> {
    fn norm(&self) -> &(Normalized, Option<OffsetMap>) {
        self.norm.get_or_init(|| {
            let norm = normalize(self.text);
            let map = norm.offset_map(self.text);
            (norm, map)
        })
    }

    fn positions(&self, term: u32) -> &[(u32, u32)] {
        let start = self.hits.partition_point(|&(t, _)| t < term);
        let end = self.hits.partition_point(|&(t, _)| t <= term);
        &self.hits[start..end]
    }

    fn has(&self, term: u32, word: u32) -> bool {
        self.hits.binary_search(&(term, word)).is_ok()
    }

    /// Word indices where the sequence starts.
    fn seq_starts<'s>(&'s self, seq: &'s [u32]) -> impl Iterator<Item = u32> + 's {
        let first = seq.first().copied().unwrap_or(u32::MAX);
        self.positions(first).iter().map(|&(_, p)| p).filter(|&p| {
            seq.iter()
                .enumerate()
                .skip(1)
                .all(|(k, &t)| self.has(t, p + k as u32))
        })
    }

    /// The first start of each sequence, in order, each after the end of the previous one.
    fn ordered(&self, seqs: &[Box<[u32]>]) -> Option<Vec<(u32, u32)>> {
        let mut chosen = Vec::with_capacity(seqs.len());
        let mut next = 0u32;
        for seq in seqs {
            let start = self.seq_starts(seq).find(|&p| p >= next)?;
            let end = start + seq.len() as u32;
            chosen.push((start, end));
            next = end;
        }
        Some(chosen)
    }

    fn eval(&self, node: &CNode) -> bool {
        match node {
            CNode::Seq { terms, .. } => self.seq_starts(terms).next().is_some(),
            CNode::Ordered { seqs, .. } => self.ordered(seqs).is_some(),
            CNode::Regex { regex, .. } => regex.is_match(&self.norm().0.text),
            CNode::And(children) => children.iter().all(|c| self.eval(c)),
            CNode::Or(children) => children.iter().any(|c| self.eval(c)),
            CNode::Not(child) => !self.eval(child),
        }
    }

    /// The spans (original text) of the positive leaves that made `node` true.
    fn collect(&self, node: &CNode, out: &mut Vec<(Range<usize>, u32)>) {
        let words = |from: u32, to: u32| -> Option<Range<usize>> {
            let a = self.words.get(from as usize)?;
            let b = self.words.get(to as usize - 1)?;
            Some(a.start..b.end)
        };
        match node {
            CNode::Seq { terms, leaf } => {
                for start in self.seq_starts(terms) {
                    if let Some(r) = words(start, start + terms.len() as u32) {
                        out.push((r, *leaf));
                    }
                }
            }
            CNode::Ordered { seqs, leaf } => {
                for (start, end) in self.ordered(seqs).unwrap_or_default() {
                    if let Some(r) = words(start, end) {
                        out.push((r, *leaf));
                    }
                }
            }
            CNode::Regex { regex, leaf } => {
                let (norm, map) = self.norm();
                for m in regex
                    .find_iter(&norm.text)
                    .filter(|m| !m.is_empty())
                    .take(MAX_REGEX_SPANS)
                {
                    let range = norm.to_original(map.as_ref(), m.range(), self.text.len());
                    out.push((range, *leaf));
                }
            }
            CNode::And(children) => {
                for c in children.iter() {
                    self.collect(c, out);
                }
            }
            CNode::Or(children) => {
                for c in children.iter().filter(|c| self.eval(c)) {
                    self.collect(c, out);
                }
            }
            CNode::Not(_) => {}
        }
    }
}

/// How many required terms per task are checked before its tree ([`Matcher::match_post`]).
const REQUIRED: usize = 4;

/// Terms that occur in every post `node` is true of: every word of a phrase or ordered group,
/// the union over an AND, the terms common to every alternative of an OR; none for minus terms
/// and regexes. Sorted, without repeats.
fn required_terms(node: &CNode) -> Vec<u32> {
    let mut terms: Vec<u32> = match node {
        CNode::Seq { terms, .. } => terms.to_vec(),
        CNode::Ordered { seqs, .. } => seqs.iter().flat_map(|s| s.iter().copied()).collect(),
        CNode::Regex { .. } | CNode::Not(_) => Vec::new(),
        CNode::And(children) => children.iter().flat_map(required_terms).collect(),
        CNode::Or(children) => {
            let mut alternatives = children.iter().map(required_terms);
            let first = alternatives.next().unwrap_or_default();
            alternatives.fold(first, |common, other| {
                common
                    .into_iter()
                    .filter(|t| other.binary_search(t).is_ok())
                    .collect()
            })
        }
    };
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// Per term, the tasks it anchors. A task's anchors are terms one of which occurs whenever the
/// task matches: for AND the cheapest child's anchors, for OR the union over the alternatives,
/// for a phrase or ordered group its least common word ("common" = used by the most tasks, a
/// proxy for how often it occurs in posts). So a task with a popular word (`вакансия`) and a
/// rare one is only evaluated on posts with the rare one.
fn anchor_index<K>(tasks: &[CompiledTask<K>], term_tasks: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let popularity = |t: u32| term_tasks.get(t as usize).map_or(0, Vec::len);
    let mut index = vec![Vec::new(); term_tasks.len()];
    for (i, task) in tasks.iter().enumerate() {
        let anchors = match anchors(&task.root, &popularity) {
            Some((anchors, _)) => anchors,
            // Not reachable for parsed queries (each requires a word); index every positive
            // term so such a task is still evaluated.
            None => (0..term_tasks.len() as u32)
                .filter(|&t| term_tasks[t as usize].binary_search(&(i as u32)).is_ok())
                .collect(),
        };
        for t in anchors {
            if let Some(list) = index.get_mut(t as usize)
                && list.last() != Some(&(i as u32))
            {
                list.push(i as u32);
            }
        }
    }
    index
}

/// The anchors of a node and their cost (summed popularity), or `None` when the node can be
/// true without any positive word (minus terms, regexes).
fn anchors(node: &CNode, popularity: &impl Fn(u32) -> usize) -> Option<(Vec<u32>, usize)> {
    let rarest = |terms: &mut dyn Iterator<Item = u32>| {
        terms
            .min_by_key(|&t| popularity(t))
            .map(|t| (vec![t], popularity(t)))
    };
    match node {
        CNode::Seq { terms, .. } => rarest(&mut terms.iter().copied()),
        CNode::Ordered { seqs, .. } => rarest(&mut seqs.iter().flat_map(|s| s.iter().copied())),
        CNode::Regex { .. } | CNode::Not(_) => None,
        CNode::And(children) => children
            .iter()
            .filter_map(|c| anchors(c, popularity))
            .min_by_key(|(_, cost)| *cost),
        CNode::Or(children) => {
            let mut all = Vec::new();
            let mut cost = 0;
            for c in children.iter() {
                let (a, k) = anchors(c, popularity)?;
                all.extend(a);
                cost += k;
            }
            all.sort_unstable();
            all.dedup();
            Some((all, cost))
        }
    }
}

impl<K: Clone> Matcher<K> {
    /// Compiles `tasks` into one engine. Cost grows with the number of distinct terms
    /// (tens of milliseconds at 10,000 keywords, see `BENCHMARKS.md`); call it off the hot path.
    pub fn build(tasks: impl IntoIterator<Item = TaskSpec<K>>) -> Result<Matcher<K>, BuildError> {
        let mut builder = Builder {
            terms: HashMap::new(),
            term_tasks: Vec::new(),
            patterns: HashMap::new(),
            pattern_text: Vec::new(),
            checks: Vec::new(),
            russian: Stemmer::create(Algorithm::Russian),
            english: Stemmer::create(Algorithm::English),
        };
        let mut compiled = Vec::new();
        for (index, spec) in tasks.into_iter().enumerate() {
            let mut labels = Vec::new();
            let root = builder.compile(
                spec.query.root(),
                &spec.query,
                index as u32,
                true,
                &mut labels,
            );
            compiled.push(CompiledTask {
                id: spec.id,
                ignore_forwards: spec.ignore_forwards,
                root,
                labels,
            });
        }
        let automaton = if builder.pattern_text.is_empty() {
            None
        } else {
            let nfa = NFA::builder()
                .match_kind(MatchKind::Standard)
                .build(&builder.pattern_text)?;
            let start = nfa
                .start_state(Anchored::Yes)
                .map_err(|_| BuildError::NoAnchoredStart)?;
            Some((nfa, start))
        };
        let anchor_tasks = anchor_index(&compiled, &builder.term_tasks);
        let mut anchor_start = Vec::with_capacity(anchor_tasks.len() + 1);
        let mut anchor_list = Vec::new();
        for tasks in &anchor_tasks {
            anchor_start.push(anchor_list.len() as u32);
            anchor_list.extend_from_slice(tasks);
        }
        anchor_start.push(anchor_list.len() as u32);
        let popularity = |t: u32| builder.term_tasks.get(t as usize).map_or(0, Vec::len);
        let required = compiled
            .iter()
            .map(|task| {
                let mut terms = required_terms(&task.root);
                terms.sort_unstable_by_key(|&t| (popularity(t), t));
                let mut slots = [u32::MAX; REQUIRED];
                for (slot, term) in slots.iter_mut().zip(terms) {
                    *slot = term;
                }
                slots
            })
            .collect();
        Ok(Matcher {
            automaton,
            checks: builder.checks,
            anchor_start,
            anchor_list,
            required,
            tasks: compiled,
            russian: builder.russian,
            english: builder.english,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }
}

impl<K> Matcher<K> {
    /// An engine with no tasks (matches nothing).
    pub fn empty() -> Matcher<K> {
        Matcher {
            automaton: None,
            checks: Vec::new(),
            anchor_start: vec![0],
            anchor_list: Vec::new(),
            required: Vec::new(),
            tasks: Vec::new(),
            russian: Stemmer::create(Algorithm::Russian),
            english: Stemmer::create(Algorithm::English),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The number of tasks.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// True when the task `id` is in this matcher (a linear scan: for the rare check after a
    /// task changed, not per post).
    pub fn has_task(&self, id: &K) -> bool
    where
        K: PartialEq,
    {
        self.tasks.iter().any(|t| t.id == *id)
    }

    /// The number of distinct terms (stems and exact forms) over all tasks.
    pub fn term_count(&self) -> usize {
        self.anchor_start.len().saturating_sub(1)
    }

    /// The number of automaton patterns.
    pub fn pattern_count(&self) -> usize {
        self.checks.len()
    }

    /// The automaton's heap memory, bytes.
    pub fn automaton_bytes(&self) -> usize {
        self.automaton.as_ref().map_or(0, |(a, _)| a.memory_usage())
    }

    /// Splits `text` into words (their original byte ranges go to `scratch.words`) and finds
    /// the terms each word is an occurrence of: (term, word index) into `scratch.hits`.
    fn scan(&self, text: &str, scratch: &mut Scratch) {
        let Some((nfa, start)) = &self.automaton else {
            return;
        };
        let Scratch {
            words,
            hits,
            pending,
            codes,
            word,
            stem_word,
            stem,
            memo,
            ..
        } = scratch;
        if memo.matcher != self.generation {
            memo.clear();
            memo.matcher = self.generation;
        }
        let mut walk = Walk {
            matcher: self,
            nfa,
            start: *start,
            sid: *start,
            text,
            words,
            hits,
            pending,
            stem_word,
            stem,
            memo,
        };
        scan_walk(text, codes, word, &mut walk);
    }
}

/// The automaton's walk over the words of one post ([`Matcher::scan`]).
struct Walk<'a, K> {
    matcher: &'a Matcher<K>,
    nfa: &'a NFA,
    start: StateID,
    sid: StateID,
    text: &'a str,
    words: &'a mut Vec<Range<usize>>,
    hits: &'a mut Vec<(u32, u32)>,
    pending: &'a mut Vec<(usize, usize)>,
    stem_word: &'a mut String,
    stem: &'a mut Vec<u8>,
    memo: &'a mut WordMemo,
}

impl<K> Walker for Walk<'_, K> {
    #[inline(always)]
    fn begin(&mut self) {
        self.sid = self.start;
        self.pending.clear();
    }

    #[inline(always)]
    fn feed(&mut self, code: u8, depth: usize) -> bool {
        step(self.nfa, &mut self.sid, code, depth, self.pending)
    }

    #[inline(always)]
    fn end(&mut self, range: Range<usize>, normalized: Option<&[u8]>) {
        let index = self.words.len() as u32;
        self.words.push(range.clone());
        if !self.pending.is_empty() {
            self.resolve(index, range, normalized);
        }
    }
}

impl<K> Walk<'_, K> {
    /// The terms of the patterns that ended inside word `index` (most words have none): from
    /// the word memo, or checked and remembered.
    #[inline(never)]
    fn resolve(&mut self, index: u32, range: Range<usize>, normalized: Option<&[u8]>) {
        let word = &self.text.as_bytes()[range.clone()];
        let key = match normalized {
            Some(codes) => WordKey::new(codes),
            None => WordKey::simple(word),
        };
        let Some(key) = key else {
            // Too long for the memo (rare): checked every time.
            let mut codes = Vec::new();
            match normalized {
                Some(normalized) => codes.extend_from_slice(normalized),
                None => simple_codes(word, &mut codes),
            }
            self.check(index, range, &codes);
            return;
        };
        if let Some(&(start, count)) = self.memo.words.get(&key) {
            let terms = self
                .memo
                .terms
                .get(start as usize..(start + count) as usize)
                .unwrap_or(&[]);
            self.hits.extend(terms.iter().map(|&term| (term, index)));
            return;
        }
        let first = self.hits.len();
        self.check(index, range, &key.codes[..usize::from(key.len)]);
        let memo = &mut *self.memo;
        if memo.words.len() >= MEMO_ENTRIES {
            memo.clear();
        }
        let start = memo.terms.len() as u32;
        memo.terms
            .extend(self.hits[first..].iter().map(|&(term, _)| term));
        memo.words
            .insert(key, (start, memo.terms.len() as u32 - start));
    }

    /// Checks the patterns that ended inside word `index` (normalised: `codes`).
    fn check(&mut self, index: u32, range: Range<usize>, codes: &[u8]) {
        let mut stemmed = false;
        for &(pid, depth) in self.pending.iter() {
            for check in self.matcher.checks.get(pid).map_or(&[][..], Vec::as_slice) {
                match *check {
                    Check::Exact(term) => {
                        if depth == codes.len() {
                            self.hits.push((term, index));
                        }
                    }
                    Check::Stem {
                        term,
                        stem: ref want,
                    } => {
                        if !stemmed {
                            stemmed = true;
                            self.stem_word.clear();
                            normalize_word_into(&self.text[range.clone()], self.stem_word);
                            let stem = stem_with(
                                &self.matcher.russian,
                                &self.matcher.english,
                                lang_of(self.stem_word),
                                self.stem_word,
                            );
                            self.stem.clear();
                            encode_into(&stem, self.stem);
                        }
                        if self.stem[..] == want[..] {
                            self.hits.push((term, index));
                        }
                    }
                }
            }
        }
    }
}

impl<K: Clone> Matcher<K> {
    /// Matches one post against every task. Lock-free, and allocation-free unless a task
    /// matches; the result is in task order.
    pub fn match_post(&self, text: &str) -> Vec<TaskMatch<K>> {
        if self.tasks.is_empty() {
            return Vec::new();
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.match_with(text, &mut scratch),
            // Re-entered on this thread (not possible today): private buffers.
            Err(_) => self.match_with(text, &mut Scratch::default()),
        })
    }

    fn match_with(&self, text: &str, scratch: &mut Scratch) -> Vec<TaskMatch<K>> {
        scratch.words.clear();
        scratch.hits.clear();
        self.scan(text, scratch);
        let hits = &mut scratch.hits;
        if hits.is_empty() {
            return Vec::new();
        }
        hits.sort_unstable();
        hits.dedup();
        // The terms present (a bitset, cleared again below) and the tasks they anchor.
        let present = &mut scratch.present;
        let words = self.term_count().div_ceil(64);
        if present.len() < words {
            present.resize(words, 0);
        }
        let candidates = &mut scratch.candidates;
        candidates.clear();
        let mut last = None;
        for &(term, _) in hits.iter() {
            if last != Some(term) {
                last = Some(term);
                if let Some(bits) = present.get_mut(term as usize / 64) {
                    *bits |= 1 << (term % 64);
                }
                let from = self.anchor_start.get(term as usize).copied().unwrap_or(0);
                let to = self
                    .anchor_start
                    .get(term as usize + 1)
                    .copied()
                    .unwrap_or(0);
                candidates.extend_from_slice(
                    self.anchor_list
                        .get(from as usize..to as usize)
                        .unwrap_or(&[]),
                );
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let has = |term: u32| {
            term == u32::MAX
                || present
                    .get(term as usize / 64)
                    .is_some_and(|bits| bits & (1 << (term % 64)) != 0)
        };
        candidates.retain(|&index| {
            self.required
                .get(index as usize)
                .is_some_and(|required| required.iter().all(|&t| has(t)))
        });
        for &(term, _) in hits.iter() {
            if let Some(bits) = present.get_mut(term as usize / 64) {
                *bits = 0;
            }
        }
        let post = Post {
            text,
            norm: std::cell::OnceCell::new(),
            words: &scratch.words,
            hits,
        };
        let mut out = Vec::new();
        for &index in candidates.iter() {
            let Some(task) = self.tasks.get(index as usize) else {
                continue;
            };
            if !post.eval(&task.root) {
                continue;
            }
            out.push(describe(task, &post));
        }
        out
    }
}

/// The match of a task that evaluated true: its terms and spans in the original text.
fn describe<K: Clone>(task: &CompiledTask<K>, post: &Post<'_>) -> TaskMatch<K> {
    let mut raw = Vec::new();
    post.collect(&task.root, &mut raw);
    let mut terms: Vec<String> = raw
        .iter()
        .filter_map(|(_, leaf)| task.labels.get(*leaf as usize).cloned())
        .collect();
    terms.sort();
    terms.dedup();
    let mut spans: Vec<MatchSpan> = raw
        .into_iter()
        .filter_map(|(range, leaf)| {
            let label = task.labels.get(leaf as usize)?;
            let term = terms.binary_search(label).ok()?;
            Some(MatchSpan { range, term })
        })
        .collect();
    spans.sort_by_key(|s| (s.range.start, s.range.end, s.term));
    spans.dedup();
    TaskMatch {
        task: task.id.clone(),
        ignore_forwards: task.ignore_forwards,
        terms,
        spans,
    }
}
