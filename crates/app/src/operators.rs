//! Operators: creating them (the token is shown once and only its hash is kept), listing,
//! revoking, and turning a presented token back into an [`Actor`].

use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{Clock, Operator, Store, Write};
use crate::random;
use aws_lc_rs::digest;
use portcullis_core::account::is_valid_identifier;
use portcullis_core::operator::{Permission, Role};
use portcullis_core::secret::Secret;
use serde_json::json;
use std::sync::Arc;

/// Prefix of operator tokens, so that a leaked one is recognisable (and greppable by scanners).
pub const TOKEN_PREFIX: &str = "pco_";

/// A newly created operator with its token, shown once.
#[derive(Debug)]
pub struct NewOperator {
    pub operator: Operator,
    pub token: Secret,
}

/// The operator use cases.
#[derive(Debug, Clone)]
pub struct Operators {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Where a revocation is announced, so other processes forget the token at once.
    push: crate::push::Push,
}

/// The stored form of a token: lowercase hex SHA-256. Tokens carry 256 random bits, so a fast
/// hash is enough (there is nothing to brute-force) and lookups stay cheap.
pub fn token_hash(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

impl Operators {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, push: crate::push::Push) -> Self {
        Self { store, clock, push }
    }

    pub async fn create(&self, actor: &Actor, name: &str, role: Role) -> AppResult<NewOperator> {
        actor.require_operator(Permission::ManageOperators)?;
        if !is_valid_identifier(name) {
            return Err(AppError::invalid(
                ErrorCode::InvalidName,
                "an operator name is 1 to 64 letters, digits, `_`, `-`, `.` or `:`",
            ));
        }
        let now = self.clock.now();
        let token = format!("{TOKEN_PREFIX}{}", random::alphanumeric(43)?);
        let operator = Operator {
            id: random::identifier("op")?,
            name: name.to_owned(),
            role,
            token_hash: token_hash(&token),
            created_at: now,
            revoked_at: None,
        };
        let change = Change::global(actor, now)
            .write(Write::InsertOperator(operator.clone()))
            .audit(
                "operator.created",
                format!("operator:{}", operator.id),
                json!({ "name": name, "role": role.as_str() }),
            );
        self.store.commit(change.into_set()).await?;
        Ok(NewOperator {
            operator,
            token: Secret::new(token.into_bytes()),
        })
    }

    pub async fn list(&self, actor: &Actor) -> AppResult<Vec<Operator>> {
        actor.require_operator(Permission::ManageOperators)?;
        Ok(self.store.list_operators().await?)
    }

    pub async fn revoke(&self, actor: &Actor, id: &str) -> AppResult<Operator> {
        actor.require_operator(Permission::ManageOperators)?;
        let mut operator = self
            .store
            .operator(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("operator {id}")))?;
        if operator.revoked_at.is_some() {
            return Ok(operator);
        }
        // Without an admin token nobody could create operators or revoke a leaked token any
        // more, short of editing the database: the store refuses to revoke the last live admin
        // token (`conflict`), in the same transaction as the revoke.
        let now = self.clock.now();
        let change = Change::global(actor, now)
            .write(Write::RevokeOperator {
                id: id.to_owned(),
                at: now,
            })
            .audit(
                "operator.revoked",
                format!("operator:{id}"),
                json!({ "name": operator.name }),
            );
        self.store.commit(change.into_set()).await?;
        self.push.committed(crate::ports::Pushed::Operators);
        operator.revoked_at = Some(now);
        Ok(operator)
    }

    /// The actor behind a bearer token, if the token is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> AppResult<Actor> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(AppError::Unauthenticated);
        }
        match self
            .store
            .operator_by_token_hash(&token_hash(token))
            .await?
        {
            Some(operator) if operator.revoked_at.is_none() => {
                Ok(Actor::operator(operator.id, operator.role))
            }
            _ => Err(AppError::Unauthenticated),
        }
    }
}
