//! How yuanlu's PostgreSQL schema spreads over several databases with Citus (docs/scaling.md),
//! as data a test checks against the migrations (`tests/distributable.rs`): every table's
//! placement, the store's hot-path statements, and the known exceptions with their reasons.
//!
//! The rules the test holds the schema to (Citus's): a distributed table's PRIMARY KEY,
//! UNIQUE constraints and unique indexes include its distribution column; a foreign key
//! between distributed tables includes the distribution column on both sides; a reference
//! table has no foreign key to a distributed table. And the store's hot-path statements
//! filter every distributed table they touch by its distribution column (a router query,
//! one shard), or insert it.

/// The distribution column of yuanlu's distributed tables.
pub const DISTRIBUTION_COLUMN: &str = "merchant_id";

/// The table every distributed table is co-located with (`colocate_with`): all of them
/// hash the same merchant id to the same shard, so a merchant's rows live on one node.
pub const COLOCATION_LEADER: &str = "payments";

/// Where a table lives on a Citus cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Hash-distributed by this column (holding a merchant id), co-located with
    /// [`COLOCATION_LEADER`].
    Distributed(&'static str),
    /// A reference table: one copy on every node, so any shard joins it locally and a
    /// distributed table may refer to it. Writes go to every node (two-phase commit).
    Reference,
}

/// One table's placement and why.
#[derive(Debug, Clone, Copy)]
pub struct TablePlan {
    pub table: &'static str,
    pub placement: Placement,
    pub reason: &'static str,
}

const fn by_merchant(table: &'static str, reason: &'static str) -> TablePlan {
    TablePlan {
        table,
        placement: Placement::Distributed(DISTRIBUTION_COLUMN),
        reason,
    }
}

const fn reference(table: &'static str, reason: &'static str) -> TablePlan {
    TablePlan {
        table,
        placement: Placement::Reference,
        reason,
    }
}

/// Every table of the migrations, in the order docs/citus/distribute.sql distributes them
/// (reference tables first, then the co-location leader, then the rest).
pub const PLAN: &[TablePlan] = &[
    reference(
        "merchants",
        "read on every request (settings) by every shard; few rows, rare writes",
    ),
    reference(
        "api_keys",
        "authentication finds a key by its hash before the merchant is known; admin keys have no merchant",
    ),
    reference(
        "settlement_runs",
        "one row per business date, read by every create (the void rule)",
    ),
    reference(
        "staff_users",
        "sign-in finds a user by name before the merchant is known; acquirer staff have no merchant",
    ),
    reference(
        "staff_sessions",
        "found by token hash on every page request; refers to staff_users",
    ),
    reference(
        "pos_terminals",
        "the POS host finds a terminal by fields 41/42 before the merchant is known; few rows",
    ),
    reference(
        "reconciliations",
        "a channel statement covers the whole acquirer (merchant_id ''); one row per import",
    ),
    reference(
        "recon_exceptions",
        "acquirer-wide exception queue of an import (refers to reconciliations); few rows",
    ),
    by_merchant(
        "payments",
        "the co-location leader: every refund locks its payment",
    ),
    by_merchant("refunds", "the create path and dispatch, per merchant"),
    by_merchant(
        "merchant_balances",
        "locked by every create (the funding rule)",
    ),
    by_merchant(
        "merchant_days",
        "a merchant day's running totals, read and written by every create",
    ),
    by_merchant("merchant_webhooks", "read by every create"),
    by_merchant(
        "merchant_settings_versions",
        "a merchant's settings history",
    ),
    by_merchant("webhook_outbox", "written in the refund's transaction"),
    by_merchant("sms_outbox", "written in the refund's transaction"),
    by_merchant("cases", "about one refund of the merchant"),
    by_merchant("feedback", "about one refund of the merchant"),
    by_merchant("refund_arrival_answers", "about one refund of the merchant"),
    by_merchant(
        "public_lookup_failures",
        "counts wrong facts given for one refund",
    ),
    by_merchant(
        "public_request_failures",
        "counts wrong facts given for one payment",
    ),
    by_merchant("ledger_postings", "written in the refund's transaction"),
    by_merchant("ledger_entries", "the lines of a posting"),
    by_merchant(
        "settlement_statements",
        "one per merchant and business date",
    ),
    by_merchant("bank_statement_imports", "a merchant's own bank statements"),
    by_merchant("evidence", "proof on one refund or case of the merchant"),
    by_merchant(
        "evidence_holds",
        "one refund of the merchant waiting for evidence",
    ),
    by_merchant(
        "refund_deductions",
        "the lines of one refund of the merchant",
    ),
    by_merchant(
        "pos_journal",
        "a terminal's requests; the terminal names the merchant",
    ),
    TablePlan {
        table: "audit_log",
        placement: Placement::Distributed("chain"),
        reason: "one chain per merchant, named by the merchant id (and 'system')",
    },
    TablePlan {
        table: "audit_heads",
        placement: Placement::Distributed("chain"),
        reason: "locked by every append to its chain",
    },
];

/// A schema rule a table breaks on purpose, with why (the test fails on any other
/// violation, and on an entry here that no longer occurs).
#[derive(Debug, Clone, Copy)]
pub struct SchemaException {
    pub table: &'static str,
    /// The constraint or index as the test names it (`PRIMARY KEY (a, b)`,
    /// `UNIQUE INDEX name (a, b)`, `FOREIGN KEY (a) REFERENCES t (b)`).
    pub what: &'static str,
    pub reason: &'static str,
}

/// Known schema exceptions. Empty: the migrations are distributable as they stand.
pub const SCHEMA_EXCEPTIONS: &[SchemaException] = &[];

/// A statement (or the statements of a function) of the store's hot path, found in the
/// store's source by the test: a `const`/`static` or an `fn` of `file` (under `src/`).
#[derive(Debug, Clone, Copy)]
pub struct HotItem {
    pub file: &'static str,
    pub item: &'static str,
}

const fn hot(file: &'static str, item: &'static str) -> HotItem {
    HotItem { file, item }
}

/// Files whose every SQL statement is on the hot path (besides [`HOT_PATH`]): the
/// statements of a refund's create path.
pub const HOT_FILES: &[&str] = &["sql.rs"];

/// The hot path: each statement here touching a distributed table filters it by its
/// distribution column (or inserts it), so that it runs on one shard.
pub const HOT_PATH: &[HotItem] = &[
    // The create path (besides sql.rs): the payment, the idempotent repeat, the refund.
    hot("queries_payments.rs", "PAYMENT_OF_MERCHANT"),
    hot("queries_payments.rs", "PAYMENT_OF_MERCHANT_FOR_UPDATE"),
    hot("queries_payments.rs", "lock_payments_in_order"),
    hot("queries_refunds.rs", "insert_refund"),
    hot("queries_refunds.rs", "find_refund_by_merchant_no"),
    // Refund reads and changes.
    hot("queries_refunds.rs", "REFUND_OF_MERCHANT"),
    hot("queries_refunds.rs", "refunds_of_payment"),
    hot("queries_refunds.rs", "update_refund_status"),
    hot("queries_refunds.rs", "update_refund_terms"),
    // Dispatch: the claim and one update per intent.
    hot("queries_dispatch.rs", "claim_due_refunds"),
    hot("queries_dispatch.rs", "queue_refund_for_dispatch"),
    hot("queries_dispatch.rs", "mark_refund_sent"),
    hot("queries_dispatch.rs", "release_refund"),
    hot("queries_dispatch.rs", "record_refund_accepted"),
    hot("queries_dispatch.rs", "record_refund_outcome"),
    hot("queries_dispatch.rs", "reroute_refund"),
    // The audit chain's head and appends.
    hot("queries_audit.rs", "lock_audit_head"),
    hot("queries_audit.rs", "select_audit_head_for_update"),
    hot("queries_audit.rs", "append_audit"),
];

/// Hot-path statements that are cross-shard on purpose, with how they run on Citus.
#[derive(Debug, Clone, Copy)]
pub struct QueryException {
    pub file: &'static str,
    pub item: &'static str,
    pub reason: &'static str,
}

/// Known hot-path exceptions (the test fails on any other statement without the filter,
/// and on an entry here that no longer occurs).
pub const QUERY_EXCEPTIONS: &[QueryException] = &[
    QueryException {
        file: "queries_dispatch.rs",
        item: "claim_due_refunds",
        reason: "dispatch claims due refunds of every merchant in due order (one queue for all); \
                 on Citus a worker claims one merchant's due refunds at a time \
                 (docs/scaling.md, 'Dispatch')",
    },
    QueryException {
        file: "queries_payments.rs",
        item: "lock_payments_in_order",
        reason: "a group-committed batch locks the payments of several merchants in id order \
                 (merchants share a writer); on Citus the writers are sharded like the data so \
                 a batch is one shard's, and the lock gains `merchant_id = ANY($2)` \
                 (docs/scaling.md, 'The create path')",
    },
];
