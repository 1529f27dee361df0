//! The README's configuration table and the configuration cannot drift apart: every key of
//! [`Config`] (found by walking its `Deserialize` impl, so a new field is seen without being
//! listed anywhere) is in [`ENV_KEYS`] and in the README's table with the same variable and
//! the same secret marker, and the table names nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{Config, ENV_KEYS};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use std::collections::BTreeSet;

/// A deserializer that produces nothing but the dotted path of every leaf it is asked for.
struct Keys<'a> {
    path: String,
    out: &'a mut BTreeSet<String>,
}

#[derive(Debug)]
struct Stop(String);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Stop(msg.to_string())
    }
}

impl Keys<'_> {
    fn leaf(self) {
        self.out.insert(self.path);
    }
}

macro_rules! leaf {
    ($($method:ident => |$v:ident| $visit:expr;)*) => {
        $(fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, Stop> {
            self.leaf();
            $visit
        })*
    };
}

impl<'de> Deserializer<'de> for Keys<'_> {
    type Error = Stop;

    leaf! {
        deserialize_any => |v| v.visit_str("127.0.0.1:1");
        deserialize_bool => |v| v.visit_bool(false);
        deserialize_i8 => |v| v.visit_i64(0);
        deserialize_i16 => |v| v.visit_i64(0);
        deserialize_i32 => |v| v.visit_i64(0);
        deserialize_i64 => |v| v.visit_i64(0);
        deserialize_u8 => |v| v.visit_u64(0);
        deserialize_u16 => |v| v.visit_u64(0);
        deserialize_u32 => |v| v.visit_u64(0);
        deserialize_u64 => |v| v.visit_u64(0);
        deserialize_f32 => |v| v.visit_f64(0.0);
        deserialize_f64 => |v| v.visit_f64(0.0);
        deserialize_str => |v| v.visit_str("127.0.0.1:1");
        deserialize_string => |v| v.visit_str("127.0.0.1:1");
        deserialize_option => |v| v.visit_none();
        deserialize_seq => |v| v.visit_seq(de::value::SeqDeserializer::<
            std::iter::Empty<u8>,
            Stop,
        >::new(std::iter::empty()));
        deserialize_map => |v| v.visit_map(de::value::MapDeserializer::<
            std::iter::Empty<(u8, u8)>,
            Stop,
        >::new(std::iter::empty()));
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_map(Fields {
            path: self.path,
            fields: fields.iter(),
            current: "",
            out: self.out,
        })
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct newtype_struct tuple tuple_struct enum
        identifier ignored_any
    }
}

struct Fields<'a> {
    path: String,
    fields: std::slice::Iter<'static, &'static str>,
    current: &'static str,
    out: &'a mut BTreeSet<String>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        let Some(field) = self.fields.next() else {
            return Ok(None);
        };
        self.current = field;
        seed.deserialize(de::value::BorrowedStrDeserializer::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        let path = if self.path.is_empty() {
            self.current.to_string()
        } else {
            format!("{}.{}", self.path, self.current)
        };
        seed.deserialize(Keys {
            path,
            out: self.out,
        })
    }
}

/// Every key of the configuration file, dotted (`server.listen`).
fn config_keys() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    Config::deserialize(Keys {
        path: String::new(),
        out: &mut out,
    })
    .expect("walking the configuration's keys");
    out
}

/// One row of the README's configuration table: key, variable, secret (🔒).
type Row = (String, String, bool);

/// The rows of the table under `## Configuration` in README.md.
fn readme_rows() -> Vec<Row> {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .expect("README.md has a Configuration section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let code = |cell: &str| {
        cell.split('`')
            .nth(1)
            .unwrap_or_else(|| panic!("no `code` in README cell {cell:?}"))
            .to_string()
    };
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (code(cells[1]), code(cells[2]), cells[1].contains('🔒'))
        })
        .collect()
}

#[test]
fn every_config_key_has_a_variable() {
    let keys = config_keys();
    assert!(keys.contains("server.listen") && keys.contains("log.format"));
    let env: BTreeSet<String> = ENV_KEYS.iter().map(|(k, ..)| k.to_string()).collect();
    assert_eq!(
        keys, env,
        "the configuration's keys and ENV_KEYS differ: add the variable of a new key"
    );
}

#[test]
fn the_readme_table_lists_exactly_the_configuration() {
    let rows = readme_rows();
    let documented: BTreeSet<Row> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), documented.len(), "a README row is repeated");
    let config: BTreeSet<Row> = ENV_KEYS
        .iter()
        .map(|(key, var, _, secret)| (key.to_string(), var.to_string(), *secret))
        .collect();
    let missing: Vec<&Row> = config.difference(&documented).collect();
    let stale: Vec<&Row> = documented.difference(&config).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README.md's configuration table and the configuration differ\n\
         (key, variable, secret) not in the README: {missing:?}\n\
         in the README but not in the configuration: {stale:?}"
    );
}

/// The settings `contrib/switchboard.example.toml` shows, set or commented out (`# key = …`),
/// dotted by the table they are under.
fn example_settings(text: &str) -> BTreeSet<String> {
    let mut table = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
            continue;
        }
        let setting = line.strip_prefix("# ").unwrap_or(line);
        let Some((key, _)) = setting.split_once(" = ") else {
            continue;
        };
        if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            out.insert(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    out
}

#[test]
fn the_example_config_parses_holds_the_defaults_and_names_every_setting() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/switchboard.example.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let loaded = Config::load(Some(std::path::Path::new(path)), Vec::new()).unwrap();
    assert_eq!(
        format!("{:?}", loaded.config),
        format!("{:?}", Config::default()),
        "a setting in the example is not its default"
    );
    let shown = example_settings(&text);
    let keys = config_keys();
    let missing: Vec<&String> = keys.difference(&shown).collect();
    let stale: Vec<&String> = shown.difference(&keys).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "contrib/switchboard.example.toml and the configuration differ\n\
         settings not in the example: {missing:?}\nin the example but unknown: {stale:?}"
    );
    for (key, var, ..) in ENV_KEYS {
        assert!(
            text.contains(&format!("[{var}]")),
            "the example does not name {var}, the variable of {key}"
        );
    }
    // Every commented-out setting is valid too: uncommented, the file still loads.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(s)
                if s.split_once(" = ").is_some_and(|(k, _)| {
                    k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                s
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), uncommented).unwrap();
    Config::load(Some(file.path()), Vec::new()).unwrap();
}
