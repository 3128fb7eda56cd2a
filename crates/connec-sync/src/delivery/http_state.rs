//! What the delivery routes (the log, dead letters, the change stream) share.

use std::sync::Arc;

use mno_events::idm::Idm;

use super::open_streams::OpenStreams;
use super::supervisor::Supervisor;

#[derive(Clone)]
pub struct ApiState {
    pub supervisor: Arc<Supervisor>,
    pub idm: Arc<dyn Idm>,
    /// Open SSE streams per caller.
    pub sse_streams: Arc<OpenStreams>,
}
