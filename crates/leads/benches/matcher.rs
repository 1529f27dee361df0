//! Lead matching on one thread: posts matched per second with 100, 1,000 and 10,000 keywords
//! over two generated Russian/English corpora of post-like texts — the main one of 300–1,000
//! characters (1,051 bytes a post on average) and a short one of 438 bytes a post on average,
//! the post length of the research figure behind the target — side by side with a
//! `regex::RegexSet` of the same keywords (`\b…\b`, case-insensitive) measured in the same run;
//! and the rebuild time of the engine at 10,000 keywords (targets in docs/architecture.md,
//! "Targets": ≥ 150,000 posts/s at 10,000 keywords, rebuild < 100 ms).
//!
//! `cargo bench -p switchboard-leads` (release). `LEADS_BENCH_SECS` sets the seconds per
//! measurement (default 3), `LEADS_BENCH_POSTS` a fixed number of posts instead (for
//! instruction counts under callgrind), `LEADS_BENCH_KEYWORDS=100,1000` the sizes,
//! `LEADS_BENCH_CORPUS=long` or `short` one corpus (default both), and
//! `LEADS_BENCH_REGEXSET=0` skips the RegexSet. Everything is generated from a fixed seed, so runs
//! compare; no database is involved.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use regex::RegexSetBuilder;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use switchboard_leads::{Matcher, Query, TaskSpec};

/// splitmix64: a fixed, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    /// Zipf-like: index i with weight ~ 1/(i+1).
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let x = ((n as f64 + 1.0).ln() * u).exp() - 1.0;
        (x as usize).min(n - 1)
    }
}

const RU_STOP: &[&str] = &[
    "и", "в", "на", "с", "по", "для", "не", "что", "это", "от", "мы", "вы", "у", "к", "до", "из",
    "а", "или", "как", "все", "так", "же", "нас", "вас",
];
const EN_STOP: &[&str] = &[
    "the", "and", "for", "to", "of", "in", "a", "with", "on", "we", "you", "is", "are", "our",
    "your", "at", "or", "be",
];
const RU_WORDS: &[&str] = &[
    "вакансия",
    "вакансии",
    "вакансию",
    "разработчик",
    "разработчика",
    "разработчиков",
    "ищем",
    "ищу",
    "работа",
    "работу",
    "удаленно",
    "удалённая",
    "офис",
    "москва",
    "москве",
    "команда",
    "команду",
    "опыт",
    "опытом",
    "зарплата",
    "зарплату",
    "проект",
    "проекта",
    "проекты",
    "требования",
    "условия",
    "задачи",
    "продукт",
    "сервис",
    "сервиса",
    "компания",
    "компании",
    "резюме",
    "junior",
    "middle",
    "senior",
    "тимлид",
    "аналитик",
    "тестировщик",
    "дизайнер",
    "менеджер",
    "продажи",
    "клиенты",
    "заказ",
    "заказать",
    "доставка",
    "цена",
    "скидка",
    "купить",
    "продам",
    "аренда",
    "квартира",
    "новости",
    "сегодня",
    "завтра",
    "неделя",
    "рублей",
    "тысяч",
    "график",
    "полный",
    "день",
    "гибкий",
    "оформление",
    "бонусы",
    "обучение",
    "собеседование",
];
const EN_WORDS: &[&str] = &[
    "rust",
    "go",
    "golang",
    "python",
    "java",
    "developer",
    "developers",
    "engineer",
    "engineers",
    "backend",
    "frontend",
    "remote",
    "hiring",
    "job",
    "jobs",
    "vacancy",
    "salary",
    "team",
    "lead",
    "startup",
    "product",
    "experience",
    "years",
    "postgresql",
    "kubernetes",
    "docker",
    "tokio",
    "async",
    "cloud",
    "data",
    "platform",
    "position",
    "apply",
    "contract",
    "fulltime",
    "office",
    "europe",
    "relocation",
    "visa",
    "equity",
    "benefits",
    "interview",
    "code",
    "review",
];
/// Syllables of the generated words: consonant + vowel, and some consonant clusters — a few
/// hundred per language, so words differ in their first letters about as much as real ones.
fn syllables(consonants: &[&str], clusters: &[&str], vowels: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for c in consonants.iter().chain(clusters) {
        for v in vowels {
            out.push(format!("{c}{v}"));
        }
    }
    out
}

const RU_CONSONANTS: &[&str] = &[
    "б", "в", "г", "д", "ж", "з", "к", "л", "м", "н", "п", "р", "с", "т", "ф", "х", "ц", "ч", "ш",
];
const RU_CLUSTERS: &[&str] = &["ст", "пр", "кр", "тр", "бл", "зв", "сл", "гр"];
const RU_VOWELS: &[&str] = &["а", "е", "и", "о", "у", "ы", "я", "ю"];
const RU_END: &[&str] = &[
    "", "а", "ы", "ов", "ами", "ия", "ость", "ный", "ая", "ение", "ать", "ой", "ем", "ник",
];
const EN_CONSONANTS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
];
const EN_CLUSTERS: &[&str] = &["st", "tr", "pl", "ch", "sh", "th", "br", "gr"];
const EN_VOWELS: &[&str] = &["a", "e", "i", "o", "u"];
const EN_END: &[&str] = &[
    "", "s", "er", "ers", "ing", "ed", "tion", "ly", "ment", "able",
];

/// A vocabulary: real words first (most frequent), then generated ones.
struct Vocab {
    ru: Vec<String>,
    en: Vec<String>,
}

fn pseudo(rng: &mut Rng, syl: &[String], end: &[&str]) -> String {
    let n = 2 + rng.below(3);
    let mut w = String::new();
    for _ in 0..n {
        w.push_str(&syl[rng.below(syl.len())]);
    }
    w.push_str(rng.pick(end));
    w
}

/// The generated words, with the real topical words spread over the middle ranks (so
/// "вакансия" is a word of some posts, not of every post).
fn vocab(rng: &mut Rng) -> Vocab {
    let mut seen: HashSet<String> = RU_WORDS
        .iter()
        .chain(EN_WORDS)
        .map(|s| s.to_string())
        .collect();
    let mut generate = |syl: &[String], end: &[&str], n: usize, real: &[&str]| {
        let mut list = Vec::with_capacity(n);
        while list.len() < n {
            let w = pseudo(rng, syl, end);
            if seen.insert(w.clone()) {
                list.push(w);
            }
        }
        for (i, w) in real.iter().enumerate() {
            list.insert(40 + i * 23, w.to_string());
        }
        list
    };
    let ru = generate(
        &syllables(RU_CONSONANTS, RU_CLUSTERS, RU_VOWELS),
        RU_END,
        30_000,
        RU_WORDS,
    );
    let en = generate(
        &syllables(EN_CONSONANTS, EN_CLUSTERS, EN_VOWELS),
        EN_END,
        18_000,
        EN_WORDS,
    );
    Vocab { ru, en }
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One post of `min` to `min + span` characters (plus the rest of the last sentence): sentences
/// of stop words and content words, punctuation, numbers, a mention or a link, an emoji now and
/// then.
fn post(rng: &mut Rng, v: &Vocab, min: usize, span: usize) -> String {
    let russian = rng.chance(67);
    let target = min + rng.below(span);
    let mut out = String::new();
    while out.chars().count() < target {
        let words = 6 + rng.below(9);
        for i in 0..words {
            let w: String = if rng.chance(30) {
                rng.pick(if russian { RU_STOP } else { EN_STOP })
                    .to_string()
            } else if russian && rng.chance(10) {
                v.en[rng.zipf(v.en.len())].clone()
            } else if russian {
                v.ru[rng.zipf(v.ru.len())].clone()
            } else {
                v.en[rng.zipf(v.en.len())].clone()
            };
            let w = if i == 0 { capitalize(&w) } else { w };
            out.push_str(&w);
            if rng.chance(8) {
                out.push_str(", ");
            } else if rng.chance(3) {
                out.push_str(&format!(" {} ", 1 + rng.below(500)));
            } else {
                out.push(' ');
            }
        }
        out.pop();
        out.push_str(rng.pick(&[". ", "! ", ".\n", "? ", ". 🔥 ", ". "]));
        if rng.chance(5) {
            out.push_str("Пишите @hr_team или https://t.me/jobs_channel ");
        }
    }
    out
}

/// One keyword: a fifth are the common topical words many users pick (rust, вакансия, …), the
/// rest distinct words from the long tail of the vocabulary.
fn keyword(rng: &mut Rng, v: &Vocab, used: &mut HashSet<String>) -> String {
    let w = if rng.chance(20) {
        if rng.chance(60) {
            rng.pick(RU_WORDS).to_string()
        } else {
            rng.pick(EN_WORDS).to_string()
        }
    } else {
        loop {
            let list = if rng.chance(60) { &v.ru } else { &v.en };
            let w = &list[200 + rng.below(list.len() - 200)];
            if !used.contains(w) {
                break w.clone();
            }
        }
    };
    used.insert(w.clone());
    w
}

/// Tasks whose queries hold `keywords` distinct words, in a realistic mix: AND pairs, minus
/// words, phrases, groups, exact forms, ordered groups and a few regexes.
fn tasks(rng: &mut Rng, v: &Vocab, keywords: usize) -> (Vec<TaskSpec<u32>>, Vec<String>) {
    let mut specs = Vec::new();
    let mut used = HashSet::new();
    while used.len() < keywords {
        let kind = rng.below(100);
        let mut w = || keyword(rng, v, &mut used);
        let query = match kind {
            0..40 => format!("{} {}", w(), w()),
            40..60 => format!("{} {} -{}", w(), w(), w()),
            60..75 => format!("\"{} {}\" -{}", w(), w(), w()),
            75..85 => format!("({} | {}) {}", w(), w(), w()),
            85..94 => format!("!{} {} -!{}", w(), w(), w()),
            94..99 => format!("[{} {} {}]", w(), w(), w()),
            _ => format!("{} /\\d{{3}}\\s?k/", w()),
        };
        let query = Query::parse(&query).unwrap_or_else(|e| panic!("{query}: {e}"));
        specs.push(TaskSpec {
            id: specs.len() as u32,
            query,
            ignore_forwards: false,
        });
    }
    let mut distinct: Vec<String> = used.into_iter().collect();
    distinct.sort();
    (specs, distinct)
}

/// The short corpus's posts: `SHORT_MIN` to `SHORT_MIN + SHORT_SPAN` characters before the last
/// sentence is finished, 438 bytes on average like the posts of the research measurement behind
/// the throughput target.
const SHORT_MIN: usize = 100;
const SHORT_SPAN: usize = 290;

fn seconds() -> Duration {
    let secs = std::env::var("LEADS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// CPU time (user + system) this thread has run, from Linux's `/proc/thread-self/stat` in
/// clock ticks of 10 ms, to report per-core throughput on a machine shared with other work;
/// `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A throughput measurement: posts per wall second and per CPU second of this thread.
struct Rate {
    wall: f64,
    cpu: f64,
    matched: usize,
    posts: usize,
}

/// A fixed number of posts per measurement instead of a time budget (`LEADS_BENCH_POSTS`):
/// for instruction counts under `valgrind --tool=callgrind`, which are the same on every run.
fn fixed_posts() -> Option<usize> {
    std::env::var("LEADS_BENCH_POSTS")
        .ok()
        .and_then(|s| s.parse().ok())
}

/// Runs `f` over the corpus, round after round, for at least `budget` (or for exactly
/// [`fixed_posts`]).
fn rate(corpus: &[String], budget: Duration, mut f: impl FnMut(&str) -> usize) -> Rate {
    let start = Instant::now();
    let cpu_start = thread_cpu();
    let mut posts = 0usize;
    let mut matched = 0usize;
    let limit = fixed_posts();
    let done = |posts: usize| match limit {
        Some(n) => posts >= n,
        None => posts.is_multiple_of(64) && start.elapsed() >= budget,
    };
    'outer: loop {
        for p in corpus {
            if limit.is_some() && done(posts) {
                break 'outer;
            }
            matched += usize::from(f(p) > 0);
            posts += 1;
            if limit.is_none() && done(posts) {
                break 'outer;
            }
        }
        if limit.is_none() && start.elapsed() >= budget {
            break;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu_start, thread_cpu()) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => wall,
    };
    Rate {
        wall: posts as f64 / wall,
        cpu: posts as f64 / cpu,
        matched,
        posts,
    }
}

/// A set of posts the engine is measured on.
struct Corpus {
    /// Its name in `LEADS_BENCH_CORPUS` and in the table.
    name: &'static str,
    posts: Vec<String>,
    /// Mean bytes per post.
    bytes: f64,
}

impl Corpus {
    fn new(name: &'static str, posts: Vec<String>) -> Corpus {
        let bytes = posts.iter().map(String::len).sum::<usize>() as f64 / posts.len() as f64;
        Corpus { name, posts, bytes }
    }
}

fn main() {
    let budget = seconds();
    let mut rng = Rng(0x5EED_1EAD);
    let v = vocab(&mut rng);
    // The main corpus (300–1,000 characters, 1,051 bytes on average), then posts of the length
    // behind the research figure the target comes from (438 bytes on average), drawn after it
    // so the main corpus stays what it was.
    let long = Corpus::new(
        "long",
        (0..20_000).map(|_| post(&mut rng, &v, 300, 700)).collect(),
    );
    let short = Corpus::new(
        "short",
        (0..20_000)
            .map(|_| post(&mut rng, &v, SHORT_MIN, SHORT_SPAN))
            .collect(),
    );
    let wanted = std::env::var("LEADS_BENCH_CORPUS").unwrap_or_else(|_| "long,short".to_string());
    let corpora: Vec<&Corpus> = [&long, &short]
        .into_iter()
        .filter(|c| wanted.split(',').any(|w| w.trim() == c.name))
        .collect();
    for c in &corpora {
        let chars: usize = c.posts.iter().map(|p| p.chars().count()).sum();
        println!(
            "corpus {}: {} posts, {:.0} chars ({:.0} bytes) per post on average",
            c.name,
            c.posts.len(),
            chars as f64 / c.posts.len() as f64,
            c.bytes,
        );
    }
    println!("{} s per measurement, one thread", budget.as_secs_f64());
    println!();
    println!(
        "{:>9} {:>6} {:>7} {:>8} {:>6} {:>10} {:>10} {:>7} {:>8} | {:>9} {:>10} {:>10} {:>8}",
        "keywords",
        "tasks",
        "terms",
        "build ms",
        "corpus",
        "posts/s",
        "posts/cpu-s",
        "MB/cpu-s",
        "matched",
        "set build",
        "set p/s",
        "set p/cpu-s",
        "matched"
    );
    let mut ten_thousand = None;
    let sizes: Vec<usize> = std::env::var("LEADS_BENCH_KEYWORDS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    let skip_set = std::env::var("LEADS_BENCH_REGEXSET").is_ok_and(|v| v == "0");
    for keywords in sizes {
        let mut trng = Rng(keywords as u64);
        let (specs, words) = tasks(&mut trng, &v, keywords);
        let n_tasks = specs.len();
        let start = Instant::now();
        let matcher = Matcher::build(specs.clone()).expect("build");
        let build = start.elapsed();
        // The same keywords as a RegexSet: whole words, case-insensitive, no morphology.
        let set = (!skip_set).then(|| {
            let patterns: Vec<String> = words
                .iter()
                .map(|w| format!(r"\b{}\b", regex::escape(w)))
                .collect();
            let start = Instant::now();
            let set = RegexSetBuilder::new(&patterns)
                .case_insensitive(true)
                .size_limit(1 << 30)
                .dfa_size_limit(1 << 30)
                .build();
            (set, start.elapsed())
        });
        for corpus in &corpora {
            let engine = rate(&corpus.posts, budget, |p| matcher.match_post(p).len());
            let set_cells = match &set {
                None => "(RegexSet skipped)".to_string(),
                Some((Ok(set), set_build)) => {
                    let r = rate(&corpus.posts, budget, |p| set.matches(p).iter().count());
                    format!(
                        "{:>6.0} ms {:>10.0} {:>10.0} {:>7.1}%",
                        set_build.as_secs_f64() * 1e3,
                        r.wall,
                        r.cpu,
                        100.0 * r.matched as f64 / r.posts.max(1) as f64
                    )
                }
                Some((Err(e), _)) => format!(
                    "build failed: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            };
            println!(
                "{:>9} {:>6} {:>7} {:>8.1} {:>6} {:>10.0} {:>10.0} {:>7.0} {:>7.1}% | {}",
                words.len(),
                n_tasks,
                matcher.term_count(),
                build.as_secs_f64() * 1e3,
                corpus.name,
                engine.wall,
                engine.cpu,
                engine.cpu * corpus.bytes / 1e6,
                100.0 * engine.matched as f64 / engine.posts.max(1) as f64,
                set_cells,
            );
        }
        if keywords == 10_000 {
            ten_thousand = Some((specs, matcher.automaton_bytes()));
        }
    }
    println!();
    println!(
        "\"keywords\": distinct words over all queries; \"terms\": distinct stems and exact forms;"
    );
    println!(
        "\"matched\": share of posts (engine) / posts with a keyword (RegexSet, no morphology)."
    );

    // Rebuild at 10,000 keywords: the engine only, from parsed queries (what a task edit costs).
    if let Some((specs, memory)) = ten_thousand {
        let mut samples = Vec::new();
        let cpu_start = thread_cpu();
        for _ in 0..9 {
            let specs = specs.clone();
            let start = Instant::now();
            let m = Matcher::build(specs).expect("build");
            samples.push(start.elapsed());
            std::hint::black_box(m);
        }
        let cpu_each = match (cpu_start, thread_cpu()) {
            (Some(a), Some(b)) => format!("{:.1} ms", (b - a).as_secs_f64() * 1e3 / 9.0),
            _ => "n/a".to_string(),
        };
        samples.sort();
        let texts: Vec<String> = specs.iter().map(|s| s.query.source().to_string()).collect();
        let start = Instant::now();
        for t in &texts {
            std::hint::black_box(Query::parse(t).expect("parse"));
        }
        let parse = start.elapsed();
        println!();
        println!(
            "rebuild at 10,000 keywords ({} tasks): median {:.1} ms, min {:.1} ms, max {:.1} ms (wall); {} of CPU per rebuild (mean of 9); automaton {:.1} MiB; parsing every query again {:.1} ms",
            specs.len(),
            samples[samples.len() / 2].as_secs_f64() * 1e3,
            samples[0].as_secs_f64() * 1e3,
            samples[samples.len() - 1].as_secs_f64() * 1e3,
            cpu_each,
            memory as f64 / (1 << 20) as f64,
            parse.as_secs_f64() * 1e3,
        );
    }
}
