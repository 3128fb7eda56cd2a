//! Input rules of the Hub API. Each rule names the field (a JSON pointer) and
//! says what a good value looks like; [`Problems`] gathers every bad field of
//! a request so the client learns them all at once.

use mno_events::directory::SharedEntity;
use mno_events::ApiError;

use crate::access::{Role, ROLE_NAMES};

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 1024;
pub const MAX_NAME_LEN: usize = 200;

/// Every bad field of one request.
#[derive(Default)]
pub struct Problems(Option<ApiError>);

impl Problems {
    pub fn add(&mut self, pointer: &str, detail: String) {
        let error = ApiError::unprocessable("invalid_field", detail).at_pointer(pointer);
        self.0 = Some(match self.0.take() {
            Some(all) => all.and(error),
            None => error,
        });
    }

    /// Keep `Ok` values, record `Err` details under `pointer`.
    pub fn check<T>(&mut self, pointer: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(detail) => {
                self.add(pointer, detail);
                None
            }
        }
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, String> {
    value.ok_or_else(|| format!("{field} is required"))
}

/// A plausible email address, lower-cased.
/// A plausible address, in one canonical form so that one mailbox makes one
/// account: the part before `@` in ASCII (RFC 5322 atoms joined by dots), the
/// domain as DNS labels, an internationalised one in its ASCII (IDNA) form,
/// all lower-cased.
pub fn email(value: Option<&str>) -> Result<String, String> {
    let raw = required("email", value)?.trim();
    let bad = |why: &str| {
        format!("email {raw:?} is not an email address ({why}); use the form name@example.com")
    };
    if raw.len() > 254 {
        return Err(bad("longer than 254 characters"));
    }
    let (local, domain) = raw.rsplit_once('@').ok_or_else(|| bad("no @"))?;
    let atom = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c))
    };
    if local.len() > 64 || !local.split('.').all(atom) {
        return Err(bad(
            "the part before @ takes ASCII letters, digits, dots between them and !#$%&'*+/=?^_`{|}~-",
        ));
    }
    let ascii_domain = match url::Host::parse(domain) {
        Ok(url::Host::Domain(ascii)) => ascii,
        Ok(_) => return Err(bad("the domain must be a name, not an address")),
        Err(_) => return Err(bad("the domain is not a valid name")),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let labels: Vec<&str> = ascii_domain.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|l| label(l)) {
        return Err(bad(
            "the domain needs labels of letters, digits and inner hyphens, such as example.com",
        ));
    }
    Ok(format!("{}@{ascii_domain}", local.to_ascii_lowercase()))
}

pub fn password(value: Option<&str>) -> Result<String, String> {
    let raw = required("password", value)?;
    let chars = raw.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(format!(
            "password is {chars} characters long; use at least {MIN_PASSWORD_LEN}"
        ));
    }
    // Ten spaces or ten NULs are no secret; control characters cannot be typed.
    if mno_events::text::is_blank(raw) {
        return Err(
            "password is only spaces or invisible characters; use letters, digits or symbols too"
                .into(),
        );
    }
    if raw.chars().any(char::is_control) {
        return Err(
            "password contains control characters (such as NUL or a line break); use letters, digits, spaces and symbols"
                .into(),
        );
    }
    if raw.len() > MAX_PASSWORD_LEN {
        return Err(format!("password is longer than {MAX_PASSWORD_LEN} bytes"));
    }
    Ok(raw.to_owned())
}

/// A display name: one line that shows something, at most 200 characters, no
/// control characters.
pub fn name(field: &str, value: Option<&str>) -> Result<String, String> {
    let raw = required(field, value)?.trim();
    if mno_events::text::is_blank(raw) {
        return Err(format!(
            "{field} is blank (only spaces or invisible characters); give a name"
        ));
    }
    if raw.chars().count() > MAX_NAME_LEN {
        return Err(format!("{field} is longer than {MAX_NAME_LEN} characters"));
    }
    // U+2028 and U+2029 break lines as a newline does, in every place a name is shown.
    if raw
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(format!(
            "{field} contains control characters or line breaks; a name is one line of text"
        ));
    }
    if raw.chars().any(is_bidi_control) {
        return Err(format!(
            "{field} contains a bidirectional control character (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), which makes text display in another order than it reads"
        ));
    }
    Ok(raw.to_owned())
}

pub use mno_events::text::is_bidi_control;

/// An ISO 4217 code: three letters, returned upper-case.
pub fn currency(value: Option<&str>) -> Result<String, String> {
    let raw = required("currency", value)?.trim();
    if raw.len() == 3 && raw.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(raw.to_ascii_uppercase())
    } else {
        Err(format!(
            "currency {raw:?} is not an ISO 4217 code; use three letters such as USD, EUR or AUD"
        ))
    }
}

/// An IANA time zone name such as `Europe/Paris` (not checked against the database).
pub fn timezone(value: &str) -> Result<String, String> {
    let raw = value.trim();
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "timezone {raw:?} is not a time zone name; use an IANA name such as Europe/Paris or UTC"
        ))
    }
}

/// An ISO 3166-1 alpha-2 code, upper-case; empty means not given.
pub fn country(value: &str) -> Result<String, String> {
    let raw = value.trim();
    if raw.is_empty() || (raw.len() == 2 && raw.chars().all(|c| c.is_ascii_alphabetic())) {
        Ok(raw.to_ascii_uppercase())
    } else {
        Err(format!(
            "country {raw:?} is not an ISO 3166 code; use two letters such as AU, FR or US"
        ))
    }
}

pub fn role(value: Option<&str>) -> Result<Role, String> {
    let raw = required("role", value)?;
    raw.parse()
        .map_err(|_| format!("role {raw:?} is unknown; use one of {ROLE_NAMES}"))
}

/// An absolute http(s) URL.
pub fn url(field: &str, value: &str) -> Result<String, String> {
    let parsed = url::Url::parse(value.trim())
        .map_err(|e| format!("{field} {value:?} is not a URL ({e}); use https://host/path"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "{field} {value:?} must be an http or https URL with a host"
        ));
    }
    Ok(parsed.to_string())
}

/// A webhook URL: [`url`], then the platform's one check for a registered
/// webhook URL (`ssrf::check_registration`: no credentials in it and, unless
/// private webhooks are allowed, nothing aimed at this machine or a private
/// network, which delivery would refuse on every send).
pub fn webhook_url(field: &str, value: &str, allow_private: bool) -> Result<String, String> {
    let checked = url(field, value)?;
    mno_events::webhook::ssrf::check_registration(&checked, allow_private)
        .map_err(|refused| format!("{field}: {refused}"))?;
    Ok(checked)
}

/// Most redirect URIs an app may register per list.
pub const MAX_REDIRECT_URIS: usize = 20;

/// What a redirect URI may be written with: RFC 3986's characters (letters,
/// digits and `-._~:/?#[]@!$&'()*+,;=`) and `%` followed by two hex digits.
const REDIRECT_URI_CHARACTERS: &str =
    "ASCII letters, digits, -._~:/?#[]@!$&'()*+,;= and %XX escapes";

/// Whether `value` is written only with RFC 3986's characters, each `%`
/// starting an escape. Anything else (a backslash, a quote, a non-ASCII
/// letter) is mended one way by browsers and another by other URL parsers.
fn rfc3986_characters(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'%' => {
            bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        }
        b if b.is_ascii_alphanumeric() => true,
        b => b"-._~:/?#[]@!$&'()*+,;=".contains(&b),
    })
}

/// A sign-in redirect URI (OAuth 2.0 security BCP): an absolute http(s) URL
/// without fragment, user or password; plain http only for this machine
/// (loopback, for local development) unless `allow_http`. Kept exactly as
/// given, since requests must match it exactly; so it must be written as
/// every parser reads it: RFC 3986 characters only, and in the form the URL
/// parser (as browsers) writes it back (see [`redirect_uri_shape`]).
pub fn redirect_uri(field: &str, value: &str, allow_http: bool) -> Result<String, String> {
    let parsed = redirect_uri_shape(field, value)?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if parsed.scheme() == "http" && !loopback && !allow_http {
        return Err(format!(
            "{field} {value:?} must use https (plain http is accepted only for localhost)"
        ));
    }
    Ok(value.to_owned())
}

/// The rules of a redirect URI's writing, apart from the choice of http or
/// https: also checked when a sign-in request names a registered URI, so a
/// URI registered before these rules is not sent to either.
pub fn redirect_uri_shape(field: &str, value: &str) -> Result<url::Url, String> {
    if value.is_empty()
        || value.len() > 2000
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{field} {value:?} must be a URL of 1 to 2000 characters without spaces"
        ));
    }
    if !rfc3986_characters(value) {
        return Err(format!(
            "{field} {value:?} has a character browsers and URL parsers read differently (such as \\, a quote or a non-ASCII letter); write it with {REDIRECT_URI_CHARACTERS} only"
        ));
    }
    // Kept as given and matched exactly, so it must be written as a browser
    // reads it: `https:///cb` parses (host "cb") but is not how anyone writes it.
    let authority_given = value
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if !authority_given {
        return Err(format!(
            "{field} {value:?} must name its host right after the scheme: https://host/callback"
        ));
    }
    let parsed = url::Url::parse(value)
        .map_err(|e| format!("{field} {value:?} is not a URL ({e}); use https://host/callback"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "{field} {value:?} must be an http or https URL with a host"
        ));
    }
    if parsed.fragment().is_some() {
        return Err(format!("{field} {value:?} must not have a fragment (#...)"));
    }
    // Any `@` before the path, even with nothing before it (`https://@host`,
    // which the parser drops): what comes before it is a user, not the host.
    let authority = value.split_once("://").map_or("", |(_, rest)| {
        rest.split(['/', '?', '#']).next().unwrap_or("")
    });
    if authority.contains('@') || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{field} {value:?} must not carry a user or password (an @ before the host); give https://host/callback"
        ));
    }
    // As the parser (and a browser) writes it back, but for the `/` it adds
    // to a bare host: upper-case hosts, default ports, `..` segments and
    // numeric host forms are each read otherwise than they are written.
    let written = parsed.as_str();
    let same = written == value || (parsed.path() == "/" && written == format!("{value}/"));
    if !same {
        return Err(format!(
            "{field} {value:?} is read as {written:?} by browsers; register it in that form"
        ));
    }
    Ok(parsed)
}

/// A list of redirect URIs: each checked, no repeats, at most [`MAX_REDIRECT_URIS`].
pub fn redirect_uris(
    problems: &mut Problems,
    field: &str,
    list: &[String],
    allow_http: bool,
) -> Vec<String> {
    if list.len() > MAX_REDIRECT_URIS {
        problems.add(
            &format!("/{field}"),
            format!(
                "{field} has {} URIs; the limit is {MAX_REDIRECT_URIS}",
                list.len()
            ),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for (i, value) in list.iter().enumerate() {
        let pointer = format!("/{field}/{i}");
        if let Some(uri) = problems.check(&pointer, redirect_uri(field, value, allow_http)) {
            if out.contains(&uri) {
                problems.add(&pointer, format!("{field} lists {uri:?} twice"));
            } else {
                out.push(uri);
            }
        }
    }
    out
}

/// An entity name: lower-case letters, digits and '_', as Connec! collections are.
pub fn entity_name(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "entity {value:?} is not a collection name; use lower-case names such as invoices or people"
        ))
    }
}

/// `shared_entities`: no duplicates, each entity a collection name, and one
/// of `known` when that is given (a typo such as `invoice` would otherwise be
/// kept, and the app refused on `invoices` later).
pub fn shared_entities(
    problems: &mut Problems,
    list: &[SharedEntity],
    known: &[String],
) -> Vec<SharedEntity> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let pointer = format!("/shared_entities/{i}/entity");
        if let Some(entity) = problems.check(&pointer, entity_name(&item.entity)) {
            if !known.is_empty() && !known.contains(&entity) {
                problems.add(
                    &pointer,
                    format!(
                        "there is no collection {entity:?}; the collections are: {}",
                        known.join(", ")
                    ),
                );
                continue;
            }
            if !seen.insert(entity.clone()) {
                problems.add(
                    &pointer,
                    format!("entity {entity:?} is listed twice; list each entity once"),
                );
                continue;
            }
            out.push(SharedEntity {
                entity,
                read: item.read,
                write: item.write,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_kept_as_given_and_checked() {
        let ok = |v: &str| redirect_uri("redirect_uris", v, false);
        // Kept to the letter: the URL crate would add a slash to a bare host.
        assert_eq!(
            ok("https://books.example").unwrap(),
            "https://books.example"
        );
        assert_eq!(
            ok("http://localhost:3000/cb").unwrap(),
            "http://localhost:3000/cb"
        );
        assert_eq!(
            ok("http://127.0.0.1:9/cb").unwrap(),
            "http://127.0.0.1:9/cb"
        );
        assert!(ok("http://books.example/cb").unwrap_err().contains("https"));
        assert!(redirect_uri("redirect_uris", "http://books.example/cb", true).is_ok());
        assert!(ok("https://books.example/cb#x")
            .unwrap_err()
            .contains("fragment"));
        assert!(ok("https://u:p@books.example/cb")
            .unwrap_err()
            .contains("user"));
        assert!(ok(" https://books.example/cb").is_err());
        assert!(ok("javascript:alert(1)").is_err());
        assert!(ok("books.example/cb").is_err());
        // Written otherwise than a browser reads them (from an outside audit).
        assert!(ok("https:///cb").unwrap_err().contains("host right after"));
        assert!(ok("https://a.com/ cb")
            .unwrap_err()
            .contains("without spaces"));
        assert!(ok("https://a.com/\tcb").is_err());
    }

    /// From an outside audit: URIs that browsers and other parsers read
    /// differently, or that carry a user, were accepted.
    #[test]
    fn redirect_uris_read_differently_or_with_a_user_are_refused() {
        let ok = |v: &str| redirect_uri("redirect_uris", v, false);
        for (uri, says) in [
            ("https://app.example\\@evil.example/cb", "read differently"),
            ("https://app.example\\evil.example/cb", "read differently"),
            ("https://app.example/c\"b", "read differently"),
            ("https://app.example/<cb>", "read differently"),
            ("https://app.example/c{b}", "read differently"),
            ("https://b\u{fc}cher.example/cb", "read differently"),
            ("https://app.example/%zzcb", "read differently"),
            ("https://user@app.example/cb", "user or password"),
            ("https://@app.example/cb", "user or password"),
            ("https://app.example@evil.example/cb", "user or password"),
            ("https://App.Example/cb", "register it in that form"),
            ("https://app.example:443/cb", "register it in that form"),
            ("https://app.example/a/../cb", "register it in that form"),
            ("https://0x7f.1/cb", "register it in that form"),
        ] {
            let refused = ok(uri).unwrap_err();
            assert!(refused.contains(says), "{uri}: {refused}");
            assert!(refused.starts_with("redirect_uris"), "{refused}");
        }
        for fine in [
            "https://app.example/cb?tenant=a&x=%20y",
            "https://app.example:8443/cb",
            "https://[::1]:8443/cb",
            "https://xn--bcher-kva.example/cb",
            "https://app.example/cb/",
        ] {
            assert_eq!(ok(fine).as_deref(), Ok(fine));
        }
        assert!(ok("https://app.example\\@evil.example/cb")
            .unwrap_err()
            .contains("ASCII letters, digits"));
    }

    #[test]
    fn passwords_of_spaces_or_control_characters_and_bidi_names_are_refused() {
        assert!(password(Some("          "))
            .unwrap_err()
            .contains("only spaces"));
        assert!(password(Some(&"\0".repeat(10)))
            .unwrap_err()
            .contains("control characters"));
        assert!(password(Some("correct horse battery")).is_ok());
        assert!(name("name", Some("Ann\u{202E}gpj.exe"))
            .unwrap_err()
            .contains("bidirectional"));
        assert!(name("name", Some("\u{2067}Acme")).is_err());
        assert!(name("name", Some("Acme\u{200F}")).is_err());
        assert!(password(Some(&"\u{200B}".repeat(12))).is_err());
        assert!(name("name", Some("Zoë \u{05D0} Acme")).is_ok());
        // From an outside trial: a name of zero-width characters showed nothing, and a
        // line separator broke the operator's one-line output.
        assert!(name("name", Some("\u{200B}\u{200B}"))
            .unwrap_err()
            .contains("blank"));
        assert!(name("name", Some("Ann\u{2028}Admin"))
            .unwrap_err()
            .contains("line breaks"));
        assert!(name("name", Some("Ann\u{2029}Admin")).is_err());
        // Joiners inside a name are part of some scripts and emoji: kept.
        assert!(name("name", Some("Mehr\u{200C}dad \u{1F469}\u{200D}\u{1F4BB}")).is_ok());
        assert!(
            crate::billing::money::description(Some("Seats \u{202E}0001"))
                .unwrap_err()
                .contains("bidirectional")
        );
    }

    #[test]
    fn emails() {
        assert_eq!(email(Some(" Ann@Example.COM ")).unwrap(), "ann@example.com");
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "a..b@example.com",
            ".a@example.com",
            "a@example..com",
            "a@-example.com",
            "<script>@example.com",
            "a@[127.0.0.1]",
            "x\u{202e}@example.com",
            "\u{ff41}nn@example.com",
        ] {
            assert!(email(Some(bad)).is_err(), "{bad}");
        }
        // One mailbox, one form: an internationalised domain in its ASCII form,
        // whether its letters came composed or decomposed.
        let composed = email(Some("ann@ex\u{e4}mple.com")).unwrap();
        let decomposed = email(Some("ann@exa\u{308}mple.com")).unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(composed, "ann@xn--exmple-cua.com");
        assert_eq!(
            email(Some("o'brien+tag@example.co.uk")).unwrap(),
            "o'brien+tag@example.co.uk"
        );
        assert!(email(None).unwrap_err().contains("required"));
    }

    #[test]
    fn passwords_currencies_roles() {
        assert!(password(Some("short")).unwrap_err().contains("at least 10"));
        assert!(password(Some("long enough!")).is_ok());
        assert_eq!(currency(Some("eur")).unwrap(), "EUR");
        assert!(currency(Some("EURO")).is_err());
        assert!(role(Some("owner")).unwrap_err().contains("super_admin"));
        assert!(timezone("Europe/Paris").is_ok() && timezone("Paris; DROP").is_err());
        assert!(url("webhook_url", "ftp://x").is_err());
        assert!(url("webhook_url", "https://example.com/hook").is_ok());
        for private in [
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://LocalHost./x",
            "http://10.0.0.1/x",
            "http://[::1]/x",
            "http://0x7f000001/x",
            "http://0.0.0.0/x",
        ] {
            let refused = webhook_url("webhook_url", private, false).unwrap_err();
            assert!(
                refused.contains("MNO_ALLOW_PRIVATE_WEBHOOKS"),
                "{private}: {refused}"
            );
            assert!(
                webhook_url("webhook_url", private, true).is_ok(),
                "{private} allowed"
            );
        }
        assert!(
            webhook_url("webhook_url", "https://user:pass@example.com/x", true)
                .unwrap_err()
                .contains("user or password")
        );
        assert!(webhook_url("webhook_url", "https://books.example.com/mno", false).is_ok());
    }
}
