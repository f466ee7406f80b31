//! Group commit for refund creation.
//!
//! A refund is acknowledged only once it is durable, and a durable commit costs a flush
//! (an fsync of SQLite's WAL, a WAL flush on PostgreSQL). Creates that arrive together are
//! therefore written together: a writer task takes every create waiting in its queue, runs
//! them in **one** transaction — each sees the ones before it, so every rule (refundable
//! amount, day limits, the funding rule, idempotency) holds exactly as if they had run
//! alone — commits once, and only then answers each of them.
//! - The batch costs a fixed number of statements whatever its size
//!   ([`crate::refunds::create_batch`]): one read per table for all its creates, the rules
//!   decided in memory in order, one multi-row write per table.
//!
//! - A create that a rule refuses writes nothing, so the others go on in the same
//!   transaction.
//! - If the database fails inside a batch (or at its commit), the batch is rolled back and
//!   each of its creates runs again alone, in its own transaction ([`create_alone`]). That
//!   is safe even if a failed commit did reach the disk: `merchant_refund_no` makes the
//!   second run find the first one's refund.
//! - Writers are sharded by merchant: a merchant's locks (payment rows, balance row, audit
//!   head) are only ever taken by one writer, so writers never wait for each other. SQLite
//!   has a single write lock, so it gets a single writer.
//! - No create waits for a batch to fill: a writer takes what is queued when it is free,
//!   so under light load a batch is one create, and under heavy load one flush serves many.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use yuanlu_store::{Backend, Db};

use crate::error::{EngineError, EngineResult};
use crate::refunds::{
    BatchStop, CreateFailure, CreateJob, CreateOutcome, create_alone, create_batch, create_in,
};
use crate::tx_memo::TxMemo;

/// Most creates in one transaction: bounds how long a batch holds its locks.
pub const BATCH_MAX: usize = 128;
/// Writers on PostgreSQL by default (each with its own connection).
pub const POSTGRES_WRITERS: usize = 8;
/// Overrides [`POSTGRES_WRITERS`] (1–64), for measuring one count against another.
pub const POSTGRES_WRITERS_ENV: &str = "YUANLU_POSTGRES_WRITERS";

fn postgres_writers() -> usize {
    let set = std::env::var(POSTGRES_WRITERS_ENV).ok();
    writers_from(set.as_deref()).unwrap_or_else(|value| {
        tracing::warn!(
            "{POSTGRES_WRITERS_ENV}={value:?} is not a number from 1 to 64; using {POSTGRES_WRITERS} writers"
        );
        POSTGRES_WRITERS
    })
}

/// The writer count a [`POSTGRES_WRITERS_ENV`] value sets (unset: the default), or the value
/// itself when it is not one from 1 to 64.
fn writers_from(value: Option<&str>) -> Result<usize, String> {
    match value {
        None => Ok(POSTGRES_WRITERS),
        Some(value) => value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| value.to_string()),
    }
}
/// Creates waiting per writer before callers wait to queue theirs.
const QUEUE_DEPTH: usize = 4 * BATCH_MAX;

/// Counts of what the writers did, since the engine started.
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    /// Transactions that held more than one create and committed.
    batches_committed: AtomicU64,
    /// Creates in those transactions.
    creates_batched: AtomicU64,
    /// Batches rolled back and replayed one create at a time.
    batches_replayed: AtomicU64,
    /// Creates the database aborted to break a deadlock or a serialization conflict
    /// (`StoreError::Conflict`) and that were run again.
    conflict_retries: AtomicU64,
}

/// A copy of [`GroupCommitStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitCounts {
    pub batches_committed: u64,
    pub creates_batched: u64,
    pub batches_replayed: u64,
    pub conflict_retries: u64,
}

impl GroupCommitStats {
    pub fn counts(&self) -> GroupCommitCounts {
        GroupCommitCounts {
            batches_committed: self.batches_committed.load(Ordering::Relaxed),
            creates_batched: self.creates_batched.load(Ordering::Relaxed),
            batches_replayed: self.batches_replayed.load(Ordering::Relaxed),
            conflict_retries: self.conflict_retries.load(Ordering::Relaxed),
        }
    }

    /// A create aborted by a conflict is about to run again.
    pub(crate) fn count_conflict_retry(&self) {
        self.conflict_retries.fetch_add(1, Ordering::Relaxed);
    }
}

struct Queued {
    job: CreateJob,
    reply: oneshot::Sender<EngineResult<CreateOutcome>>,
}

/// The writer tasks of one engine. Dropping it ends them once their queues are empty.
pub struct RefundWriter {
    target: BatchTarget,
    shards: Vec<mpsc::Sender<Queued>>,
}

/// Where a batch is written, and what it counts into.
#[derive(Clone)]
pub(crate) struct BatchTarget {
    pub db: Db,
    pub stats: Arc<GroupCommitStats>,
}

impl RefundWriter {
    /// Starts the writers; must run inside a Tokio runtime.
    pub(crate) fn start(target: BatchTarget) -> RefundWriter {
        let writers = match target.db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => postgres_writers(),
        };
        // SQLite's one writer gets a connection of its own (`Db::writer_pool`). PostgreSQL's
        // writers stay on the shared pool: with a pool of their own, the hot merchant's
        // closed-loop creates fell from ~1,750/s to ~515/s (issue 13, BENCHMARKS.md), not
        // yet explained.
        let writer_db = match target.db.backend() {
            Backend::Sqlite => target.db.writer_pool(1),
            Backend::Postgres => target.db.clone(),
        };
        let writer_target = BatchTarget {
            db: writer_db,
            stats: target.stats.clone(),
        };
        let shards = (0..writers)
            .map(|_| {
                let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
                tokio::spawn(run_writer(writer_target.clone(), receiver));
                sender
            })
            .collect();
        RefundWriter { target, shards }
    }

    /// Queues a create on its merchant's writer and waits for the durable answer.
    pub(crate) async fn submit(&self, job: CreateJob) -> EngineResult<CreateOutcome> {
        let shard = &self.shards[shard_of(&job.merchant_id, self.shards.len())];
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(queued)) = shard.send(Queued { job, reply }).await {
            // The writer is gone (it can only end by a panic): create alone, here.
            return create_alone(&self.target.db, &queued.job, &self.target.stats).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(EngineError::corrupt(
                "the refund writer stopped before answering; the refund was not acknowledged",
            ))
        })
    }
}

/// A stable shard per merchant (FNV-1a), the same in every process.
fn shard_of(merchant_id: &str, shards: usize) -> usize {
    let hash = merchant_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    (hash % shards.max(1) as u64) as usize
}

async fn run_writer(target: BatchTarget, mut queue: mpsc::Receiver<Queued>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (jobs, replies): (Vec<CreateJob>, Vec<_>) =
            batch.into_iter().map(|q| (q.job, q.reply)).unzip();
        let answers = write_batch(&target, &jobs).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The caller may have gone (its connection closed); the refund stands anyway,
            // and repeating the request finds it.
            let _ = reply.send(answer);
        }
    }
}

/// Every create of the batch in one transaction; the answers in the batch's order.
pub(crate) async fn write_batch(
    target: &BatchTarget,
    batch: &[CreateJob],
) -> Vec<EngineResult<CreateOutcome>> {
    let stats = &target.stats;
    if batch.len() > 1 {
        if let Some(answers) = write_together(&target.db, batch).await {
            stats.batches_committed.fetch_add(1, Ordering::Relaxed);
            stats
                .creates_batched
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            return answers;
        }
        stats.batches_replayed.fetch_add(1, Ordering::Relaxed);
    }
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch {
        answers.push(create_alone(&target.db, job, stats).await);
    }
    answers
}

/// `None` when the batch broke and was rolled back: nothing of it was acknowledged.
///
/// The creates run sorted by merchant (answers keep the batch's order); creates of one
/// payment keep their order of arrival. The batch is written with a fixed number of
/// statements ([`create_batch`]); a batch holding a create it cannot write that way (a
/// void completing at once) runs its creates one by one in the transaction instead.
async fn write_together(db: &Db, batch: &[CreateJob]) -> Option<Vec<EngineResult<CreateOutcome>>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| batch[a].merchant_id.cmp(&batch[b].merchant_id));
    let mut tx = db.begin().await.ok()?;
    let answers = match create_batch(&mut tx.conn(), batch, &order).await {
        Ok(answers) => answers,
        Err(BatchStop::OneByOne) => {
            drop(tx);
            return write_one_by_one(db, batch, &order).await;
        }
        Err(BatchStop::Broken(error)) => {
            tracing::warn!(%error, creates = batch.len(), "group commit rolled back; creating one by one");
            return None;
        }
    };
    if let Err(error) = tx.commit().await {
        tracing::warn!(%error, creates = batch.len(), "group commit failed; creating one by one");
        return None;
    }
    answers.into_iter().collect()
}

/// The creates of a batch one after the other in one transaction ([`create_in`] each).
///
/// Locks are taken in one global order, so that batches of two servers sharing a PostgreSQL
/// database cannot deadlock: every payment of the batch first (by id), then the merchants'
/// rows, merchant by merchant.
async fn write_one_by_one(
    db: &Db,
    batch: &[CreateJob],
    order: &[usize],
) -> Option<Vec<EngineResult<CreateOutcome>>> {
    let mut tx = db.begin().await.ok()?;
    let mut payment_ids: Vec<String> = batch.iter().map(|j| j.input.payment_id.clone()).collect();
    payment_ids.sort();
    payment_ids.dedup();
    if let Err(error) = tx.conn().lock_payments_in_order(&payment_ids).await {
        tracing::warn!(%error, creates = batch.len(), "group commit could not lock its payments; creating one by one");
        return None;
    }
    let mut answers: Vec<Option<EngineResult<CreateOutcome>>> =
        batch.iter().map(|_| None).collect();
    let mut memo = TxMemo::default();
    for &index in order {
        let job = &batch[index];
        match create_in(&mut tx.conn(), &mut memo, job).await {
            Ok(outcome) => answers[index] = Some(Ok(outcome)),
            Err(CreateFailure::Refused(error)) => answers[index] = Some(Err(error)),
            Err(CreateFailure::Broken(error)) => {
                tracing::warn!(%error, creates = batch.len(), "group commit rolled back; creating one by one");
                return None;
            }
        }
    }
    if let Err(error) = tx.commit().await {
        tracing::warn!(%error, creates = batch.len(), "group commit failed; creating one by one");
        return None;
    }
    answers.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_count_is_read_from_1_to_64_and_anything_else_is_named() {
        assert_eq!(writers_from(None), Ok(POSTGRES_WRITERS));
        assert_eq!(writers_from(Some("1")), Ok(1));
        assert_eq!(writers_from(Some(" 64 ")), Ok(64));
        for bad in ["0", "65", "-2", "eight", ""] {
            assert_eq!(writers_from(Some(bad)), Err(bad.to_string()));
        }
    }

    #[test]
    fn a_merchant_always_lands_on_the_same_shard() {
        for shards in 1..8 {
            let first = shard_of("mch_0001", shards);
            assert!(first < shards);
            assert_eq!(first, shard_of("mch_0001", shards));
        }
        let spread: std::collections::HashSet<usize> = (0..100)
            .map(|n| shard_of(&format!("mch_{n:04}"), 4))
            .collect();
        assert_eq!(spread.len(), 4, "100 merchants reach every one of 4 shards");
    }
}
