//! The query language: a parser from the text a user types to a checked [`Query`].
//!
//! The operators are those of Yandex Direct as TGStat applies them to Telegram posts (see
//! `docs/leads.md` for the table with examples):
//!
//! | syntax | meaning |
//! |---|---|
//! | `word` | the word in any form (Russian or English stemming) |
//! | `!word`, `=word` | this exact form only |
//! | `+word` | the same as `word` (stop words are never dropped, so `+` changes nothing) |
//! | `-word`, `-!word` | the post must not contain the word (any form / this form) |
//! | `"a b"` | the words adjacent, in this order (each in any form; `!"a b"` or `="a b"`: exact forms) |
//! | `[a b c]` | the words in this order, other words allowed between them |
//! | `(a \| b)` | a group; `\|` is OR and binds looser than the space (AND) |
//! | `/regex/` | a regular expression on the normalised text (`\/` for a slash) |
//!
//! `-` applies to any term: `-"a b"`, `-[a b]`, `-(a | b)`, `-/re/`. A bare word with
//! punctuation inside (`rust-разработчик`, `ci/cd`) is a phrase of its words.
//!
//! Every query must require at least one word outside minus terms and regexes — in every
//! alternative of an `|` — because a task is only evaluated on posts where the automaton found
//! one of its words (regexes never run on every post).
//!
//! Errors carry the stable code `query_invalid`, a 0-based character position, and a short
//! machine-readable `expected` value.

use crate::normalize::tokens;
use regex::{Regex, RegexBuilder};
use std::fmt;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Most words (each word of a phrase counts) plus regexes in one query.
pub const MAX_TERMS: usize = 50;
/// Deepest nesting of parentheses.
pub const MAX_DEPTH: usize = 8;
/// Most regexes in one query.
pub const MAX_REGEXES: usize = 5;
/// Compiled size limit of one regex (`RegexBuilder::size_limit`), bytes.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy DFA cache limit of one regex (`RegexBuilder::dfa_size_limit`), bytes.
pub const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// The error code every query error answers with at the API edge.
pub const QUERY_INVALID: &str = "query_invalid";

/// A query that did not parse, or broke a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at {position}")]
pub struct QueryError {
    /// What went wrong.
    pub kind: QueryErrorKind,
    /// 0-based character (not byte) position in the query where it went wrong.
    pub position: usize,
}

/// The ways a query can be refused; each has an English message and an `expected` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryErrorKind {
    /// A syntax error: something else was expected here.
    #[error("expected {}", .0.describe())]
    Expected(Expected),
    /// The query is longer than [`MAX_QUERY_CHARS`].
    #[error("the query is {chars} characters long, at most {max} are allowed")]
    TooLong { chars: usize, max: usize },
    /// More than [`MAX_TERMS`] words and regexes.
    #[error("the query has more than {max} words and regexes")]
    TooManyTerms { max: usize },
    /// Parentheses nested deeper than [`MAX_DEPTH`].
    #[error("parentheses are nested deeper than {max} levels")]
    TooDeep { max: usize },
    /// More than [`MAX_REGEXES`] regexes.
    #[error("the query has more than {max} regexes")]
    TooManyRegexes { max: usize },
    /// The regex does not compile.
    #[error("invalid regex: {detail}")]
    RegexInvalid { detail: String },
    /// The regex compiles to more than [`REGEX_SIZE_LIMIT`] bytes.
    #[error("the regex is too large once compiled (limit {limit} bytes)")]
    RegexTooLarge { limit: usize },
    /// Some alternative has no word outside minus terms and regexes.
    #[error(
        "the query needs a word (outside minus terms and regexes) in every alternative, regexes only run on posts a word selected"
    )]
    NeedsWord,
}

/// What the parser expected where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// `)` closing a group.
    CloseParen,
    /// `]` closing an ordered group.
    CloseBracket,
    /// `"` closing a phrase.
    CloseQuote,
    /// `/` closing a regex.
    CloseSlash,
    /// A word (after `!`, `=`, `+`, inside a phrase, ...).
    Word,
    /// Any term: a word, phrase, ordered group, group or regex.
    Term,
    /// The end of the query (an unmatched `)` or `]`).
    End,
}

impl Expected {
    /// The short machine-readable form.
    pub fn code(self) -> &'static str {
        match self {
            Expected::CloseParen => ")",
            Expected::CloseBracket => "]",
            Expected::CloseQuote => "\"",
            Expected::CloseSlash => "/",
            Expected::Word => "word",
            Expected::Term => "term",
            Expected::End => "end_of_query",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expected::CloseParen => "\")\"",
            Expected::CloseBracket => "\"]\"",
            Expected::CloseQuote => "a closing '\"'",
            Expected::CloseSlash => "a closing \"/\"",
            Expected::Word => "a word",
            Expected::Term => "a word, phrase, group or regex",
            Expected::End => "the end of the query",
        }
    }
}

impl QueryError {
    /// The stable error code (`query_invalid`) for every query error.
    pub fn code(&self) -> &'static str {
        QUERY_INVALID
    }

    /// A short machine-readable description of what would have been accepted.
    pub fn expected(&self) -> &'static str {
        match &self.kind {
            QueryErrorKind::Expected(e) => e.code(),
            QueryErrorKind::TooLong { .. } => "shorter_query",
            QueryErrorKind::TooManyTerms { .. } => "fewer_terms",
            QueryErrorKind::TooDeep { .. } => "less_nesting",
            QueryErrorKind::TooManyRegexes { .. } => "fewer_regexes",
            QueryErrorKind::RegexInvalid { .. } => "valid_regex",
            QueryErrorKind::RegexTooLarge { .. } => "smaller_regex",
            QueryErrorKind::NeedsWord => "word",
        }
    }

    fn at(kind: QueryErrorKind, position: usize) -> Self {
        QueryError { kind, position }
    }

    fn expected_at(e: Expected, position: usize) -> Self {
        QueryError::at(QueryErrorKind::Expected(e), position)
    }
}

/// One word of a query, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Word {
    /// The normalised word (lowercase, ё→е).
    pub text: String,
    /// `!word` / `=word`: only this form matches.
    pub exact: bool,
}

/// A parsed query's tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// Words adjacent and in this order; one word is a plain word term.
    Seq(Vec<Word>),
    /// Sequences in this order, other words allowed between them (`[a b c]`).
    Ordered(Vec<Vec<Word>>),
    /// A regex, index into [`Query::regexes`].
    Regex(usize),
    /// Every child.
    And(Vec<Node>),
    /// Any child.
    Or(Vec<Node>),
    /// Not the child (minus term).
    Not(Box<Node>),
}

/// A parsed, checked query.
#[derive(Debug, Clone)]
pub struct Query {
    source: String,
    root: Node,
    regexes: Vec<(Regex, String)>,
}

impl Query {
    /// Parses and checks `text`.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let chars = text.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(QueryError::at(
                QueryErrorKind::TooLong {
                    chars,
                    max: MAX_QUERY_CHARS,
                },
                MAX_QUERY_CHARS,
            ));
        }
        let mut parser = Parser {
            chars: text.chars().collect(),
            pos: 0,
            terms: 0,
            regexes: Vec::new(),
        };
        let root = parser.parse_or(0)?;
        parser.skip_ws();
        if parser.pos < parser.chars.len() {
            let e = match parser.chars[parser.pos] {
                ')' | ']' => Expected::End,
                _ => Expected::Term,
            };
            return Err(QueryError::expected_at(e, parser.pos));
        }
        if !requires_word(&root) {
            return Err(QueryError::at(QueryErrorKind::NeedsWord, 0));
        }
        Ok(Query {
            source: text.to_string(),
            root,
            regexes: parser.regexes,
        })
    }

    /// The text the query was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The compiled regexes with their source (as written between the slashes).
    pub fn regexes(&self) -> impl Iterator<Item = (&Regex, &str)> {
        self.regexes.iter().map(|(r, s)| (r, s.as_str()))
    }

    pub(crate) fn regex(&self, i: usize) -> Option<&(Regex, String)> {
        self.regexes.get(i)
    }
}

/// Whether `node` can only be true when some positive word term occurs.
fn requires_word(node: &Node) -> bool {
    match node {
        Node::Seq(_) | Node::Ordered(_) => true,
        Node::Regex(_) | Node::Not(_) => false,
        Node::And(children) => children.iter().any(requires_word),
        Node::Or(children) => children.iter().all(requires_word),
    }
}

/// The display label of a leaf, as it appears in matched terms: `вакансия`, `!вакансия`,
/// `"rust developer"`, `[a b c]`, `/re/`.
pub(crate) fn label(node: &Node, query: &Query) -> String {
    fn word(w: &Word) -> String {
        if w.exact {
            format!("!{}", w.text)
        } else {
            w.text.clone()
        }
    }
    fn seq(words: &[Word]) -> String {
        words.iter().map(word).collect::<Vec<_>>().join(" ")
    }
    match node {
        Node::Seq(words) if words.len() == 1 => word(&words[0]),
        Node::Seq(words) => format!("\"{}\"", seq(words)),
        Node::Ordered(seqs) => {
            let parts: Vec<String> = seqs
                .iter()
                .map(|s| {
                    if s.len() == 1 {
                        seq(s)
                    } else {
                        format!("\"{}\"", seq(s))
                    }
                })
                .collect();
            format!("[{}]", parts.join(" "))
        }
        Node::Regex(i) => format!("/{}/", query.regex(*i).map_or("", |(_, s)| s.as_str())),
        Node::And(_) | Node::Or(_) | Node::Not(_) => String::new(),
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    terms: usize,
    regexes: Vec<(Regex, String)>,
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '[' | ']' | '(' | ')' | '|')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn count_terms(&mut self, n: usize, at: usize) -> Result<(), QueryError> {
        self.terms += n;
        if self.terms > MAX_TERMS {
            return Err(QueryError::at(
                QueryErrorKind::TooManyTerms { max: MAX_TERMS },
                at,
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut branches = vec![self.parse_and(depth)?];
        loop {
            self.skip_ws();
            if self.peek() != Some('|') {
                break;
            }
            self.pos += 1;
            branches.push(self.parse_and(depth)?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::And(Vec::new()))
        } else {
            Node::Or(branches)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(')') | Some('|') | Some(']') => break,
                Some(_) => items.push(self.parse_unary(depth)?),
            }
        }
        match items.len() {
            0 => Err(QueryError::expected_at(Expected::Term, self.pos)),
            1 => Ok(items.pop().unwrap_or(Node::And(Vec::new()))),
            _ => Ok(Node::And(items)),
        }
    }

    fn parse_unary(&mut self, depth: usize) -> Result<Node, QueryError> {
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                if self.peek() == Some('-') {
                    return Err(QueryError::expected_at(Expected::Term, self.pos));
                }
                let inner = self.parse_atom(depth)?;
                Ok(Node::Not(Box::new(inner)))
            }
            Some('+') => {
                self.pos += 1;
                self.parse_bare(false, Expected::Word)
            }
            _ => self.parse_atom(depth),
        }
    }

    fn parse_atom(&mut self, depth: usize) -> Result<Node, QueryError> {
        let Some(c) = self.peek() else {
            return Err(QueryError::expected_at(Expected::Term, self.pos));
        };
        match c {
            '!' | '=' => {
                self.pos += 1;
                match self.peek() {
                    Some('"') => self.parse_phrase(true),
                    Some('[') => self.parse_ordered(true),
                    _ => self.parse_bare(true, Expected::Word),
                }
            }
            '"' => self.parse_phrase(false),
            '[' => self.parse_ordered(false),
            '(' => {
                let open = self.pos;
                if depth + 1 > MAX_DEPTH {
                    return Err(QueryError::at(
                        QueryErrorKind::TooDeep { max: MAX_DEPTH },
                        open,
                    ));
                }
                self.pos += 1;
                let inner = self.parse_or(depth + 1)?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err(QueryError::expected_at(Expected::CloseParen, self.pos));
                }
                self.pos += 1;
                Ok(inner)
            }
            '/' => self.parse_regex(),
            ')' | ']' | '|' => Err(QueryError::expected_at(Expected::Term, self.pos)),
            _ => self.parse_bare(false, Expected::Term),
        }
    }

    /// Reads a bare word up to a delimiter; its words (usually one) become a sequence.
    fn read_bare(&mut self, exact: bool, missing: Expected) -> Result<Vec<Word>, QueryError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !ends_word(c)) {
            self.pos += 1;
        }
        let raw: String = self.chars[start..self.pos].iter().collect();
        let seq: Vec<Word> = tokens(&raw)
            .into_iter()
            .map(|text| Word { text, exact })
            .collect();
        if seq.is_empty() {
            return Err(QueryError::expected_at(missing, start));
        }
        self.count_terms(seq.len(), start)?;
        Ok(seq)
    }

    fn parse_bare(&mut self, exact: bool, missing: Expected) -> Result<Node, QueryError> {
        Ok(Node::Seq(self.read_bare(exact, missing)?))
    }

    /// The items of a phrase or ordered group up to `close`.
    fn read_items(
        &mut self,
        all_exact: bool,
        close: char,
        missing_close: Expected,
    ) -> Result<Vec<Vec<Word>>, QueryError> {
        self.pos += 1; // the opening delimiter
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(QueryError::expected_at(missing_close, self.pos)),
                Some(c) if c == close => {
                    if items.is_empty() {
                        return Err(QueryError::expected_at(Expected::Word, self.pos));
                    }
                    self.pos += 1;
                    return Ok(items);
                }
                Some('"') if close == ']' => {
                    let phrase = self.read_items(all_exact, '"', Expected::CloseQuote)?;
                    items.push(phrase.into_iter().flatten().collect());
                }
                Some('!' | '=') if close == ']' && self.chars.get(self.pos + 1) == Some(&'"') => {
                    self.pos += 1;
                    let phrase = self.read_items(true, '"', Expected::CloseQuote)?;
                    items.push(phrase.into_iter().flatten().collect());
                }
                Some('!' | '=') => {
                    self.pos += 1;
                    items.push(self.read_item(true, close)?);
                }
                Some('+') => {
                    self.pos += 1;
                    items.push(self.read_item(all_exact, close)?);
                }
                Some(_) => items.push(self.read_item(all_exact, close)?),
            }
        }
    }

    fn read_item(&mut self, exact: bool, close: char) -> Result<Vec<Word>, QueryError> {
        // `close` (`"` or `]`) is one of the characters that end a bare word.
        debug_assert!(ends_word(close));
        self.read_bare(exact, Expected::Word)
    }

    fn parse_phrase(&mut self, exact: bool) -> Result<Node, QueryError> {
        let items = self.read_items(exact, '"', Expected::CloseQuote)?;
        Ok(Node::Seq(items.into_iter().flatten().collect()))
    }

    fn parse_ordered(&mut self, exact: bool) -> Result<Node, QueryError> {
        let items = self.read_items(exact, ']', Expected::CloseBracket)?;
        Ok(Node::Ordered(items))
    }

    fn parse_regex(&mut self) -> Result<Node, QueryError> {
        let open = self.pos;
        self.pos += 1;
        let mut pattern = String::new();
        loop {
            match self.peek() {
                None => return Err(QueryError::expected_at(Expected::CloseSlash, self.pos)),
                Some('/') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') if self.chars.get(self.pos + 1) == Some(&'/') => {
                    pattern.push('/');
                    self.pos += 2;
                }
                Some(c) => {
                    pattern.push(c);
                    self.pos += 1;
                }
            }
        }
        if pattern.is_empty() {
            return Err(QueryError::at(
                QueryErrorKind::RegexInvalid {
                    detail: "the regex is empty".to_string(),
                },
                open,
            ));
        }
        self.count_terms(1, open)?;
        if self.regexes.len() >= MAX_REGEXES {
            return Err(QueryError::at(
                QueryErrorKind::TooManyRegexes { max: MAX_REGEXES },
                open,
            ));
        }
        // The regex runs on normalised text, where ё is е.
        let source: String = pattern
            .chars()
            .map(|c| if c == 'ё' || c == 'Ё' { 'е' } else { c })
            .collect();
        let regex = RegexBuilder::new(&source)
            .case_insensitive(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                let kind = match e {
                    regex::Error::CompiledTooBig(limit) => QueryErrorKind::RegexTooLarge { limit },
                    other => QueryErrorKind::RegexInvalid {
                        detail: regex_detail(&other),
                    },
                };
                QueryError::at(kind, open)
            })?;
        self.regexes.push((regex, pattern));
        Ok(Node::Regex(self.regexes.len() - 1))
    }
}

/// The one-line cause out of the regex crate's multi-line syntax error.
fn regex_detail(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or("syntax error")
        .to_string()
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> QueryError {
        match Query::parse(q) {
            Ok(parsed) => panic!("{q:?} parsed: {:?}", parsed.root()),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_every_operator() {
        for q in [
            "rust",
            "rust -senior",
            "!вакансия",
            "=вакансия",
            "+на дому работа",
            "-!senior rust",
            "\"rust developer\"",
            "!\"rust developer\"",
            "=\"rust developer\"",
            "[билеты москва париж]",
            "[\"rust developer\" remote]",
            "(rust | go) вакансия",
            "((rust | go) (junior | middle)) -senior",
            "rust /\\d+\\s*k/",
            "rust -/senior|lead/",
            "rust -(senior | lead)",
            "rust -\"team lead\"",
            "rust-разработчик",
            "go | rust developer",
        ] {
            assert!(
                Query::parse(q).is_ok(),
                "{q:?}: {:?}",
                Query::parse(q).err()
            );
        }
    }

    #[test]
    fn reports_position_and_expectation() {
        let e = err("(rust | golang vacancy");
        assert_eq!(e.position, 22);
        assert_eq!(e.expected(), ")");
        assert_eq!(e.code(), "query_invalid");
        assert_eq!(e.to_string(), "expected \")\" at 22");

        let e = err("\"rust developer");
        assert_eq!((e.position, e.expected()), (15, "\""));
        let e = err("[a b");
        assert_eq!((e.position, e.expected()), (4, "]"));
        let e = err("rust /\\d+");
        assert_eq!((e.position, e.expected()), (9, "/"));
        let e = err("rust )");
        assert_eq!((e.position, e.expected()), (5, "end_of_query"));
        let e = err("rust - senior");
        assert_eq!((e.position, e.expected()), (6, "term"));
        let e = err("rust !");
        assert_eq!((e.position, e.expected()), (6, "word"));
        let e = err("rust | ");
        assert_eq!((e.position, e.expected()), (7, "term"));
        let e = err("\"\"");
        assert_eq!((e.position, e.expected()), (1, "word"));
        let e = err("");
        assert_eq!((e.position, e.expected()), (0, "term"));
        let e = err("ищем (разработчика | программиста");
        assert_eq!((e.position, e.expected()), (33, ")"));
        let e = err("rust --senior");
        assert_eq!((e.position, e.expected()), (6, "term"));
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let e = err("вакансия (раст");
        assert_eq!(e.position, 14);
    }

    #[test]
    fn requires_a_word_in_every_alternative() {
        assert_eq!(err("-senior").expected(), "word");
        assert_eq!(err("/rust/").kind, QueryErrorKind::NeedsWord);
        assert_eq!(err("rust | -senior").kind, QueryErrorKind::NeedsWord);
        assert!(Query::parse("rust /\\d+k/").is_ok());
        assert!(Query::parse("(rust | go) -senior").is_ok());
    }

    #[test]
    fn enforces_limits() {
        let long = "a ".repeat(MAX_QUERY_CHARS);
        let e = err(&long);
        assert_eq!(e.expected(), "shorter_query");
        assert_eq!(e.position, MAX_QUERY_CHARS);
        assert!(e.to_string().contains("at most 1000"));

        let many = (0..=MAX_TERMS)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(err(&many).expected(), "fewer_terms");

        let deep = format!("{}rust{}", "(".repeat(9), ")".repeat(9));
        let e = err(&deep);
        assert_eq!((e.expected(), e.position), ("less_nesting", 8));

        let regexes = "rust /a/ /b/ /c/ /d/ /e/ /f/";
        assert_eq!(err(regexes).expected(), "fewer_regexes");
    }

    #[test]
    fn refuses_bad_and_oversized_regexes() {
        let e = err("rust /(unclosed/");
        assert_eq!((e.expected(), e.position), ("valid_regex", 5));
        assert!(e.to_string().starts_with("invalid regex: "), "{e}");

        let e = err("rust /(\\w{100}){100}/");
        assert_eq!(e.expected(), "smaller_regex");
        assert!(matches!(e.kind, QueryErrorKind::RegexTooLarge { .. }));
    }

    #[test]
    fn bare_words_with_punctuation_become_phrases() {
        let q = Query::parse("Rust-Разработчик").ok();
        match q.as_ref().map(Query::root) {
            Some(Node::Seq(words)) => {
                let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
                assert_eq!(texts, ["rust", "разработчик"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regex_slash_escape_and_yo() {
        let q = Query::parse("ci /ci\\/cd/ /ёлка/").ok();
        let sources: Vec<String> = q
            .iter()
            .flat_map(|q| q.regexes().map(|(r, s)| format!("{s}={}", r.as_str())))
            .collect();
        assert_eq!(sources, ["ci/cd=ci/cd", "ёлка=елка"]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(q in "\\PC{0,200}") {
            let _ = Query::parse(&q);
        }

        #[test]
        fn never_panics_on_operator_soup(q in "[-!=+\"\\[\\]()|/\\\\ aбв]{0,80}") {
            if let Err(e) = Query::parse(&q) {
                proptest::prop_assert!(e.position <= q.chars().count());
            }
        }
    }
}
