//! A write request under its `Idempotency-Key`: the same key and request
//! answer the same, once written; without a key, the write runs as it comes.

use std::future::Future;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mno_events::ApiError;
use serde_json::Value;

use super::access::Access;
use super::answer::{answer, answer_stored, status_of, view_of};
use super::errors::write_error;
use super::headers::correlation_id;
use super::ApiState;
use crate::idempotency::{self, Answer, Begin};
use crate::render;
use crate::write::{WriteContext, WriteError, Written};

/// An idempotent request: its key and the hash of what it asked.
pub struct Fingerprint {
    key: String,
    hash: String,
}

/// Everything a write handler needs once the caller is known.
pub struct WriteRequest<'a> {
    state: &'a ApiState,
    headers: &'a HeaderMap,
    pub access: Access,
}

impl<'a> WriteRequest<'a> {
    pub fn new(state: &'a ApiState, headers: &'a HeaderMap, access: Access) -> Self {
        Self {
            state,
            headers,
            access,
        }
    }

    /// The write's context, with the caller's correlation id.
    pub fn context(&self, event_id: Option<String>) -> WriteContext {
        self.access.context(correlation_id(self.headers), event_id)
    }

    /// The request's fingerprint under its Idempotency-Key (`None` without
    /// one): taken before the handler moves the record out of the body.
    pub fn fingerprint(&self, method: &str, path: &str, body: &Value) -> Option<Fingerprint> {
        let key = self.headers.get(idempotency::HEADER)?;
        Some(Fingerprint {
            key: key.to_str().unwrap_or_default().to_owned(),
            hash: idempotency::request_hash(
                method,
                path,
                &serde_json::to_vec(body).unwrap_or_default(),
            ),
        })
    }

    /// Run `write` under the request's Idempotency-Key, if it has one.
    pub async fn write<F, Fut>(
        self,
        fingerprint: Option<Fingerprint>,
        write: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(WriteContext) -> Fut,
        Fut: Future<Output = Result<Written, WriteError>>,
    {
        let root = format!("/{}", self.access.def.name);
        let Some(Fingerprint { key, hash }) = fingerprint else {
            let written = write(self.context(None))
                .await
                .map_err(|e| write_error(e, &root))?;
            return Ok(self.respond(&written).await);
        };
        let scope = format!(
            "{:?}:{}",
            self.access.principal.kind, self.access.principal.id
        );
        match self.state.idempotency.begin(&scope, &key, hash).await? {
            Begin::Replay(answer) => Ok(self.replay(answer)),
            Begin::Proceed {
                slot,
                event_id,
                request_hash,
            } => {
                let written = match write(self.context(Some(event_id.clone()))).await {
                    Ok(written) => written,
                    Err(e) => {
                        if !e.may_have_been_stored() {
                            self.state.idempotency.release(&slot).await;
                        }
                        return Err(write_error(e, &root));
                    }
                };
                let (status, view) = self.rendered(&written).await;
                let stored = Answer {
                    status: status.as_u16(),
                    body: view.clone(),
                    seq: written.record.seq,
                };
                self.state
                    .idempotency
                    .finish(&slot, request_hash, event_id, stored)
                    .await;
                Ok(answer(
                    status,
                    self.access.def.name,
                    view,
                    written.record.seq,
                ))
            }
        }
    }

    async fn respond(&self, written: &Written) -> Response {
        if !render::wants_external_ids(self.headers) {
            return answer_stored(status_of(written), self.access.def.name, &written.record);
        }
        let (status, view) = self.rendered(written).await;
        answer(status, self.access.def.name, view, written.record.seq)
    }

    /// 201 for a new record, 200 otherwise; the record as the caller sees it.
    async fn rendered(&self, written: &Written) -> (StatusCode, Value) {
        let status = status_of(written);
        let view = view_of(
            self.state,
            self.headers,
            self.access.org.as_str(),
            self.access.def.name,
            &written.record,
        )
        .await;
        (status, view)
    }

    fn replay(&self, stored: Answer) -> Response {
        let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
        let mut response = answer(status, self.access.def.name, stored.body, stored.seq);
        response.headers_mut().insert(
            "idempotent-replayed",
            "true".parse().expect("a valid header value"),
        );
        response
    }
}
