//! After a successful lookup the page can rate the refund or open a case on it, which the
//! engine accepts with the refund id and its payment's reference. The consumer who looked
//! it up by refund number and phone digits may not know that reference, and the page must
//! not show it: the server keeps it behind a random ticket in the form, in memory, for
//! [`TICKET_SECONDS`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngExt;

/// How long a looked-up refund may be rated or complained about from that page.
pub const TICKET_SECONDS: u64 = 30 * 60;
/// Tickets kept at most; the oldest go first.
const TICKETS_MAX: usize = 10_000;

/// What a ticket stands for.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub refund_id: String,
    pub reference: String,
}

#[derive(Debug, Default)]
pub struct Tickets {
    map: Mutex<HashMap<String, (Ticket, Instant)>>,
}

impl Tickets {
    pub fn issue(&self, ticket: Ticket) -> String {
        let bytes: [u8; 24] = rand::rng().random();
        let id = hex::encode(bytes);
        let mut map = match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        if map.len() >= TICKETS_MAX {
            map.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(TICKET_SECONDS));
            while map.len() >= TICKETS_MAX {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => map.remove(&k),
                    None => break,
                };
            }
        }
        map.insert(id.clone(), (ticket, now));
        id
    }

    pub fn get(&self, id: &str) -> Option<Ticket> {
        let map = match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.get(id)
            .filter(|(_, at)| at.elapsed() < Duration::from_secs(TICKET_SECONDS))
            .map(|(t, _)| t.clone())
    }
}
