//! Bot API `parse_mode=HTML` parsing into text plus entities (offsets in UTF-16 code units),
//! with Telegram's error messages for malformed markup.

use crate::world::Entity;

fn utf16_len(s: &str) -> i32 {
    s.encode_utf16().count() as i32
}

fn entity(kind: &str, offset: i32, length: i32) -> Entity {
    Entity {
        kind: kind.to_string(),
        offset,
        length,
        url: None,
        language: None,
        user_id: None,
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let i = tag.find(&format!("{name}="))? + name.len() + 1;
    let rest = &tag[i..];
    let quote = rest.chars().next()?;
    if quote == '"' || quote == '\'' {
        let end = rest[1..].find(quote)?;
        Some(decode_entities(&rest[1..1 + end]))
    } else {
        Some(rest.split_whitespace().next()?.to_string())
    }
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Parses Telegram-flavoured HTML. Errors read like the Bot API's `can't parse entities: …`.
pub fn parse_html(input: &str) -> Result<(String, Vec<Entity>), String> {
    let mut text = String::new();
    let mut entities = Vec::new();
    let mut stack: Vec<(String, i32, Option<String>)> = Vec::new();
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let end = rest
                .find('>')
                .ok_or_else(|| "can't parse entities: unclosed start tag".to_string())?;
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                let (open, start, url) = stack.pop().ok_or_else(|| {
                    format!("can't parse entities: Unexpected end tag \"{name}\"")
                })?;
                if open != name
                    && !(open == "span" && name == "span")
                    && !(open == "tg-spoiler" && name == "tg-spoiler")
                {
                    return Err(format!(
                        "can't parse entities: Unmatched end tag \"{name}\", expected \"{open}\""
                    ));
                }
                let len = utf16_len(&text) - start;
                if len <= 0 {
                    continue;
                }
                let kind = match open.as_str() {
                    "b" | "strong" => "bold",
                    "i" | "em" => "italic",
                    "u" | "ins" => "underline",
                    "s" | "strike" | "del" => "strikethrough",
                    "code" => "code",
                    "pre" => "pre",
                    "a" => "text_link",
                    "blockquote" => "blockquote",
                    _ => "spoiler",
                };
                let mut e = entity(kind, start, len);
                if kind == "text_link" {
                    match url.as_deref().and_then(|u| u.strip_prefix("tg://user?id=")) {
                        Some(id) => {
                            e.kind = "text_mention".into();
                            e.user_id = id.parse().ok();
                        }
                        None => e.url = url,
                    }
                }
                entities.push(e);
            } else {
                let name: String = tag
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let ok = matches!(
                    name.as_str(),
                    "b" | "strong"
                        | "i"
                        | "em"
                        | "u"
                        | "ins"
                        | "s"
                        | "strike"
                        | "del"
                        | "code"
                        | "pre"
                        | "a"
                        | "tg-spoiler"
                        | "blockquote"
                ) || (name == "span" && tag.contains("tg-spoiler"));
                if !ok {
                    return Err(format!(
                        "can't parse entities: Unsupported start tag \"{name}\" at byte offset {}",
                        input.len() - rest.len() - tag.len() - 2
                    ));
                }
                let url = if name == "a" { attr(tag, "href") } else { None };
                stack.push((name, utf16_len(&text), url));
            }
        } else if c == '&' {
            let end = rest.find(';').filter(|e| *e <= 8);
            match end {
                Some(e) => {
                    let ent = &rest[..=e];
                    let decoded = match ent {
                        "&lt;" => Some('<'),
                        "&gt;" => Some('>'),
                        "&amp;" => Some('&'),
                        "&quot;" => Some('"'),
                        _ => ent
                            .strip_prefix("&#")
                            .and_then(|n| n.strip_suffix(';'))
                            .and_then(|n| n.parse::<u32>().ok())
                            .and_then(char::from_u32),
                    };
                    match decoded {
                        Some(ch) => {
                            text.push(ch);
                            rest = &rest[e + 1..];
                        }
                        None => {
                            text.push('&');
                            rest = &rest[1..];
                        }
                    }
                }
                None => {
                    text.push('&');
                    rest = &rest[1..];
                }
            }
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if let Some((open, _, _)) = stack.pop() {
        return Err(format!(
            "can't parse entities: Can't find end tag corresponding to start tag \"{open}\""
        ));
    }
    entities.sort_by_key(|e| (e.offset, -e.length));
    Ok((text, entities))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_nested_tags_links_and_escapes_in_utf16() {
        let (t, e) =
            parse_html("Привет <b>мир <i>😀</i></b> &lt;3 <a href=\"https://x.y\">link</a>")
                .unwrap();
        assert_eq!(t, "Привет мир 😀 <3 link");
        assert_eq!(e[0].kind, "bold");
        assert_eq!((e[0].offset, e[0].length), (7, 6));
        assert_eq!(e[1].kind, "italic");
        assert_eq!((e[1].offset, e[1].length), (11, 2));
        assert_eq!(e[2].kind, "text_link");
        assert_eq!(e[2].url.as_deref(), Some("https://x.y"));
    }

    #[test]
    fn rejects_unknown_and_unclosed_tags() {
        assert!(parse_html("<script>x</script>").is_err());
        assert!(parse_html("<b>x").is_err());
        assert!(parse_html("x</b>").is_err());
    }
}
