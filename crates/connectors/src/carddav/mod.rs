//! Connector 1: people and organizations as vCards of a CardDAV address book.
//!
//! - Changes are read with `sync-collection` (RFC 6578): the cursor is the
//!   server's sync token, so each pull asks only for what changed; a token the
//!   server no longer knows starts a full pull again.
//! - A record's id is its card's file name in the address book (`<uuid>.vcf`
//!   for cards the platform creates) and its tag the card's ETag; every write
//!   and delete carries `If-Match` (a new card `If-None-Match: *`), so an edit
//!   made outside in between is never overwritten blindly.

pub mod vcard;

use async_trait::async_trait;
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::outside::{
    error_for_status, failed, unreachable, Outside, OutsideError, OutsideRecord, Pulled,
};

/// `settings` of a CardDAV install.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardDavSettings {
    /// The address book's collection URL (ending with `/`).
    pub url: String,
}

/// `credentials` of a CardDAV install: HTTP Basic.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardDavCredentials {
    pub username: String,
    pub password: String,
}

pub struct CardDav {
    http: reqwest::Client,
    collection: url::Url,
    credentials: CardDavCredentials,
}

const SYNC_BODY_START: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">"#;
const SYNC_BODY_END: &str = r#"<D:sync-level>1</D:sync-level>
<D:prop><D:getetag/><C:address-data/></D:prop>
</D:sync-collection>"#;

impl CardDav {
    pub fn new(
        http: reqwest::Client,
        settings: CardDavSettings,
        credentials: CardDavCredentials,
    ) -> Result<CardDav, String> {
        let mut collection = url::Url::parse(&settings.url)
            .map_err(|e| format!("settings.url {:?} is not a URL: {e}", settings.url))?;
        if !collection.path().ends_with('/') {
            let path = format!("{}/", collection.path());
            collection.set_path(&path);
        }
        Ok(CardDav {
            http,
            collection,
            credentials,
        })
    }

    fn card_url(&self, id: &str) -> Result<url::Url, OutsideError> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(OutsideError::Rejected {
                status: 400,
                body: format!("{id:?} is not a card file name"),
            });
        }
        let mut url = self.collection.clone();
        url.path_segments_mut()
            .map_err(|_| OutsideError::Garbage("the address book URL cannot hold paths".into()))?
            .pop_if_empty()
            .push(id);
        Ok(url)
    }

    fn request(&self, method: Method, url: url::Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(&self.credentials.username, Some(&self.credentials.password))
    }

    /// One sync-collection REPORT; `Ok(None)` when the server no longer knows the token.
    async fn sync_report(
        &self,
        token: Option<&str>,
    ) -> Result<Option<(Vec<SyncItem>, String)>, OutsideError> {
        let token_xml = match token {
            Some(t) => format!("<D:sync-token>{}</D:sync-token>", xml_escape(t)),
            None => "<D:sync-token/>".to_owned(),
        };
        let body = format!("{SYNC_BODY_START}{token_xml}{SYNC_BODY_END}");
        let response = self
            .request(
                Method::from_bytes(b"REPORT").unwrap(),
                self.collection.clone(),
            )
            .header("Depth", "1")
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let retry_after = header(&response, "retry-after");
        let text = response.text().await.map_err(unreachable)?;
        if token.is_some()
            && (status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT)
            && text.contains("valid-sync-token")
        {
            return Ok(None);
        }
        if status != StatusCode::MULTI_STATUS {
            return Err(if status.is_success() {
                OutsideError::Garbage(format!("REPORT answered {status}, not 207 Multi-Status"))
            } else {
                error_for_status(status, retry_after.as_deref(), text)
            });
        }
        parse_multistatus(&text).map(Some)
    }
}

/// One `DAV:response` of a sync-collection answer.
#[derive(Debug)]
struct SyncItem {
    id: String,
    /// `None`: the card is gone.
    card: Option<(String, String)>,
}

fn parse_multistatus(text: &str) -> Result<(Vec<SyncItem>, String), OutsideError> {
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| OutsideError::Garbage(format!("the REPORT answer is not XML: {e}")))?;
    let dav = |n: &roxmltree::Node, name: &str| {
        n.tag_name().name() == name && n.tag_name().namespace() == Some("DAV:")
    };
    let root = doc.root_element();
    if !dav(&root, "multistatus") {
        return Err(OutsideError::Garbage(
            "the REPORT answer is not a DAV:multistatus".into(),
        ));
    }
    let token = root
        .children()
        .find(|n| dav(n, "sync-token"))
        .and_then(|n| n.text())
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| OutsideError::Garbage("the REPORT answer has no sync-token".into()))?;
    let mut items = Vec::new();
    for response in root.children().filter(|n| dav(n, "response")) {
        let Some(href) = response
            .children()
            .find(|n| dav(n, "href"))
            .and_then(|n| n.text())
        else {
            continue;
        };
        let id = href
            .trim()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        let id = percent_decode(id);
        let gone = response
            .children()
            .find(|n| dav(n, "status"))
            .and_then(|n| n.text())
            .is_some_and(|s| s.contains(" 404"));
        if gone {
            items.push(SyncItem { id, card: None });
            continue;
        }
        let mut etag = None;
        let mut data = None;
        for node in response.descendants() {
            if dav(&node, "getetag") {
                etag = node.text().map(|t| t.trim().to_owned());
            } else if node.tag_name().name() == "address-data" {
                data = node.text().map(str::to_owned);
            }
        }
        // The collection itself, or a member that is no card.
        if let (Some(etag), Some(data)) = (etag, data) {
            items.push(SyncItem {
                id,
                card: Some((etag, data)),
            });
        }
    }
    Ok((items, token))
}

#[async_trait]
impl Outside for CardDav {
    fn entities(&self) -> Vec<String> {
        vec![vcard::PEOPLE.into(), vcard::ORGANIZATIONS.into()]
    }

    fn mapped_fields(&self, entity: &str) -> Vec<String> {
        vcard::mapped_fields(entity)
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    async fn pull(&self, entity: &str, cursor: Option<&str>) -> Result<Pulled, OutsideError> {
        let (items, token) = match self.sync_report(cursor).await? {
            Some(answer) => answer,
            // An expired token: read everything again (unchanged cards are skipped by tag).
            None => self.sync_report(None).await?.ok_or_else(|| {
                OutsideError::Garbage("the server refused an initial sync-collection".into())
            })?,
        };
        let mut pulled = Pulled {
            cursor: Some(token),
            ..Pulled::default()
        };
        for item in items {
            match item.card {
                None => pulled.deleted.push(item.id),
                Some((etag, data)) => {
                    // A card that does not parse is skipped, not fatal to the others.
                    let Ok(card) = vcard::parse(&data) else {
                        tracing::warn!(card = %item.id, "skipping a card that is not a vCard");
                        continue;
                    };
                    if card.entity == entity {
                        pulled.changed.push(OutsideRecord {
                            id: item.id,
                            tag: etag,
                            updated_at: card.rev,
                            fields: card.fields,
                        });
                    }
                }
            }
        }
        Ok(pulled)
    }

    async fn fetch(&self, entity: &str, id: &str) -> Result<Option<OutsideRecord>, OutsideError> {
        let Some((etag, text)) = self.get(id).await? else {
            return Ok(None);
        };
        let card = vcard::parse(&text).map_err(OutsideError::Garbage)?;
        Ok((card.entity == entity).then(|| OutsideRecord {
            id: id.to_owned(),
            tag: etag,
            updated_at: card.rev,
            fields: card.fields,
        }))
    }

    async fn write(
        &self,
        entity: &str,
        id: Option<&str>,
        if_tag: Option<&str>,
        fields: &Value,
    ) -> Result<(String, String), OutsideError> {
        let (id, existing) = match id {
            Some(id) => (id.to_owned(), self.get(id).await?),
            None => (format!("{}.vcf", uuid::Uuid::now_v7()), None),
        };
        if let (Some(expected), Some((etag, _))) = (if_tag, &existing) {
            if expected != etag {
                return Err(OutsideError::Stale);
            }
        }
        let uid = id.trim_end_matches(".vcf");
        let card = vcard::render(
            entity,
            uid,
            fields,
            existing.as_ref().map(|(_, text)| text.as_str()),
            Utc::now(),
        );
        let url = self.card_url(&id)?;
        let mut request = self
            .request(Method::PUT, url)
            .header("Content-Type", "text/vcard; charset=utf-8")
            .body(card);
        request = match &existing {
            Some((etag, _)) => request.header("If-Match", etag),
            None => request.header("If-None-Match", "*"),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(response).await);
        }
        let etag = match header(&response, "etag") {
            Some(etag) => etag,
            // Servers may leave the ETag out of a PUT answer: read it.
            None => {
                self.get(&id)
                    .await?
                    .ok_or_else(|| OutsideError::Garbage("the card written is gone".into()))?
                    .0
            }
        };
        Ok((id, etag))
    }

    async fn delete(
        &self,
        _entity: &str,
        id: &str,
        if_tag: Option<&str>,
    ) -> Result<(), OutsideError> {
        let mut request = self.request(Method::DELETE, self.card_url(id)?);
        if let Some(tag) = if_tag {
            request = request.header("If-Match", tag);
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(failed(response).await)
    }
}

impl CardDav {
    /// A card's ETag and text, `None` when there is no such card.
    async fn get(&self, id: &str) -> Result<Option<(String, String)>, OutsideError> {
        let response = self
            .request(Method::GET, self.card_url(id)?)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(None);
        }
        let retry_after = header(&response, "retry-after");
        let etag = header(&response, "etag");
        let text = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(error_for_status(status, retry_after.as_deref(), text));
        }
        let etag =
            etag.ok_or_else(|| OutsideError::Garbage("a card came without an ETag".into()))?;
        Ok(Some((etag, text)))
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_answer_lists_changed_and_gone_cards() {
        let xml = r#"<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
 <response><href>/ann/book/</href><propstat><prop><getetag>"c"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href>/ann/book/a%20b.vcf</href><propstat><prop><getetag>"e1"</getetag><CR:address-data>BEGIN:VCARD
END:VCARD</CR:address-data></prop><status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href>/ann/book/gone.vcf</href><status>HTTP/1.1 404 Not Found</status></response>
 <sync-token>http://radicale.org/ns/sync/abc</sync-token>
</multistatus>"#;
        let (items, token) = parse_multistatus(xml).unwrap();
        assert_eq!(token, "http://radicale.org/ns/sync/abc");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "a b.vcf");
        assert_eq!(items[0].card.as_ref().unwrap().0, "\"e1\"");
        assert_eq!(items[1].id, "gone.vcf");
        assert!(items[1].card.is_none());
        assert!(matches!(
            parse_multistatus("<html>oops"),
            Err(OutsideError::Garbage(_))
        ));
    }
}
