//! Behaviour of the whole engine: every operator in Russian and English, spans, edits, the
//! handle, and property tests against a slow reference evaluator (the oracle).

use crate::matcher::stem_pattern;
use crate::normalize::{Lang, lang_of, normalize_str, normalize_word, reference_words};
use crate::query::{Node, Word};
use crate::{Matcher, MatcherHandle, Query, TaskMatch, TaskSpec, new_terms};
use proptest::prelude::*;
use rust_stemmers::{Algorithm, Stemmer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn task(id: u32, query: &str) -> TaskSpec<u32> {
    match Query::parse(query) {
        Ok(query) => TaskSpec {
            id,
            query,
            ignore_forwards: false,
        },
        Err(e) => panic!("{query:?}: {e}"),
    }
}

fn matcher(queries: &[&str]) -> Matcher<u32> {
    let tasks = queries.iter().enumerate().map(|(i, q)| task(i as u32, q));
    match Matcher::build(tasks) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

fn one(query: &str, text: &str) -> Option<TaskMatch<u32>> {
    matcher(&[query]).match_post(text).into_iter().next()
}

fn matches(query: &str, text: &str) -> bool {
    one(query, text).is_some()
}

fn check(query: &str, yes: &[&str], no: &[&str]) {
    for text in yes {
        assert!(matches(query, text), "{query:?} should match {text:?}");
    }
    for text in no {
        assert!(!matches(query, text), "{query:?} should not match {text:?}");
    }
}

/// The highlighted pieces of the original text.
fn highlighted(query: &str, text: &str) -> Vec<String> {
    one(query, text)
        .map(|m| {
            m.spans
                .iter()
                .map(|s| text[s.range.clone()].to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn plain_words_match_every_form() {
    check(
        "вакансия",
        &[
            "Открыта вакансия",
            "Новые вакансии недели",
            "Вакансий пока нет",
            "Смотрите ВАКАНСИЮ ниже",
        ],
        &["Резюме разработчика", "вакантный"],
    );
    check(
        "developer",
        &["Senior developers wanted", "DEVELOPER"],
        &["devops", "devel"],
    );
    check(
        "hiring",
        &["We hire Rust people", "Hiring now"],
        &["hi ring"],
    );
    check(
        "vacancy",
        &["open vacancies", "a vacancy"],
        &["vacant position"],
    );
}

#[test]
fn exact_form_with_bang_or_equals() {
    check(
        "!вакансия",
        &["Открыта вакансия", "ВАКАНСИЯ"],
        &["Новые вакансии", "вакансию"],
    );
    check("=вакансия", &["вакансия"], &["вакансии"]);
    check("!developer", &["a developer"], &["developers", "developed"]);
}

#[test]
fn words_respect_word_boundaries() {
    check(
        "rust",
        &["Rust", "Ищем Rust-разработчика", "(rust)"],
        &["trust me", "rustacean", "rusty"],
    );
    check("!rust", &["RUST!"], &["rusty", "trust"]);
    check("ищем", &["Ищем людей"], &["поищем позже", "ищемый"]);
}

#[test]
fn a_term_ending_inside_a_longer_term_is_not_a_match_at_the_word_start() {
    // The automaton's match state for "trust" also carries "rust" (a suffix); a word only
    // matches patterns that start where it starts. Found by the oracle property.
    let m = matcher(&["trust", "!rust -!работу"]);
    let ids: Vec<u32> = m.match_post("trust ").iter().map(|t| t.task).collect();
    assert_eq!(ids, [0]);
}

#[test]
fn minus_words_in_every_form_or_one_form() {
    check(
        "rust -senior",
        &[
            "Ищем Rust-разработчика",
            "Rust junior",
            "Ищем сеньора на Rust",
        ],
        &["Senior Rust developer", "Rust, seniors only"],
    );
    check(
        "rust -!senior",
        &["Rust, seniors only", "Rust junior"],
        &["Senior Rust developer"],
    );
    check(
        "доставка -цветы",
        &["Доставка еды"],
        &["Доставка цветов", "доставка цветами"],
    );
    check(
        "доставка -!цветы",
        &["Доставка цветов"],
        &["Доставка: цветы"],
    );
}

#[test]
fn yo_and_e_are_the_same_letter() {
    check(
        "удалёнка",
        &["Только удаленка", "УДАЛЁНКА", "удалёнку ищу"],
        &["удаление"],
    );
    check("удаленно", &["Работа удалённо"], &[]);
    check("!ёлка", &["Ёлка", "елка"], &["ёлки"]);
}

#[test]
fn invisible_characters_do_not_split_words() {
    let text = "Ищем раз\u{200B}работ\u{00AD}чика на Ru\u{200D}st";
    assert!(matches("разработчик rust", text));
    assert_eq!(
        highlighted("разработчик rust", text),
        ["раз\u{200B}работ\u{00AD}чика", "Ru\u{200D}st"]
    );
    assert!(matches("!ищем", "Ищ\u{FEFF}ем"));
}

#[test]
fn phrases_are_adjacent_words_in_order() {
    check(
        "\"rust developer\"",
        &["Senior Rust Developers wanted", "rust-developer"],
        &["Rust and Go developer", "developer rust"],
    );
    check(
        "\"удаленная работа\"",
        &["Ищу удалённую работу", "Удаленная работа!"],
        &[
            "работа удаленная",
            "удаленная, но, работа"[..0].as_ref(),
            "удаленная хорошая работа",
        ],
    );
    check(
        "!\"удаленная работа\"",
        &["удаленная работа"],
        &["удалённую работу"],
    );
    check(
        "\"!удаленная работа\"",
        &["удаленная работу"],
        &["удалённую работу"],
    );
    check(
        "rust-разработчик",
        &["Rust-разработчики", "rust разработчика"],
        &["разработчик rust"],
    );
}

#[test]
fn ordered_groups_fix_the_order_not_the_distance() {
    check(
        "билеты [из москвы в париж]",
        &[
            "Дешёвые билеты из Москвы в Париж",
            "билеты из Москвы, с пересадкой в Вене, в Париж",
        ],
        &["билеты из Парижа в Москву", "из Москвы в Париж"],
    );
    check(
        "[rust developer]",
        &["Rust backend developer", "rust developer"],
        &["developer rust"],
    );
    check(
        "[\"team lead\" rust]",
        &["Team lead for the Rust team"],
        &["Lead the team in Rust", "Rust team lead"],
    );
}

#[test]
fn groups_and_alternatives() {
    check(
        "(rust | go) вакансия",
        &["Вакансия: Go-разработчик", "Вакансии Rust"],
        &["Вакансия Python", "Rust и Go"],
    );
    check(
        "((rust | go) (junior | middle)) -senior",
        &["Middle Go engineer", "Junior Rust"],
        &["Senior Middle Go", "Rust", "Junior Python"],
    );
    check(
        "go | rust developer",
        &["go", "rust developer"],
        &["rust", "developer"],
    );
    check(
        "rust -(senior | lead)",
        &["Rust"],
        &["Rust senior", "Rust lead"],
    );
    check(
        "rust -\"team lead\"",
        &["Rust developer", "Lead the team, Rust"],
        &["Rust team leads"],
    );
    check(
        "заказать (суши | пиццу)",
        &["Хочу заказать суши", "Закажу пиццу? Заказать пиццы"],
        &["Заказать роллы"],
    );
}

#[test]
fn regexes_run_on_normalised_text() {
    check(
        "rust /\\d{3}\\s?k/",
        &["Rust, 300k", "RUST 250 K"],
        &["Rust, 30k", "300k"],
    );
    check("rust -/senior|lead/", &["Rust"], &["Rust Lead"]);
    check("ищу /ёлк/", &["Ищу ЁЛКУ", "ищу елку"], &["ищу сосну"]);
    assert_eq!(highlighted("rust /\\d+k/", "Rust — 300k"), ["Rust", "300k"]);
}

#[test]
fn spans_point_into_the_original_text() {
    assert_eq!(
        highlighted("rust разработчик", "Ищем Rust-разработчика!"),
        ["Rust", "разработчика"]
    );
    assert_eq!(
        highlighted("\"rust developer\"", "We need a RUST  developer"),
        ["RUST  developer"]
    );
    // A character that changes length when lowercased (İ is 2 bytes, "i̇" 3).
    let text = "İstanbul: вакансия";
    assert_eq!(highlighted("вакансия", text), ["вакансия"]);
    // Only the alternative that matched is reported.
    let m = one("(rust developer) | golang", "rust golang");
    assert_eq!(m.map(|m| m.terms), Some(vec!["golang".to_string()]));
}

#[test]
fn terms_are_labelled_and_new_terms_are_found() {
    let m = matcher(&["(rust | go) разработчик -senior"]);
    let before = m.match_post("Ищем Rust разработчика").pop();
    let after = m.match_post("Ищем Rust и Go разработчика").pop();
    let (Some(before), Some(after)) = (before, after) else {
        panic!("both versions match");
    };
    assert_eq!(before.terms, ["rust", "разработчик"]);
    assert_eq!(after.terms, ["go", "rust", "разработчик"]);
    assert_eq!(new_terms(Some(&before), &after), ["go"]);
    assert!(new_terms(Some(&after), &before).is_empty());
    assert_eq!(new_terms(None, &before), ["rust", "разработчик"]);
    let labels = one(
        "!вакансия \"rust developer\" [a b] /x+/",
        "вакансия rust developer a b xx",
    )
    .map(|m| m.terms)
    .unwrap_or_default();
    assert_eq!(labels, ["!вакансия", "\"rust developer\"", "/x+/", "[a b]"]);
}

#[test]
fn many_tasks_share_one_automaton() {
    let m = matcher(&[
        "вакансия rust",
        "вакансии go",
        "!вакансия",
        "python -django",
    ]);
    assert_eq!(m.task_count(), 4);
    // вакансия and вакансии share one stem term.
    assert_eq!(m.term_count(), 5 + 1);
    let ids = |text: &str| -> Vec<u32> { m.match_post(text).iter().map(|t| t.task).collect() };
    assert_eq!(ids("Вакансия: Rust и Go"), [0, 1, 2]);
    assert_eq!(ids("Вакансии: Python, Django"), Vec::<u32>::new());
    assert_eq!(ids("python"), [3]);
    assert!(Matcher::<u32>::empty().match_post("вакансия").is_empty());
}

#[test]
fn ignore_forwards_is_carried_to_the_match() {
    let mut spec = task(7, "rust");
    spec.ignore_forwards = true;
    let m = Matcher::build([spec]).ok();
    let got = m.map(|m| m.match_post("rust")).unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert!(got[0].ignore_forwards);
    assert_eq!(got[0].task, 7);
}

#[test]
fn handle_swaps_while_matching_goes_on() {
    let handle = Arc::new(MatcherHandle::new(matcher(&["rust"])));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (handle, stop) = (handle.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = [0usize; 2];
            let mut rounds = 0;
            while rounds < 1_000 || !stop.load(Ordering::Relaxed) {
                rounds += 1;
                // Either engine, never a torn one: "rust" or "go" matched, exactly one task.
                let got = handle.match_post("rust go");
                assert_eq!(got.len(), 1);
                seen[got[0].task as usize] += 1;
            }
            seen
        })
    };
    for i in 0..50 {
        let query = if i % 2 == 0 { "go" } else { "rust" };
        let id = u32::from(i % 2 == 0);
        handle.replace(Matcher::build([task(id, query)]).unwrap_or_else(|_| Matcher::empty()));
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap_or_default();
    assert!(seen.iter().sum::<usize>() > 0);
    assert_eq!(handle.load().task_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// The oracle: a slow, straightforward evaluator of the parsed tree over the post's words.
// ---------------------------------------------------------------------------------------------

struct Oracle {
    russian: Stemmer,
    english: Stemmer,
}

impl Oracle {
    fn new() -> Self {
        Oracle {
            russian: Stemmer::create(Algorithm::Russian),
            english: Stemmer::create(Algorithm::English),
        }
    }

    fn stem(&self, w: &str) -> String {
        match lang_of(w) {
            Lang::Russian => self.russian.stem(w).into_owned(),
            Lang::English => self.english.stem(w).into_owned(),
            Lang::None => w.to_string(),
        }
    }

    /// The documented rule: the exact form, or the same stem and the stem's spelled-out start.
    fn word_matches(&self, term: &Word, token: &str) -> bool {
        if term.exact {
            return token == term.text;
        }
        let stem = self.stem(&term.text);
        self.stem(token) == stem
            && token.starts_with(&stem_pattern(&term.text, &stem, lang_of(&term.text)))
    }

    fn seq_at(&self, seq: &[Word], tokens: &[&str], at: usize) -> bool {
        seq.iter()
            .enumerate()
            .all(|(k, w)| tokens.get(at + k).is_some_and(|t| self.word_matches(w, t)))
    }

    fn ordered_from(&self, seqs: &[Vec<Word>], tokens: &[&str], from: usize) -> bool {
        let Some((first, rest)) = seqs.split_first() else {
            return true;
        };
        (from..tokens.len()).any(|at| {
            self.seq_at(first, tokens, at) && self.ordered_from(rest, tokens, at + first.len())
        })
    }

    fn eval(&self, node: &Node, query: &Query, norm: &str, tokens: &[&str]) -> bool {
        match node {
            Node::Seq(seq) => (0..tokens.len()).any(|at| self.seq_at(seq, tokens, at)),
            Node::Ordered(seqs) => self.ordered_from(seqs, tokens, 0),
            Node::Regex(i) => query.regex(*i).is_some_and(|(r, _)| r.is_match(norm)),
            Node::And(c) => c.iter().all(|n| self.eval(n, query, norm, tokens)),
            Node::Or(c) => c.iter().any(|n| self.eval(n, query, norm, tokens)),
            Node::Not(c) => !self.eval(c, query, norm, tokens),
        }
    }

    fn matching_tasks(&self, queries: &[Query], text: &str) -> Vec<u32> {
        let norm = normalize_str(text);
        let owned: Vec<String> = reference_words(text)
            .into_iter()
            .map(|r| normalize_word(&text[r]))
            .filter(|w| !w.is_empty())
            .collect();
        let tokens: Vec<&str> = owned.iter().map(String::as_str).collect();
        (0..queries.len() as u32)
            .filter(|&i| {
                self.eval(
                    queries[i as usize].root(),
                    &queries[i as usize],
                    &norm,
                    &tokens,
                )
            })
            .collect()
    }
}

const VOCAB: &[&str] = &[
    "вакансия",
    "вакансии",
    "вакансий",
    "вакансию",
    "разработчик",
    "разработчика",
    "разработчики",
    "разработчиков",
    "удаленная",
    "удалённая",
    "удаленную",
    "удаленно",
    "работа",
    "работу",
    "работы",
    "работать",
    "ищем",
    "ищу",
    "москва",
    "москвы",
    "москву",
    "париж",
    "парижа",
    "команда",
    "команду",
    "команды",
    "сеньор",
    "сеньора",
    "доставка",
    "цветы",
    "цветов",
    "rust",
    "rusty",
    "trust",
    "developer",
    "developers",
    "development",
    "hiring",
    "hire",
    "hired",
    "job",
    "jobs",
    "remote",
    "senior",
    "seniors",
    "lead",
    "leads",
    "leading",
    "team",
    "teams",
    "go",
    "golang",
    "hope",
    "hoping",
    "hoped",
    "happy",
    "happiness",
    "vacancy",
    "vacancies",
    "2024",
    "300k",
    "ёлка",
    "елки",
];

const SEPARATORS: &[&str] = &[
    " ", " ", " ", ", ", "-", ". ", "\n", " — ", "\u{200B}", "!? ",
];

const REGEXES: &[&str] = &["\\d+k", "rust|go", "вакан", "^ищ", "ёлк"];

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(VOCAB),
            prop::sample::select(SEPARATORS),
            any::<bool>(),
        ),
        0..30,
    )
    .prop_map(|parts| {
        let mut out = String::new();
        for (word, sep, upper) in parts {
            if upper {
                out.push_str(&word.to_uppercase());
            } else {
                out.push_str(word);
            }
            out.push_str(sep);
        }
        out
    })
}

fn word_strategy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(VOCAB),
        prop::sample::select(&["", "", "!", "="][..]),
    )
        .prop_map(|(w, p)| format!("{p}{w}"))
}

fn query_strategy() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => word_strategy(),
        1 => prop::collection::vec(word_strategy(), 2..4).prop_map(|w| format!("\"{}\"", w.join(" "))),
        1 => prop::collection::vec(word_strategy(), 2..4).prop_map(|w| format!("[{}]", w.join(" "))),
        1 => word_strategy().prop_map(|w| format!("-{w}")),
        1 => prop::sample::select(REGEXES).prop_map(|r| format!("/{r}/")),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" ")),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| format!("({})", v.join(" | "))),
            inner.prop_map(|q| format!("-({q})")),
        ]
    })
}

#[test]
fn the_stem_prefix_rule_keeps_every_form_of_the_vocabulary() {
    // Every pair of vocabulary words with one stem passes the prefix rule, so within these
    // (regular) forms "same stem" alone decides.
    let oracle = Oracle::new();
    for a in VOCAB {
        let a = normalize_str(a);
        let stem = oracle.stem(&a);
        let pattern = stem_pattern(&a, &stem, lang_of(&a));
        for b in VOCAB {
            let b = normalize_str(b);
            if oracle.stem(&b) == stem {
                assert!(b.starts_with(&pattern), "{a} ({stem}, {pattern}) vs {b}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn the_automaton_agrees_with_the_oracle(
        queries in prop::collection::vec(query_strategy(), 1..8),
        texts in prop::collection::vec(text_strategy(), 1..6),
    ) {
        let parsed: Vec<Query> = queries.iter().filter_map(|q| Query::parse(q).ok()).collect();
        let specs = parsed.iter().enumerate().map(|(i, q)| TaskSpec { id: i as u32, query: q.clone(), ignore_forwards: false });
        let m = Matcher::build(specs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let oracle = Oracle::new();
        for text in &texts {
            let got: Vec<u32> = m.match_post(text).iter().map(|t| t.task).collect();
            let want = oracle.matching_tasks(&parsed, text);
            prop_assert_eq!(&got, &want, "queries {:?} text {:?}", queries, text);
            for t in m.match_post(text) {
                prop_assert!(!t.terms.is_empty());
                for s in &t.spans {
                    prop_assert!(s.range.start < s.range.end && s.range.end <= text.len());
                    prop_assert!(text.is_char_boundary(s.range.start) && text.is_char_boundary(s.range.end));
                    prop_assert!(s.term < t.terms.len());
                }
            }
        }
    }

    #[test]
    fn no_panic_on_arbitrary_queries_and_texts(
        query in "[-!=+\"\\[\\]()|/ a-zа-я\\\\.*+?{}0-9]{0,60}",
        text in "\\PC{0,400}",
    ) {
        if let Ok(q) = Query::parse(&query) {
            let m = Matcher::build([TaskSpec { id: 0u32, query: q, ignore_forwards: false }])
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for t in m.match_post(&text) {
                for s in &t.spans {
                    prop_assert!(text.is_char_boundary(s.range.start) && text.is_char_boundary(s.range.end));
                }
            }
        }
    }
}

/// 1,000 single-word tasks over a generated vocabulary, shared by the time-bound property.
fn thousand_terms() -> &'static Matcher<u32> {
    static M: std::sync::OnceLock<Matcher<u32>> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let syllables = [
            "ра", "зо", "ку", "ми", "те", "ло", "ва", "ne", "to", "ka", "ri", "su",
        ];
        let mut tasks = Vec::new();
        for i in 0..1_000u32 {
            let mut w = String::new();
            let mut n = i as usize;
            for _ in 0..4 {
                w.push_str(syllables[n % syllables.len()]);
                n /= syllables.len();
            }
            let query = if i % 3 == 0 {
                format!("{w} -{}", syllables[i as usize % syllables.len()])
            } else {
                w
            };
            if let Ok(q) = Query::parse(&query) {
                tasks.push(TaskSpec {
                    id: i,
                    query: q,
                    ignore_forwards: false,
                });
            }
        }
        Matcher::build(tasks).unwrap_or_else(|_| Matcher::empty())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn matching_time_is_bounded(
        text in prop::collection::vec(
            prop_oneof![
                Just("разокуми ".to_string()),
                Just("тело ".to_string()),
                "\\PC{1,8}",
            ],
            400..500,
        ).prop_map(|v| { let mut s = v.concat(); let mut cut = s.len().min(4096); while !s.is_char_boundary(cut) { cut -= 1; } s.truncate(cut); s })
    ) {
        let m = thousand_terms();
        prop_assert_eq!(m.task_count(), 1_000);
        prop_assert!(m.term_count() >= 900, "{} terms", m.term_count());
        let start = std::time::Instant::now();
        let _ = m.match_post(&text);
        // A linear pass over 4 KiB takes microseconds; a second means a blow-up.
        prop_assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}

/// Every row of the operator table in `docs/leads.md`: (query, matches, does not match).
#[test]
fn the_documented_examples_hold() {
    let rows: &[(&str, &str, &str)] = &[
        ("вакансия", "Новые вакансии недели", "Ищу работу"),
        ("developer", "Senior developers wanted", "DevOps engineer"),
        (
            "rust удалённо",
            "Удаленно, стек: Rust",
            "Rust, офис в Москве",
        ),
        ("!вакансия", "Открыта вакансия", "Новые вакансии"),
        ("=вакансия", "Открыта вакансия", "Новые вакансии"),
        (
            "rust -senior",
            "Ищем Rust-разработчика",
            "Seniors only, Rust",
        ),
        (
            "rust -!senior",
            "Rust, seniors welcome",
            "Senior Rust developer",
        ),
        (
            "\"удалённая работа\"",
            "Ищу удаленную работу",
            "Работа удалённая",
        ),
        (
            "=\"удаленная работа\"",
            "Удаленная работа",
            "Удаленную работу",
        ),
        (
            "[из москвы в париж]",
            "Из Москвы через Вену в Париж",
            "Из Парижа в Москву",
        ),
        (
            "(rust | go) вакансия",
            "Вакансия: Go-разработчик",
            "Вакансия Python",
        ),
        ("rust -\"team lead\"", "Rust developer", "Rust team leads"),
        ("rust -(senior | lead)", "Rust junior", "Rust lead"),
        ("rust /\\d{3}\\s?k/", "Rust, 300k", "Rust, 30k"),
        ("работа +на дому", "Работа на дому", "Работа по дому"),
        (
            "rust-разработчик",
            "Rust разработчики",
            "Разработчик на Rust",
        ),
        ("удалёнка", "Только удаленка", "Удаление"),
        ("разработчик", "Раз\u{200B}работчик", "Работник"),
    ];
    for (query, yes, no) in rows {
        assert!(matches(query, yes), "{query:?} should match {yes:?}");
        assert!(!matches(query, no), "{query:?} should not match {no:?}");
    }
}
