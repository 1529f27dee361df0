//! The operator and admin guides (`docs/guide.en.md`, `docs/guide.ru.md`) against the
//! repository, so they cannot drift from it: every picture a guide shows exists; every picture
//! the browser tests save (`docs/screenshots/<lang>/`, `Chrome::guide_shot`) is shown by the
//! guide of its language; both guides show the same pictures, each its own language's; and
//! every UI label a guide quotes in bold is a text of the catalogue in the guide's language.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use switchboard_domain::i18n::CATALOGUE;
use switchboard_tests::browser::guide_screenshot_dir;

const LANGS: [&str; 2] = ["en", "ru"];

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn guide(lang: &str) -> String {
    let path = docs().join(format!("guide.{lang}.md"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The targets of the Markdown images (`![alt](target)`) of `text`.
fn images(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("![") {
        rest = &rest[start + 2..];
        let Some(close) = rest.find("](") else { break };
        let after = &rest[close + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

/// The texts quoted in bold (`**label**`) in `text`, line by line.
fn bold(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| {
            line.split("**")
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The PNG files saved for `lang`'s guide, by name.
fn saved(lang: &str) -> BTreeSet<String> {
    let dir = guide_screenshot_dir(lang);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

#[test]
fn every_picture_a_guide_shows_exists_and_every_saved_one_is_shown() {
    let mut shown_by = Vec::new();
    for lang in LANGS {
        let text = guide(lang);
        let prefix = format!("screenshots/{lang}/");
        let mut shown = BTreeSet::new();
        for target in images(&text) {
            let Some(name) = target.strip_prefix(&prefix) else {
                panic!("guide.{lang}.md shows {target}, which is not in {prefix}");
            };
            assert!(
                docs().join(&target).is_file(),
                "guide.{lang}.md shows {target}, which does not exist"
            );
            shown.insert(name.to_string());
        }
        let saved = saved(lang);
        assert!(!saved.is_empty(), "no screenshots saved for {lang}");
        let unshown: Vec<_> = saved.difference(&shown).collect();
        assert!(
            unshown.is_empty(),
            "saved for guide.{lang}.md but not shown by it: {unshown:?}"
        );
        shown_by.push(shown);
    }
    assert_eq!(
        shown_by[0], shown_by[1],
        "the English and Russian guides show different pictures"
    );
    let dirs: Vec<String> = std::fs::read_dir(docs().join("screenshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for dir in dirs {
        assert!(
            LANGS.contains(&dir.as_str()),
            "docs/screenshots/{dir} belongs to no guide"
        );
    }
}

#[test]
fn every_label_a_guide_quotes_is_the_catalogues() {
    // Catalogue texts compare without a final full stop or ellipsis ("Saved." is quoted as
    // **Saved**).
    let trim = |s: &str| s.trim_end_matches(['.', '…']).to_string();
    for (i, lang) in LANGS.iter().enumerate() {
        let texts: BTreeSet<String> = CATALOGUE
            .iter()
            .map(|(_, en, ru)| trim(if i == 0 { en } else { ru }))
            .collect();
        let quoted = bold(&guide(lang));
        assert!(!quoted.is_empty(), "guide.{lang}.md quotes no label");
        let unknown: Vec<_> = quoted
            .iter()
            .filter(|q| !texts.contains(&trim(q)))
            .collect();
        assert!(
            unknown.is_empty(),
            "guide.{lang}.md quotes labels the UI does not show in {lang} \
             (bold is for the UI's own words): {unknown:?}"
        );
    }
}

#[test]
fn the_checks_read_markdown_as_written() {
    let md = "See ![the inbox](screenshots/en/inbox.png) and **Send** or **Retry**.\n\
              ![x](a.png)";
    assert_eq!(images(md), ["screenshots/en/inbox.png", "a.png"]);
    assert_eq!(bold(md), ["Send", "Retry"]);
}
