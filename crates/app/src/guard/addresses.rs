//! The withdrawal-address allow-list: adding an address is a widening (step-up, cool-down);
//! removing one is immediate; an API withdrawal may only go to an address on the list.

use super::Guard;
use super::stepup::target;
use super::widening::{PendingReceipt, WideningRequest};
use crate::ErrorCode;
use crate::access::Actor;
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::ports::{PendingAction, WithdrawalAddress, Write};
use portcullis_core::address::canonical;
use portcullis_core::events::{Effective, EventBody, EventContext, StepUp};
use portcullis_core::guard::fund_window::UsdCents;
use portcullis_core::guard::stepup::Action;
use portcullis_core::guard::{StepUpMethod, Widening};
use portcullis_core::operator::Permission;
use serde_json::json;

const MAX_FIELD: usize = 128;

/// An address the customer asks to allow-list.
#[derive(Debug, Clone)]
pub struct NewAddress {
    pub address: String,
    pub asset: String,
    pub network: String,
    pub label: String,
    pub ctx: EventContext,
}

/// "May this withdrawal go ahead?", as the exchange asks it just before making one.
#[derive(Debug, Clone, Default)]
pub struct WithdrawalRequest {
    pub account: String,
    pub network: String,
    pub address: String,
    /// The key the withdrawal comes through, when it comes through the API.
    pub key_id: Option<String>,
    /// Its value in USD: needed when the key's fund window is capped.
    pub amount_usd: Option<f64>,
}

/// The answer to "may this account withdraw to this address now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalCheck {
    pub allowed: bool,
    /// Stable reason when refused: `account_frozen`, `address_not_allowlisted`, or for the
    /// key named: `key_not_active`, `key_cannot_withdraw`, `fund_window_lapsed`,
    /// `amount_required`, `fund_window_cap_reached`.
    pub reason: Option<&'static str>,
}

fn field(name: &'static str, value: &str, required: bool) -> AppResult<String> {
    let value = value.trim();
    if (required && value.is_empty())
        || value.chars().count() > MAX_FIELD
        || value.chars().any(char::is_control)
    {
        return Err(AppError::invalid(
            ErrorCode::InvalidAddress,
            format!(
                "`{name}` must be {}at most {MAX_FIELD} printable characters",
                if required { "1 to " } else { "" }
            ),
        ));
    }
    Ok(value.to_owned())
}

/// Whether two texts name one address (case variants of an EVM or bech32 address do).
fn same_address(a: &str, b: &str) -> bool {
    canonical(a) == canonical(b)
}

impl Guard {
    pub async fn addresses(
        &self,
        actor: &Actor,
        account: &str,
    ) -> AppResult<Vec<WithdrawalAddress>> {
        actor.access_account(Permission::ReadKeys, account)?;
        self.account(account).await?;
        Ok(self.store.addresses(account).await?)
    }

    /// The fields of `request` as stored (trimmed, upper-case asset and network), unless one is
    /// malformed or the address is already on the list.
    async fn validated(
        &self,
        account: &str,
        request: &NewAddress,
    ) -> AppResult<(String, String, String, String)> {
        let address = field("address", &request.address, true)?;
        let asset = field("asset", &request.asset, true)?.to_ascii_uppercase();
        let network = field("network", &request.network, true)?.to_ascii_uppercase();
        let label = field("label", &request.label, false)?;
        let known = self.store.addresses(account).await?;
        if known
            .iter()
            .any(|a| same_address(&a.address, &address) && a.network == network)
        {
            return Err(AppError::Conflict(format!(
                "{address} on {network} is already allow-listed"
            )));
        }
        Ok((address, asset, network, label))
    }

    /// The step-up adding `request` takes, or why it would be refused; writes nothing, so that
    /// no code is spent on an address that cannot be added.
    pub async fn check_address(
        &self,
        actor: &Actor,
        account: &str,
        request: &NewAddress,
    ) -> AppResult<StepUpMethod> {
        actor.access_account(Permission::ManageKeys, account)?;
        self.validated(account, request).await?;
        let now = self.clock.now();
        self.step_up_needed(account, Action::Widen, now).await
    }

    /// Asks to allow-list an address; it becomes usable when the cool-down ends.
    pub async fn add_address(
        &self,
        actor: &Actor,
        account: &str,
        request: NewAddress,
        grant: Option<&str>,
    ) -> AppResult<PendingReceipt> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let (address, asset, network, label) = self.validated(account, &request).await?;
        let event_address = address.clone();
        let (event_asset, event_network) = (asset.clone(), network.clone());
        let pending = WideningRequest {
            account,
            action: PendingAction::AddAddress {
                address,
                asset,
                network,
                label,
            },
            widenings: vec![Widening::AddsAddress],
            grant,
            event: Some(EventBody::AddressAdded {
                address: event_address,
                asset: event_asset,
                network: event_network,
                step_up: StepUp::None,
                effective: Effective::Now,
            }),
            ctx: request.ctx,
            account_edit: None,
        };
        self.request_widening(&access, pending, now).await
    }

    /// Removes an address at once (narrowing).
    pub async fn remove_address(
        &self,
        actor: &Actor,
        account: &str,
        network: &str,
        address: &str,
    ) -> AppResult<()> {
        let access = actor.access_account(Permission::ManageKeys, account)?;
        let now = self.clock.now();
        let network = network.trim().to_ascii_uppercase();
        let known = self.store.addresses(account).await?;
        let Some(stored) = known
            .into_iter()
            .find(|a| same_address(&a.address, address) && a.network == network)
        else {
            return Err(AppError::NotFound(format!(
                "address {address} on {network}"
            )));
        };
        let address = stored.address;
        let change = Change::new(&access, now)
            .write(Write::RemoveAddress {
                account: account.to_owned(),
                network: network.clone(),
                address: address.clone(),
            })
            .audit(
                "address.removed",
                target(account),
                json!({ "address": address, "network": network }),
            );
        Ok(self.store.commit(change.into_set()).await?)
    }

    /// Whether an API withdrawal may proceed now: never from a frozen account, only to an
    /// allow-listed address whose cool-down has passed, and, when the exchange names the key
    /// it came through, only if that key can withdraw now and its fund window (if capped) has
    /// room for the amount, which is then counted against it.
    pub async fn check_withdrawal(
        &self,
        actor: &Actor,
        request: &WithdrawalRequest,
    ) -> AppResult<WithdrawalCheck> {
        let account = request.account.as_str();
        let access = actor.access_account(Permission::VerifyRequests, account)?;
        let now = self.clock.now();
        let guard = self.guard_of(account).await?;
        let refused = |reason| WithdrawalCheck {
            allowed: false,
            reason: Some(reason),
        };
        if guard.protection.is_frozen() {
            return Ok(refused("account_frozen"));
        }
        let network = request.network.trim().to_ascii_uppercase();
        let listed = self.store.addresses(account).await?.into_iter().any(|a| {
            same_address(&a.address, &request.address)
                && a.network == network
                && a.usable_from <= now
        });
        if !listed {
            return Ok(refused("address_not_allowlisted"));
        }
        if let Some(key_id) = &request.key_id {
            let amount = match request.amount_usd {
                None => None,
                Some(usd) => Some(UsdCents::from_usd(usd).ok_or_else(|| {
                    AppError::invalid(
                        ErrorCode::InvalidAmount,
                        "`amount_usd` must be a non-negative amount of at most a trillion",
                    )
                })?),
            };
            if let Some(reason) = self.spend_from_key(&access, key_id, amount, now).await? {
                return Ok(refused(reason));
            }
        }
        Ok(WithdrawalCheck {
            allowed: true,
            reason: None,
        })
    }
}
