//! POS terminals: registration by the acquirer (the TMK is shown once), listing, and what
//! the POS host needs of a terminal: its master key and its current MAK, sealed under the
//! account key at rest.

use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::TerminalRow;

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;

/// Id prefix of a terminal row.
pub const TERMINAL: &str = "trm";
/// Field 41: eight characters.
pub const TERMINAL_ID_CHARS: usize = 8;
/// Field 42: fifteen characters.
pub const MERCHANT_NO_CHARS: usize = 15;

/// `POST /v1/terminals`.
#[derive(Debug, Clone)]
pub struct RegisterTerminal {
    pub merchant_id: String,
    /// Field 41, 8 printable ASCII characters, e.g. `10000001`.
    pub terminal_id: String,
    /// Field 42, 15 printable ASCII characters, e.g. `898100012340001`.
    pub merchant_no: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Terminal {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub merchant_no: String,
    /// The batch of the last sign-on.
    pub batch_no: Option<String>,
    pub signed_on_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The answer to a registration: the terminal and its master key, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedTerminal {
    #[serde(flatten)]
    pub terminal: Terminal,
    /// The terminal master key: 32 hex characters (a double-length 3DES key). Load it into
    /// the terminal; yuanlu never shows it again.
    pub tmk: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TerminalList {
    pub data: Vec<Terminal>,
}

/// A registered terminal as the POS host sees it, keys opened.
#[derive(Clone)]
pub struct PosTerminal {
    pub row: TerminalRow,
    pub tmk: [u8; 16],
    /// The MAK of the last sign-on; `None` before the first.
    pub mak: Option<[u8; 16]>,
}

impl std::fmt::Debug for PosTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PosTerminal")
            .field("id", &self.row.id)
            .finish_non_exhaustive()
    }
}

fn printable(field: &str, value: &str, chars: usize) -> EngineResult<()> {
    if value.len() != chars || !value.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Err(EngineError::validation(
            field,
            format!("give exactly {chars} printable ASCII characters"),
        ));
    }
    Ok(())
}

fn view(row: &TerminalRow) -> Terminal {
    Terminal {
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        terminal_id: row.terminal_id.clone(),
        merchant_no: row.merchant_no.clone(),
        batch_no: row.batch_no.clone(),
        signed_on_at: row.signed_on_at_us.map(from_micros),
        created_at: from_micros(row.created_at_us),
    }
}

fn key_from_hex(text: &str) -> EngineResult<[u8; 16]> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| EngineError::corrupt("a sealed terminal key is not 16 bytes"))
}

impl Engine {
    fn terminal_key_aad(row_id: &str, name: &str) -> String {
        format!("{row_id}:{name}")
    }

    /// Admin: registers a terminal of a merchant and answers its new TMK, once.
    pub async fn register_terminal(
        &self,
        who: &Principal,
        input: RegisterTerminal,
    ) -> EngineResult<CreatedTerminal> {
        who.require_admin()?;
        printable("terminal_id", &input.terminal_id, TERMINAL_ID_CHARS)?;
        printable("merchant_no", &input.merchant_no, MERCHANT_NO_CHARS)?;
        let key = self
            .account_key
            .clone()
            .ok_or(EngineError::AccountKeyNotConfigured)?;
        let tmk: [u8; 16] = rand::rng().random();
        let tmk_hex = hex::encode_upper(tmk);
        let now_us = to_micros(self.clock.now());
        let id = new_id(TERMINAL);
        let tmk_sealed = key
            .seal(&Self::terminal_key_aad(&id, "tmk"), &tmk_hex)
            .map_err(EngineError::corrupt)?;
        let row = TerminalRow {
            id,
            merchant_id: input.merchant_id.clone(),
            terminal_id: input.terminal_id,
            merchant_no: input.merchant_no,
            tmk_sealed,
            mak_sealed: None,
            batch_no: None,
            signed_on_at_us: None,
            created_at_us: now_us,
        };
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        if conn.get_merchant(&row.merchant_id).await?.is_none() {
            return Err(EngineError::NotFound {
                what: "merchant",
                id: row.merchant_id.clone(),
            });
        }
        if !conn.insert_terminal(&row).await? {
            return Err(EngineError::Conflict(format!(
                "terminal {} of merchant number {} is registered already",
                row.terminal_id, row.merchant_no
            )));
        }
        audit::append(
            &mut conn,
            AuditEvent {
                chain: &row.merchant_id,
                at_us: now_us,
                actor: &who.actor(),
                action: "terminal.registered",
                subject_id: &row.id,
                data: json!({ "terminal_id": row.terminal_id, "merchant_no": row.merchant_no }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedTerminal {
            terminal: view(&row),
            tmk: tmk_hex,
        })
    }

    /// The admin sees every terminal; a merchant its own.
    pub async fn list_terminals(&self, who: &Principal) -> EngineResult<TerminalList> {
        let mut pooled = self.db.acquire().await?;
        let rows = pooled.conn().list_terminals(who.merchant_scope()).await?;
        Ok(TerminalList {
            data: rows.iter().map(view).collect(),
        })
    }

    /// The terminal a 41/42 pair names, with its keys opened; `None` when not registered.
    pub async fn pos_terminal(
        &self,
        terminal_id: &str,
        merchant_no: &str,
    ) -> EngineResult<Option<PosTerminal>> {
        let mut pooled = self.db.acquire().await?;
        let Some(row) = pooled
            .conn()
            .find_terminal(terminal_id, merchant_no)
            .await?
        else {
            return Ok(None);
        };
        let key = self
            .account_key
            .clone()
            .ok_or(EngineError::AccountKeyNotConfigured)?;
        let open = |name: &str, sealed: &str| {
            key.open(&Self::terminal_key_aad(&row.id, name), sealed)
                .map_err(|e| EngineError::corrupt(format!("terminal {}: {e}", row.id)))
                .and_then(|hex_text| key_from_hex(&hex_text))
        };
        let tmk = open("tmk", &row.tmk_sealed)?;
        let mak = row
            .mak_sealed
            .as_deref()
            .map(|s| open("mak", s))
            .transpose()?;
        Ok(Some(PosTerminal { row, tmk, mak }))
    }

    /// Records a sign-on: a fresh MAK (sealed) and the terminal's batch.
    pub async fn pos_sign_on(
        &self,
        terminal: &PosTerminal,
        mak: &[u8; 16],
        batch_no: &str,
    ) -> EngineResult<()> {
        let key = self
            .account_key
            .clone()
            .ok_or(EngineError::AccountKeyNotConfigured)?;
        let sealed = key
            .seal(
                &Self::terminal_key_aad(&terminal.row.id, "mak"),
                &hex::encode_upper(mak),
            )
            .map_err(EngineError::corrupt)?;
        let mut tx = self.db.begin().await?;
        tx.conn()
            .sign_on_terminal(
                &terminal.row.id,
                &sealed,
                batch_no,
                to_micros(self.clock.now()),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
