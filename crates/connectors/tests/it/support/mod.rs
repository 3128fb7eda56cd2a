//! What the connector tests share: a real Radicale (CardDAV) server on a free
//! port with its own storage, and a platform with an org, a connector app and
//! a second (cloud) app that edits records in Connec!.

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mno_e2e::hub_client::{basic_auth, bearer, App, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const USER: &str = "ann";
pub const PASSWORD: &str = "radicale-password-4711";

/// A Radicale server: `python3 -m radicale` (tests/python-requirements.txt).
pub struct Radicale {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub http: reqwest::Client,
}

impl Radicale {
    pub async fn start() -> Radicale {
        let dir = tempfile::Builder::new()
            .prefix("mno-radicale-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("users"), format!("{USER}:{PASSWORD}\n")).unwrap();
        let mut radicale = Radicale {
            port: mno_harness::free_port(),
            dir,
            child: None,
            http: reqwest::Client::new(),
        };
        radicale.run().await;
        radicale
    }

    async fn run(&mut self) {
        let store: PathBuf = self.dir.path().join("store");
        let child = Command::new("python3")
            .args(["-m", "radicale", "--config", ""])
            .arg("--server-hosts")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--storage-filesystem-folder")
            .arg(&store)
            .args([
                "--auth-type",
                "htpasswd",
                "--auth-htpasswd-encryption",
                "plain",
            ])
            .arg("--auth-htpasswd-filename")
            .arg(self.dir.path().join("users"))
            .args(["--logging-level", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Radicale: pip install -r tests/python-requirements.txt");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/", self.port);
        let http = self.http.clone();
        mno_harness::wait_for("Radicale to listen", Duration::from_secs(30), || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.ok().map(|_| ()) }
        })
        .await;
    }

    /// Stop the server (the outside API goes down); its storage stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and storage.
    pub async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    pub fn book_url(&self) -> String {
        format!("http://127.0.0.1:{}/{USER}/contacts/", self.port)
    }

    fn request(&self, method: Method, url: String) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(USER, Some(PASSWORD))
    }

    /// Create the address book (extended MKCOL, RFC 5689).
    pub async fn make_book(&self) {
        let body = r#"<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>"#;
        let response = self
            .request(Method::from_bytes(b"MKCOL").unwrap(), self.book_url())
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    /// Write a card as an outside app would; answers its ETag.
    pub async fn put_card(&self, id: &str, lines: &[&str]) -> String {
        let mut card = vec!["BEGIN:VCARD", "VERSION:3.0"];
        card.extend_from_slice(lines);
        card.push("END:VCARD");
        let response = self
            .request(Method::PUT, format!("{}{id}", self.book_url()))
            .header("Content-Type", "text/vcard")
            .body(card.join("\r\n") + "\r\n")
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "PUT {id}: {}",
            response.status()
        );
        response.headers()["etag"].to_str().unwrap().to_owned()
    }

    /// A card's text, `None` when there is none.
    pub async fn card(&self, id: &str) -> Option<String> {
        let response = self
            .request(Method::GET, format!("{}{id}", self.book_url()))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert!(response.status().is_success());
        Some(response.text().await.unwrap())
    }

    pub async fn delete_card(&self, id: &str) {
        let response = self
            .request(Method::DELETE, format!("{}{id}", self.book_url()))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "DELETE {id}: {}",
            response.status()
        );
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A platform with an org, a connector app and a cloud app (the "CRM"),
/// both installed and sharing people and organizations.
pub struct World {
    pub platform: TestPlatform,
    pub hub: HubClient,
    pub token: String,
    pub org: String,
    pub connector: App,
    pub crm: App,
}

impl World {
    pub async fn start(entities: &[&str]) -> World {
        World::start_on(TestPlatform::spawn().await, entities).await
    }

    /// As [`World::start`], on a platform the test started (PostgreSQL, say).
    pub async fn start_on(platform: TestPlatform, entities: &[&str]) -> World {
        let hub = HubClient::new(&platform.base_url);
        let (_, token) = hub.signup_and_login("owner@example.com").await.unwrap();
        let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
        let shared: Vec<Value> = entities
            .iter()
            .map(|e| json!({"entity": e, "read": true, "write": true}))
            .collect();
        let created = hub
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/hub/v1/apps",
                Some(&bearer(&token)),
                Some(json!({"name": "Contacts connector", "stack": "connector", "webhook_url": null, "shared_entities": shared})),
            )
            .await
            .unwrap();
        let connector = App {
            id: created["id"].as_str().unwrap().to_owned(),
            key: created["credentials"]["key"].as_str().unwrap().to_owned(),
            secret: created["credentials"]["secret"]
                .as_str()
                .unwrap()
                .to_owned(),
            webhook_secret: String::new(),
        };
        let pairs: Vec<(&str, bool, bool)> = entities.iter().map(|e| (*e, true, true)).collect();
        let crm = hub.create_app(&token, "CRM", None, &pairs).await.unwrap();
        hub.install(&token, &org, &connector.id).await.unwrap();
        hub.install(&token, &org, &crm.id).await.unwrap();
        World {
            platform,
            hub,
            token,
            org,
            connector,
            crm,
        }
    }

    pub fn install_path(&self, tail: &str) -> String {
        format!(
            "/hub/v1/orgs/{}/installs/{}/{tail}",
            self.org, self.connector.id
        )
    }

    /// `PUT .../connector`; answers status and body.
    pub async fn configure(&self, body: Value) -> (StatusCode, Value) {
        self.hub
            .call(
                Method::PUT,
                &self.install_path("connector"),
                Some(&bearer(&self.token)),
                Some(body),
            )
            .await
            .unwrap()
    }

    /// `POST .../sync`; answers status and body.
    pub async fn sync(&self) -> (StatusCode, Value) {
        self.hub
            .call(
                Method::POST,
                &self.install_path("sync"),
                Some(&bearer(&self.token)),
                None,
            )
            .await
            .unwrap()
    }

    /// The status code of `GET .../connector` as the org's owner: 404 while
    /// the install has no connector.
    pub async fn connector_code(&self) -> StatusCode {
        self.hub
            .call(
                Method::GET,
                &self.install_path("connector"),
                Some(&bearer(&self.token)),
                None,
            )
            .await
            .unwrap()
            .0
    }

    pub async fn status(&self) -> Value {
        self.hub
            .expect(
                StatusCode::OK,
                Method::GET,
                &self.install_path("connector"),
                Some(&bearer(&self.token)),
                None,
            )
            .await
            .unwrap()["connector"]
            .clone()
    }

    /// The connector app's credentials as the configuration takes them.
    pub fn app_credentials(&self) -> Value {
        json!({"key": self.connector.key, "secret": self.connector.secret})
    }

    /// The record the connector app knows as `local`, `None` when there is none.
    pub async fn connec_by_outside_id(&self, entity: &str, local: &str) -> Option<Value> {
        let path = format!("/connec/api/v2/{}/{entity}/{}", self.org, urlencode(local));
        let (status, body) = self
            .hub
            .call(
                Method::GET,
                &path,
                Some(&basic_auth(&self.connector.key, &self.connector.secret)),
                None,
            )
            .await
            .unwrap();
        match status {
            StatusCode::NOT_FOUND => None,
            StatusCode::OK => Some(body[entity].clone()),
            other => panic!("GET {path}: {other} {body}"),
        }
    }

    /// A call of the CRM app to the record API.
    pub async fn crm(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.hub
            .call(
                method,
                &format!("/connec/api/v2/{}/{path}", self.org),
                Some(&basic_auth(&self.crm.key, &self.crm.secret)),
                body,
            )
            .await
            .unwrap()
    }

    /// The connector app's local id of a record, once it told Connec! one.
    pub async fn outside_id_of(&self, entity: &str, global: &str) -> Option<String> {
        let response = self
            .hub
            .http
            .get(format!(
                "{}/connec/api/v2/{}/{entity}/{global}",
                self.hub.base_url, self.org
            ))
            .header("Authorization", basic_auth(&self.crm.key, &self.crm.secret))
            .header("CONNEC-EXTERNAL-IDS", "true")
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body[entity]["id"].as_array()?.iter().find_map(|entry| {
            (entry["provider"] == self.connector.id.as_str())
                .then(|| entry["id"].as_str().map(str::to_owned))
                .flatten()
        })
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Wait for a condition the runtime brings about in the background.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    mno_harness::wait_for(what, Duration::from_secs(30), check).await
}
