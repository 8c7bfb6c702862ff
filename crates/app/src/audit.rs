//! Reading and verifying the audit chain, exporting its signed head, and reading the internal
//! event log.
//!
//! Verification streams: it reads the database's head first, then pages through the entries up
//! to it, holding one page at a time, so its memory does not grow with the chain.

use crate::ErrorCode;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::ports::{Clock, Store, StoredEvent};
use portcullis_core::audit::{
    AuditEntry, AuditKeys, ChainBreak, ChainSummary, ChainVerifier, ExportedHead, SignedHead,
    check_seal,
};
use portcullis_core::operator::Permission;
use std::sync::Arc;

const VERIFY_PAGE: u32 = 1_000;

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Intact(ChainSummary),
    Broken(ChainBreak),
}

/// The audit use cases.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
    keys: Arc<AuditKeys>,
    clock: Arc<dyn Clock>,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>, keys: Arc<AuditKeys>, clock: Arc<dyn Clock>) -> Self {
        Self { store, keys, clock }
    }

    pub async fn entries(
        &self,
        actor: &Actor,
        after: i64,
        limit: u32,
    ) -> AppResult<Vec<AuditEntry>> {
        actor.require_operator(Permission::ReadAudit)?;
        Ok(self
            .store
            .audit_entries(after, limit.clamp(1, VERIFY_PAGE))
            .await?)
    }

    /// The internal event log after position `after`.
    pub async fn events(
        &self,
        actor: &Actor,
        after: i64,
        limit: u32,
    ) -> AppResult<Vec<StoredEvent>> {
        actor.require_operator(Permission::ReadEvents)?;
        Ok(self
            .store
            .events_after(after, limit.clamp(1, VERIFY_PAGE))
            .await?)
    }

    /// Walks the chain up to the database's head, page by page, and names the first entry that
    /// is wrong. With `since`, the chain must also extend that exported head; a head file whose
    /// signature does not verify is refused before anything is read.
    pub async fn verify(
        &self,
        actor: &Actor,
        since: Option<&SignedHead>,
    ) -> AppResult<ChainReport> {
        actor.require_operator(Permission::ReadAudit)?;
        let exported = since.map(|head| self.open_head(head)).transpose()?;
        let head = self.store.audit_head().await?;
        let mut verifier = ChainVerifier::new(&self.keys, head);
        if let Some(exported) = &exported {
            verifier = verifier.extending(exported);
        }
        let mut after = 0;
        'pages: loop {
            let page = self.store.audit_entries(after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for entry in &page {
                if !verifier.covers(entry.seq) {
                    break 'pages;
                }
                if let Err(found) = verifier.check(entry) {
                    return Ok(ChainReport::Broken(found));
                }
            }
        }
        Ok(match verifier.finish() {
            Ok(summary) => ChainReport::Intact(summary),
            Err(found) => ChainReport::Broken(found),
        })
    }

    fn open_head(&self, head: &SignedHead) -> AppResult<ExportedHead> {
        head.open(&self.keys)
            .map_err(|e| AppError::invalid(ErrorCode::BadAuditHead, e.to_string()))
    }

    /// The chain's current head, signed with the audit head key, for keeping outside the
    /// database. Its entry must carry a valid seal: a head is never signed for an entry someone
    /// without the audit key wrote.
    pub async fn export_head(&self, actor: &Actor) -> AppResult<SignedHead> {
        actor.require_operator(Permission::ReadAudit)?;
        let head = self.store.audit_head().await?;
        let Some(head) = head.filter(|head| head.seq > 0) else {
            return Err(AppError::Conflict(
                "the audit chain is empty: there is no head to export".into(),
            ));
        };
        let entry = self.store.audit_entries(head.seq - 1, 1).await?;
        let entry = entry
            .into_iter()
            .next()
            .filter(|entry| entry.seq == head.seq && entry.hash == head.hash);
        let Some(entry) = entry else {
            return Err(AppError::Conflict(format!(
                "the audit head records entry {}, which is missing or differs; run `portcullis audit verify`",
                head.seq
            )));
        };
        check_seal(&self.keys, head.legacy_until, &entry).map_err(|found| {
            AppError::Conflict(format!("the audit head cannot be exported: {found}"))
        })?;
        ExportedHead {
            seq: entry.seq,
            hash: entry.hash,
            entry_at: entry.at,
            exported_at: self.clock.now(),
        }
        .sign(&self.keys)
        .map_err(|e| AppError::Internal(e.to_string()))
    }
}
