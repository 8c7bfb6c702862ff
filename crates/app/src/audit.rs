//! Reading and verifying the audit chain, and reading the internal event log.

use crate::access::Actor;
use crate::error::AppResult;
use crate::ports::{Store, StoredEvent};
use portcullis_core::audit::{AuditEntry, ChainBreak, ChainVerifier};
use portcullis_core::operator::Permission;
use std::sync::Arc;

const VERIFY_PAGE: u32 = 1_000;

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Intact { entries: i64 },
    Broken(ChainBreak),
}

/// The audit use cases.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub async fn entries(
        &self,
        actor: &Actor,
        after: i64,
        limit: u32,
    ) -> AppResult<Vec<AuditEntry>> {
        actor.require(Permission::ReadAudit)?;
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
        actor.require(Permission::ReadEvents)?;
        Ok(self
            .store
            .events_after(after, limit.clamp(1, VERIFY_PAGE))
            .await?)
    }

    /// Walks the whole chain, page by page, and names the first entry that is wrong.
    pub async fn verify(&self, actor: &Actor) -> AppResult<ChainReport> {
        actor.require(Permission::ReadAudit)?;
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = self.store.audit_entries(after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for entry in &page {
                if let Err(found) = verifier.check(entry) {
                    return Ok(ChainReport::Broken(found));
                }
            }
        }
        let head = self.store.audit_head().await?;
        Ok(match verifier.finish(head.as_ref()) {
            Ok(entries) => ChainReport::Intact { entries },
            Err(found) => ChainReport::Broken(found),
        })
    }
}
