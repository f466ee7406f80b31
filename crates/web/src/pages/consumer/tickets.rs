//! After a successful lookup the page can rate the refund or open a case on it, which the
//! engine accepts with the refund id and its payment's reference. The consumer who looked
//! it up by refund number and phone or card digits may not know that reference, and the
//! page must not show it: the form carries a ticket standing for (refund id, reference)
//! for [`TICKET_SECONDS`].
//!
//! With an account key (always with SQLite; with PostgreSQL when one is configured) the
//! ticket is the pair and its expiry sealed with AES-256-GCM under that key, with its own
//! associated data: nothing is kept in memory, so it survives a restart and works on every
//! server sharing the key, and nobody can read the reference out of it or forge one.
//! Without a key, it is a random id kept in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngExt;
use yuanlu_engine::Engine;

/// How long a looked-up refund may be rated or complained about from that page.
pub const TICKET_SECONDS: u64 = 30 * 60;
/// Tickets kept in memory at most (without a key); the oldest go first.
const TICKETS_MAX: usize = 10_000;
/// The associated data of a sealed ticket: no other sealed value (a reroute's account
/// number, sealed for its refund id) opens as a ticket, nor a ticket as one of them.
const TICKET_AAD: &str = "yuanlu:status-ticket:v1";
/// The longest ticket read: a sealed one is about 200 characters.
const TICKET_CHARS_MAX: usize = 1_024;

/// What a ticket stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub refund_id: String,
    pub reference: String,
}

#[derive(Debug, Default)]
pub struct Tickets {
    map: Mutex<HashMap<String, (Ticket, Instant)>>,
}

impl Tickets {
    /// A ticket for the form: sealed when the engine has an account key.
    pub fn issue(&self, engine: &Engine, ticket: Ticket) -> String {
        if let Some(key) = &engine.account_key {
            let expires = engine.clock.now().timestamp() + TICKET_SECONDS as i64;
            let plain = format!("{}\n{}\n{expires}", ticket.refund_id, ticket.reference);
            match key.seal(TICKET_AAD, &plain) {
                Ok(sealed) => return sealed,
                Err(error) => tracing::warn!(%error, "a status ticket could not be sealed"),
            }
        }
        self.remember(ticket)
    }

    /// What the ticket stands for, if it is one of ours and has not expired.
    pub fn get(&self, engine: &Engine, id: &str) -> Option<Ticket> {
        if id.is_empty() || id.len() > TICKET_CHARS_MAX {
            return None;
        }
        if let Some(key) = &engine.account_key
            && id.contains(':')
        {
            let plain = key.open(TICKET_AAD, id).ok()?;
            let mut fields = plain.split('\n');
            let refund_id = fields.next()?.to_string();
            let reference = fields.next()?.to_string();
            let expires: i64 = fields.next()?.parse().ok()?;
            if fields.next().is_some() || engine.clock.now().timestamp() >= expires {
                return None;
            }
            return Some(Ticket {
                refund_id,
                reference,
            });
        }
        self.recall(id)
    }

    fn remember(&self, ticket: Ticket) -> String {
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

    fn recall(&self, id: &str) -> Option<Ticket> {
        let map = match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.get(id)
            .filter(|(_, at)| at.elapsed() < Duration::from_secs(TICKET_SECONDS))
            .map(|(t, _)| t.clone())
    }
}
