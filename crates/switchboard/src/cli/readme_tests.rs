//! README.md's command table and the command line cannot drift apart: every command `--help`
//! shows (down to the leaves, e.g. `admin create-user`) has a row, with each of its options and
//! arguments, and the table names nothing the binary does not have.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

/// A command's words (`admin create-user`) → its options (`--username`) and arguments (`DIR`).
type Commands = BTreeMap<String, BTreeSet<String>>;

/// Every leaf command of the binary with its long options and positional arguments (the
/// global `--config`, `--help` and `--version` are left out: every command has them).
fn binary_commands() -> Commands {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Commands) {
        let subs: Vec<&clap::Command> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            let args = cmd
                .get_arguments()
                .filter(|a| {
                    !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version")
                })
                .map(|a| match a.get_long() {
                    Some(long) => format!("--{long}"),
                    None => a.get_id().as_str().to_uppercase(),
                })
                .collect();
            out.insert(path.to_string(), args);
        }
        for sub in subs {
            let name = if path.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, &name, out);
        }
    }
    let mut out = Commands::new();
    walk(&super::command(), "", &mut out);
    out
}

/// The rows of the command table under `## Running for real` in README.md.
fn readme_commands() -> Commands {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let section = readme
        .split("\n## Running for real")
        .nth(1)
        .expect("README.md has a \"Running for real\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut out = Commands::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let usage = line.split('`').nth(1).unwrap();
        let words: Vec<&str> = usage.split_whitespace().collect();
        let name: Vec<&str> = words
            .iter()
            .copied()
            .take_while(|w| {
                !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            })
            .collect();
        let args = words[name.len()..]
            .iter()
            .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
            // Options, and arguments (upper case: `DIR`); an option's values come along, too.
            .filter(|w| {
                w.starts_with("--")
                    || (!w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            })
            .map(str::to_string)
            .filter(|w| w != "--config")
            .collect();
        let previous = out.insert(name.join(" "), args);
        assert!(
            previous.is_none(),
            "README lists `{}` twice",
            name.join(" ")
        );
    }
    out
}

#[test]
fn the_readme_lists_every_command_with_its_options() {
    let binary = binary_commands();
    assert!(binary.contains_key("sessions import") && binary.contains_key("keys rotate"));
    let readme = readme_commands();
    let missing: Vec<&String> = binary.keys().filter(|k| !readme.contains_key(*k)).collect();
    let stale: Vec<&String> = readme.keys().filter(|k| !binary.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README.md's command table and `switchboard --help` differ\n\
         commands not in the README: {missing:?}\nin the README but not in the binary: {stale:?}"
    );
    for (name, args) in &binary {
        let documented = &readme[name];
        // An option's value names (U, F, ADDR…) may follow it in the README; only the
        // positional arguments the binary has must be there, and every option.
        let options: BTreeSet<&String> =
            documented.iter().filter(|a| a.starts_with("--")).collect();
        let binary_options: BTreeSet<&String> =
            args.iter().filter(|a| a.starts_with("--")).collect();
        assert_eq!(
            options, binary_options,
            "the README's row for `{name}` and the binary's options differ"
        );
        for positional in args.iter().filter(|a| !a.starts_with("--")) {
            assert!(
                documented.contains(positional),
                "the README's row for `{name}` does not show its argument {positional}"
            );
        }
    }
}
