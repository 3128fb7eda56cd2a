//! A cap on the connections one client address holds open, so that a single
//! client cannot take every slot of the edge's cap (many slow connections
//! from one place). Proxies the operator trusts carry many clients' traffic
//! and are not capped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Open connections per client address.
pub struct ClientSlots {
    per_client: usize,
    exempt: Vec<IpAddr>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; dropping it frees the slot.
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: Option<IpAddr>,
}

impl ClientSlots {
    pub fn new(per_client: usize, exempt: Vec<IpAddr>) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            exempt,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `client`, unless it already holds its share.
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        if self.exempt.contains(&client) {
            return Some(ClientSlot {
                slots: self.clone(),
                client: None,
            });
        }
        let mut open = self
            .open
            .lock()
            .expect("never poisoned: no panics under it");
        let held = open.entry(client).or_insert(0);
        if *held >= self.per_client {
            return None;
        }
        *held += 1;
        Some(ClientSlot {
            slots: self.clone(),
            client: Some(client),
        })
    }

    pub fn per_client(&self) -> usize {
        self.per_client
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(client) = self.client else {
            return;
        };
        let mut open = self
            .slots
            .open
            .lock()
            .expect("never poisoned: no panics under it");
        if let Some(held) = open.get_mut(&client) {
            *held -= 1;
            if *held == 0 {
                open.remove(&client);
            }
        }
    }
}

/// Tell a client over its share why, then close: a 429 in JSON, as any other
/// refusal of the platform, written in the background (a client that does
/// not read gets 5 s).
pub fn refuse(mut stream: TcpStream, per_client: usize) {
    tokio::spawn(async move {
        let body = serde_json::json!({"errors": [{
            "status": "429",
            "code": "too_many_connections",
            "title": "Too Many Requests",
            "detail": format!(
                "this address already holds {per_client} open connections, the most one client may; \
                 reuse them (keep-alive) or close some, then connect again"
            ),
        }]})
        .to_string();
        let answer = format!(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_a_freed_slot_is_reused() {
        let slots = ClientSlots::new(2, vec![IpAddr::from([10, 0, 0, 9])]);
        let client = IpAddr::from([192, 0, 2, 1]);
        let first = slots.take(client).expect("first");
        let _second = slots.take(client).expect("second");
        assert!(slots.take(client).is_none(), "a third is over the share");
        // Another client is not counted against this one.
        assert!(slots.take(IpAddr::from([192, 0, 2, 2])).is_some());
        drop(first);
        assert!(slots.take(client).is_some(), "a freed slot is taken again");
        // A trusted proxy is not capped.
        let proxy: Vec<_> = (0..5)
            .map(|_| slots.take(IpAddr::from([10, 0, 0, 9])))
            .collect();
        assert!(proxy.iter().all(Option::is_some));
    }
}
