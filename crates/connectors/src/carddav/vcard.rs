//! vCards (RFC 6350, and the 3.0 cards many servers still hold) as Connec!
//! people and organizations.
//!
//! A card of `KIND:org` (or Apple's `X-ABShowAs:COMPANY`) is an organization;
//! any other card is a person. Only the properties below are mapped; a card
//! written back keeps every other property it had (addresses, notes, photos).
//!
//! | Connec! people | vCard | Connec! organizations | vCard |
//! |---|---|---|---|
//! | first_name, last_name, title | N (given, family, prefix) | name | FN and ORG |
//! | email | first EMAIL | email | first EMAIL |
//! | phone | first TEL | phone | first TEL |
//! | job_title | TITLE | website | URL |

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

pub const PEOPLE: &str = "people";
pub const ORGANIZATIONS: &str = "organizations";

/// The Connec! fields a card of `entity` carries.
pub fn mapped_fields(entity: &str) -> &'static [&'static str] {
    if entity == ORGANIZATIONS {
        &["name", "email", "phone", "website"]
    } else {
        &[
            "first_name",
            "last_name",
            "title",
            "job_title",
            "email",
            "phone",
        ]
    }
}

/// One content line: `NAME;PARAMS:value`, its name upper-cased without group.
#[derive(Debug, Clone)]
struct Line {
    name: String,
    raw: String,
    value: String,
}

/// A parsed card: which entity it is, its fields in Connec!'s terms, its REV.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub entity: &'static str,
    pub fields: Value,
    pub rev: Option<DateTime<Utc>>,
}

/// Read a card; `Err` names what is wrong with it.
pub fn parse(text: &str) -> Result<Card, String> {
    let lines = content_lines(text);
    if !lines.iter().any(|l| l.name == "BEGIN") {
        return Err("not a vCard (no BEGIN:VCARD)".into());
    }
    let first = |name: &str| {
        lines
            .iter()
            .find(|l| l.name == name)
            .map(|l| unescape(&l.value))
            .filter(|v| !v.is_empty())
    };
    let is_org = first("KIND").is_some_and(|k| k.eq_ignore_ascii_case("org"))
        || first("X-ABSHOWAS").is_some_and(|k| k.eq_ignore_ascii_case("COMPANY"));
    let mut fields = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            fields.insert(key.to_owned(), json!(v));
        }
    };
    let entity = if is_org {
        let org_name = lines
            .iter()
            .find(|l| l.name == "ORG")
            .map(|l| unescape(split_structured(&l.value)[0]))
            .filter(|v| !v.is_empty());
        put("name", first("FN").or(org_name));
        put("website", first("URL"));
        ORGANIZATIONS
    } else {
        if let Some(n) = lines.iter().find(|l| l.name == "N") {
            let parts = split_structured(&n.value);
            let part = |i: usize| parts.get(i).map(|p| unescape(p)).filter(|p| !p.is_empty());
            put("last_name", part(0));
            put("first_name", part(1));
            put("title", part(3));
        } else {
            put("first_name", first("FN"));
        }
        put("job_title", first("TITLE"));
        PEOPLE
    };
    put("email", first("EMAIL"));
    put("phone", first("TEL"));
    let rev = first("REV").and_then(|r| parse_rev(&r));
    Ok(Card {
        entity,
        fields: Value::Object(fields),
        rev,
    })
}

/// A card for `fields` of `entity`, built on `existing` when there is one
/// (its unmapped properties are kept), stamped with `rev`.
pub fn render(
    entity: &str,
    uid: &str,
    fields: &Value,
    existing: Option<&str>,
    rev: DateTime<Utc>,
) -> String {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut mapped: Vec<(&str, String)> = Vec::new();
    if entity == ORGANIZATIONS {
        let name = text("name").unwrap_or("");
        mapped.push(("KIND", "KIND:org".into()));
        mapped.push(("FN", format!("FN:{}", escape(name))));
        mapped.push(("ORG", format!("ORG:{}", escape(name))));
        if let Some(url) = text("website") {
            mapped.push(("URL", format!("URL:{}", escape(url))));
        }
    } else {
        let first = text("first_name").unwrap_or("");
        let last = text("last_name").unwrap_or("");
        let full = [first, last]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        mapped.push(("FN", format!("FN:{}", escape(&full))));
        mapped.push((
            "N",
            format!(
                "N:{};{};;{};",
                escape(last),
                escape(first),
                escape(text("title").unwrap_or(""))
            ),
        ));
        if let Some(job) = text("job_title") {
            mapped.push(("TITLE", format!("TITLE:{}", escape(job))));
        }
    }
    if let Some(email) = text("email") {
        mapped.push(("EMAIL", format!("EMAIL:{}", escape(email))));
    }
    if let Some(phone) = text("phone") {
        mapped.push(("TEL", format!("TEL:{}", escape(phone))));
    }
    mapped.push(("REV", format!("REV:{}", rev.format("%Y%m%dT%H%M%SZ"))));

    // Properties the mapping owns: the first of each is ours; later ones
    // (a second email, a second phone) stay as the outside app wrote them.
    const OWNED: &[&str] = &[
        "KIND", "FN", "N", "ORG", "URL", "TITLE", "EMAIL", "TEL", "REV",
    ];
    let mut kept = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in existing.map(content_lines).unwrap_or_default() {
        let skip = matches!(line.name.as_str(), "BEGIN" | "END" | "VERSION" | "UID")
            || (OWNED.contains(&line.name.as_str()) && seen.insert(line.name.clone()))
            || line.name == "KIND"
            || line.name == "REV";
        if !skip {
            kept.push(line.raw);
        }
    }
    let mut out = vec![
        "BEGIN:VCARD".to_owned(),
        "VERSION:4.0".to_owned(),
        format!("UID:{}", escape(uid)),
    ];
    out.extend(mapped.into_iter().map(|(_, line)| line));
    out.extend(kept);
    out.push("END:VCARD".into());
    out.join("\r\n") + "\r\n"
}

/// Unfold (a line break followed by a space or tab continues the line) and split.
fn content_lines(text: &str) -> Vec<Line> {
    let mut unfolded: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = raw.strip_prefix([' ', '\t']) {
            if let Some(last) = unfolded.last_mut() {
                last.push_str(rest);
                continue;
            }
        }
        if !raw.is_empty() {
            unfolded.push(raw.to_owned());
        }
    }
    unfolded
        .into_iter()
        .filter_map(|raw| {
            let colon = value_colon(&raw)?;
            let head = &raw[..colon];
            let name = head.split(';').next().unwrap_or("");
            let name = name.rsplit('.').next().unwrap_or(name).to_ascii_uppercase();
            Some(Line {
                name,
                value: raw[colon + 1..].to_owned(),
                raw,
            })
        })
        .collect()
}

/// The colon that ends the name and parameters (not one inside a quoted parameter).
fn value_colon(line: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Split a structured value on unescaped `;`.
fn split_structured(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ';' if !escaped => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    parts.push(&value[start..]);
    parts
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace(',', "\\,")
        .replace(';', "\\;")
}

/// REV as vCard writes it: `20261203T061500Z`, `2026-12-03T06:15:00Z`, or a date.
fn parse_rev(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(t, format) {
            return Some(at.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y%m%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_round_trips_and_keeps_unmapped_properties() {
        let outside = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:Bo Lee\r\nN:Lee;Bo;;Dr;\r\nEMAIL;TYPE=work:bo@example.com\r\nEMAIL:bo2@example.com\r\nNOTE:met at the fair\\, 2026\r\nTITLE:Buyer\r\nREV:20261201T100000Z\r\nEND:VCARD\r\n";
        let card = parse(outside).unwrap();
        assert_eq!(card.entity, PEOPLE);
        assert_eq!(
            card.fields,
            json!({"first_name": "Bo", "last_name": "Lee", "title": "Dr", "job_title": "Buyer", "email": "bo@example.com"})
        );
        assert_eq!(card.rev.unwrap().to_rfc3339(), "2026-12-01T10:00:00+00:00");

        let mut fields = card.fields.clone();
        fields["last_name"] = json!("Li; Jr");
        let written = render(PEOPLE, "u1", &fields, Some(outside), Utc::now());
        assert!(
            written.contains("NOTE:met at the fair\\, 2026"),
            "{written}"
        );
        assert!(written.contains("EMAIL:bo2@example.com"), "{written}");
        assert_eq!(written.matches("EMAIL").count(), 2, "{written}");
        let again = parse(&written).unwrap();
        assert_eq!(again.fields["last_name"], "Li; Jr");
        assert_eq!(again.fields["email"], "bo@example.com");
    }

    #[test]
    fn an_organization_is_a_card_of_kind_org() {
        let written = render(
            ORGANIZATIONS,
            "o1",
            &json!({"name": "Acme, Inc.", "website": "https://acme.example"}),
            None,
            Utc::now(),
        );
        let card = parse(&written).unwrap();
        assert_eq!(card.entity, ORGANIZATIONS);
        assert_eq!(
            card.fields,
            json!({"name": "Acme, Inc.", "website": "https://acme.example"})
        );
        let folded = "BEGIN:VCARD\r\nVERSION:3.0\r\nORG:Glo\r\n bex;Sales\r\nX-ABShowAs:COMPANY\r\nEND:VCARD";
        assert_eq!(parse(folded).unwrap().fields, json!({"name": "Globex"}));
        assert!(parse("hello").is_err());
    }
}
