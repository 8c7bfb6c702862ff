//! Guarded widening: the rules that stand between a talked-into customer and a drained account.
//!
//! A widening (more scopes, a wider allow-list, a later expiry, a new withdrawal address, a
//! protection turned off) is recognised here ([`widening`]), must be confirmed with a
//! phishing-resistant step-up ([`stepup`], [`totp`]), waits out a cool-down the customer can
//! cancel ([`cooldown`]), and is refused outright while the account is frozen or its settings
//! are locked ([`protection`]). Narrowing is always immediate. Everything here is pure: `now`
//! is an argument.

pub mod checkup;
pub mod cooldown;
pub mod fund_window;
pub mod hold;
pub mod protection;
pub mod stepup;
pub mod totp;
pub mod widening;
pub mod withdrawal_review;

pub use cooldown::{CooldownPolicy, PendingStatus, Transition};
pub use fund_window::{FundWindow, UsdCents, WindowRequest};
pub use protection::{Protection, ProtectionError};
pub use stepup::{Enrolment, StepUpError, StepUpMethod, StepUpPolicy};
pub use widening::{KeyTerms, Widening};
pub use withdrawal_review::{ReviewAction, ReviewRefusal, ReviewState, WithdrawalReview};
