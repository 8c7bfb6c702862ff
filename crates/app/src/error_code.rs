//! Every stable error code the API and the CLI answer with, in one table: the code's wire
//! string, its HTTP status and what it means. A code is a public contract: its string and its
//! status never change once shipped (the test below holds the table to the list as it was when
//! the codes were literals), and docs/api.md and the OpenAPI document name every one
//! (`crates/server/tests/error_codes_documented.rs`).
//!
//! The status is a number, not an `http` type, so the use-case layer stays free of the web
//! framework; the server turns it into its status type.

macro_rules! error_codes {
    ($($variant:ident => $wire:literal, $status:literal, $meaning:literal;)+) => {
        /// A stable error code: see the table in this module.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as clients see it, e.g. `invalid_cidr`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)+
                }
            }

            /// The HTTP status the API answers this code with.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }

            /// One line on what the code means.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)+
                }
            }
        }
    };
}

error_codes! {
    // Malformed input and requests the service cannot serve: 400.
    InvalidRequest => "invalid_request", 400, "a query string, path or request that could not be read at all";
    InvalidJson => "invalid_json", 400, "the body is not the expected JSON object";
    InvalidUtf8 => "invalid_utf8", 400, "the body is not valid UTF-8";
    InvalidBody => "invalid_body", 400, "the body could not be read";
    InvalidQuery => "invalid_query", 400, "a query parameter has a wrong value";
    UnknownScope => "unknown_scope", 400, "a scope name that does not exist, or no scope at all";
    InvalidCidr => "invalid_cidr", 400, "an IP allow-list entry that is not an address or CIDR block";
    InvalidIp => "invalid_ip", 400, "not an IPv4 or IPv6 address";
    InvalidTimestamp => "invalid_timestamp", 400, "a timestamp that is not RFC 3339, or a malformed `timestamp` in a signed payload";
    MissingTimestamp => "missing_timestamp", 400, "a signed payload without `timestamp`";
    RecvWindowOutOfRange => "recv_window_out_of_range", 400, "a signed payload's `recvWindow` outside what is allowed";
    DuplicateParameter => "duplicate_parameter", 400, "a signed payload names a parameter twice";
    InvalidOverride => "invalid_override", 400, "an override's action is not `suppress` or `force`, or its note is too long or has control characters";
    InvalidEntity => "invalid_entity", 400, "an entity kind that does not exist (account, address, ip, device, number) or a value that is not one";
    InvalidExpiry => "invalid_expiry", 400, "a key's expiry in the past or too far ahead";
    InvalidLabel => "invalid_label", 400, "a key's label is empty or too long";
    InvalidPublicKey => "invalid_public_key", 400, "an Ed25519 public key that does not parse";
    InvalidAlgorithm => "invalid_algorithm", 400, "a key algorithm other than `hmac-sha256` or `ed25519`";
    InvalidApiKey => "invalid_api_key", 400, "an API key string of the wrong form";
    InvalidSecret => "invalid_secret", 400, "an imported HMAC secret of the wrong form";
    InvalidOverlap => "invalid_overlap", 400, "a rotation overlap outside what is allowed";
    RotationUnsupported => "rotation_unsupported", 400, "the key's algorithm cannot be rotated";
    InvalidAccount => "invalid_account", 400, "an account field the account cannot have";
    InvalidEmail => "invalid_email", 400, "an account's e-mail address is malformed";
    InvalidAntiPhishingCode => "invalid_anti_phishing_code", 400, "an anti-phishing code that is not 4 to 20 letters or digits";
    InvalidRole => "invalid_role", 400, "an operator role that does not exist";
    InvalidName => "invalid_name", 400, "an operator name that is empty or too long";
    WithdrawNeedsAllowlist => "withdraw_needs_allowlist", 400, "a key with `withdraw` needs an IP allow-list";
    InvalidDigestHour => "invalid_digest_hour", 400, "a daily digest's hour outside 0 to 23 (UTC)";
    InvalidAmount => "invalid_amount", 400, "an amount that is negative, not a number, or over a trillion USD";
    InvalidFundWindow => "invalid_fund_window", 400, "a fund window outside an hour to 31 days, with a cap of zero or over a trillion USD, or on a key that cannot move funds";
    TotpNotEnrolled => "totp_not_enrolled", 400, "no TOTP enrolment to confirm";
    InvalidLock => "invalid_lock", 400, "a settings lock's end that is not in the future or too far ahead";
    InvalidAddress => "invalid_address", 400, "a withdrawal address with a missing or malformed field";
    BadAuditHead => "bad_audit_head", 400, "an exported audit head that does not parse or whose signature does not hold";
    InvalidContext => "invalid_context", 400, "a sign-in link's context that does not fit the contract";
    ImmutableField => "immutable_field", 400, "a key's `api_key`, account and algorithm never change";
    PasskeysUnavailable => "passkeys_unavailable", 400, "`public_url` cannot host passkeys";
    TooManyPasskeys => "too_many_passkeys", 400, "the account has as many passkeys as allowed";
    InvalidCredential => "invalid_credential", 400, "a passkey answer that does not parse";
    KeyNotLive => "key_not_live", 400, "a pending change whose key was revoked or expired meanwhile";
    InvalidEvent => "invalid_event", 400, "an event that does not fit the event contract";
    NoDecision => "no_decision", 400, "an event that asks for no decision";
    InvalidPolicy => "invalid_policy", 400, "a risk policy that does not load";
    BacktestTooLarge => "backtest_too_large", 400, "a backtest whose time range holds more events than its cap: narrow the range";
    // A contact that cannot be verified, an official entry or a report that cannot be kept.
    EmptyValue => "empty_value", 400, "a contact value that is empty";
    ValueTooLong => "value_too_long", 400, "a contact value over 2048 bytes";
    ControlCharacters => "control_characters", 400, "a contact value with control characters, or invisible bidirectional or zero-width marks";
    InvalidPunycode => "invalid_punycode", 400, "a domain with an `xn--` label that does not decode";
    InvalidDomain => "invalid_domain", 400, "not a valid domain name";
    InvalidUrl => "invalid_url", 400, "not a valid link";
    InvalidPhone => "invalid_phone", 400, "a phone number that cannot be read (no country code and no region, an unknown country code, too few or too many digits)";
    InvalidHandle => "invalid_handle", 400, "not a valid handle";
    InvalidContactKind => "invalid_contact_kind", 400, "an official contact's kind other than phone, email, domain or handle";
    InvalidChannel => "invalid_channel", 400, "an official contact's channel that is not 1 to 32 lower-case letters, digits, `_` or `-`";
    InvalidDirection => "invalid_direction", 400, "an official contact's direction other than inbound, outbound or both";
    InvalidNote => "invalid_note", 400, "an official contact's note too long or with control characters";
    InvalidReportChannel => "invalid_report_channel", 400, "a report's channel other than phone, sms, email, telegram, whatsapp or other";
    InvalidClaimed => "invalid_claimed", 400, "who a reported contact claimed to be, too long or with control characters";
    InvalidReport => "invalid_report", 400, "a report that does not fit the event contract";
    InvalidEncoding => "invalid_encoding", 400, "a line of `portcullis contacts verify --file` that is not UTF-8 (in the CLI's output only)";
    // Not signed in: 401.
    Unauthenticated => "unauthenticated", 401, "missing or invalid operator token";
    SignedOut => "signed_out", 401, "no live security-center session";
    // Not allowed, or a confirmation missing: 403.
    Forbidden => "forbidden", 403, "the caller may not do this";
    StepUpRequired => "step_up_required", 403, "the change needs a step-up grant";
    StepUpInsufficient => "step_up_insufficient", 403, "the grant's method is weaker than the change needs";
    StepUpNotEnrolled => "step_up_not_enrolled", 403, "the customer has no passkey or authenticator to step up with";
    FirstFactorTooRecent => "first_factor_too_recent", 403, "the account's first authenticator is younger than a widening's cool-down: it cannot yet unlock a fund-moving key's new secret";
    InvalidGrant => "invalid_grant", 403, "a step-up grant that matches nothing for this account";
    GrantSpent => "grant_spent", 403, "a step-up grant already used";
    GrantExpired => "grant_expired", 403, "a step-up grant past its life";
    TotpWrong => "totp_wrong", 403, "a wrong TOTP code";
    TotpReused => "totp_reused", 403, "a TOTP code of a time step already spent (not counted as a failure)";
    PasskeyRejected => "passkey_rejected", 403, "a passkey answer that does not verify";
    PasskeyNotEnrolled => "passkey_not_enrolled", 403, "the account has no passkey";
    InvalidChallenge => "invalid_challenge", 403, "a passkey ceremony that matches nothing";
    ChallengeUsed => "challenge_used", 403, "a passkey ceremony already answered";
    ChallengeExpired => "challenge_expired", 403, "a passkey ceremony past its life";
    InvalidSignInLink => "invalid_sign_in_link", 403, "a sign-in link that matches nothing";
    SignInLinkUsed => "sign_in_link_used", 403, "a sign-in link already used";
    SignInLinkExpired => "sign_in_link_expired", 403, "a sign-in link past its life";
    CsrfFailed => "csrf_failed", 403, "a security-center post without the page's CSRF token";
    PolicySelfApproval => "policy_self_approval", 403, "the operator who proposed a policy version cannot approve it: a second operator must";
    SecondOperatorRequired => "second_operator_required", 403, "a hold the risk engine made needs a second operator to release it: the operator who approved the release cannot complete it";
    // Nothing there: 404.
    NotFound => "not_found", 404, "no such thing (or not the caller's to see)";
    InvalidCancelLink => "invalid_cancel_link", 404, "a cancel link that matches nothing";
    InvalidFreezeLink => "invalid_freeze_link", 404, "a freeze link that matches nothing";
    UnknownEntity => "unknown_entity", 404, "an entity the risk engine's graph does not hold (no event named it, or it expired)";
    UnknownAlert => "unknown_alert", 404, "a campaign alert id that matches nothing";
    MethodNotAllowed => "method_not_allowed", 405, "the endpoint does not accept that method";
    RequestTimeout => "request_timeout", 408, "the request took longer than the configured limit";
    // Past changing: 409.
    Conflict => "conflict", 409, "a taken id or API key, a stale version, a key not live, the last admin token";
    ChangeClosed => "change_closed", 409, "the change is already applied, cancelled or failed";
    ChangeNotHeld => "change_not_held", 409, "the change is not held";
    ChangeHeld => "change_held", 409, "the change is held and cannot apply until released";
    ChangeNotDue => "change_not_due", 409, "the change's cool-down has not ended";
    CancelLinkUsed => "cancel_link_used", 409, "a cancel link already used";
    LockCannotShorten => "lock_cannot_shorten", 409, "a settings lock only ever extends";
    NotFrozen => "not_frozen", 409, "an unfreeze asked for an account that is not frozen";
    FreezeLinkUsed => "freeze_link_used", 409, "a freeze link already used";
    AlertConfirmed => "alert_confirmed", 409, "the campaign alert was confirmed already";
    PolicyPublished => "policy_published", 409, "the policy version is published already (propose a rollback to publish it again)";
    PolicyVersionInForce => "policy_version_in_force", 409, "a published policy version is in force: the configured file is only the starting version";
    BacktestBusy => "backtest_busy", 409, "another backtest is running in this process";
    EventIgnored => "event_ignored", 409, "the event was not decided and will not be: its id was used by an earlier event that is not decided, or (with `engine_partitions`) it is older than the dedup horizon";
    // Gone: 410.
    FreezeLinkExpired => "freeze_link_expired", 410, "a freeze link past its life";
    PayloadTooLarge => "payload_too_large", 413, "the body is larger than the configured limit";
    UnsupportedMediaType => "unsupported_media_type", 415, "the body is not sent as `application/json`";
    // The account's protections forbid it now: 423.
    AccountProtected => "account_protected", 423, "the account is frozen or its settings are locked";
    StepUpLocked => "step_up_locked", 423, "too many wrong TOTP codes: locked out for a while";
    RateLimited => "rate_limited", 429, "too many requests from one address or for one account";
    Internal => "internal", 500, "the service failed; details are in its log, never in the answer";
    NotReady => "not_ready", 503, "the store or the engine is not up";
    ReplayGuardUnavailable => "replay_guard_unavailable", 503, "the shared replay guard (Redis) cannot be reached: the request is refused";
    StreamUnavailable => "stream_unavailable", 503, "a partitioned deployment: the change could not be put on the event stream, so no partition would apply it; nothing was changed";
    PartitionViewUnavailable => "partition_view_unavailable", 503, "a partitioned deployment: this process works no engine partition now (starting, or every lease is held by other processes), so it holds no view of the entity graph; the graph view and an override's entity check are refused rather than answered from an empty engine";
    DecisionTimeout => "decision_timeout", 504, "a partitioned deployment: the owner of the event's partition stored no decision in time (the event is on the stream and will be decided)";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Written as its wire string (in audit details, for instance).
impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use std::collections::BTreeMap;

    /// Every code and status as the API answered before the codes became this table (read from
    /// the string literals and the status table they replaced), and every code shipped since
    /// (the contact verification's). Nothing here may change. The
    /// single-use links' codes only ever reach a client as their HTML page's status (404 for a
    /// link that matches nothing, 409 used, 410 expired), so that is their status here.
    const SHIPPED: &[(&str, u16)] = &[
        ("event_ignored", 409),
        ("decision_timeout", 504),
        ("stream_unavailable", 503),
        ("partition_view_unavailable", 503),
        ("second_operator_required", 403),
        ("policy_self_approval", 403),
        ("policy_published", 409),
        ("policy_version_in_force", 409),
        ("backtest_too_large", 400),
        ("backtest_busy", 409),
        ("account_protected", 423),
        ("not_frozen", 409),
        ("bad_audit_head", 400),
        ("cancel_link_used", 409),
        ("challenge_expired", 403),
        ("challenge_used", 403),
        ("change_closed", 409),
        ("change_held", 409),
        ("change_not_due", 409),
        ("change_not_held", 409),
        ("conflict", 409),
        ("control_characters", 400),
        ("csrf_failed", 403),
        ("duplicate_parameter", 400),
        ("empty_value", 400),
        ("first_factor_too_recent", 403),
        ("forbidden", 403),
        ("freeze_link_expired", 410),
        ("freeze_link_used", 409),
        ("grant_expired", 403),
        ("grant_spent", 403),
        ("immutable_field", 400),
        ("internal", 500),
        ("invalid_account", 400),
        ("invalid_address", 400),
        ("invalid_algorithm", 400),
        ("invalid_anti_phishing_code", 400),
        ("invalid_api_key", 400),
        ("invalid_body", 400),
        ("invalid_cancel_link", 404),
        ("invalid_entity", 400),
        ("invalid_override", 400),
        ("unknown_entity", 404),
        ("unknown_alert", 404),
        ("alert_confirmed", 409),
        ("invalid_challenge", 403),
        ("invalid_channel", 400),
        ("invalid_cidr", 400),
        ("invalid_claimed", 400),
        ("invalid_contact_kind", 400),
        ("invalid_context", 400),
        ("invalid_credential", 400),
        ("invalid_direction", 400),
        ("invalid_domain", 400),
        ("invalid_email", 400),
        ("invalid_encoding", 400),
        ("invalid_event", 400),
        ("invalid_amount", 400),
        ("invalid_digest_hour", 400),
        ("invalid_expiry", 400),
        ("invalid_fund_window", 400),
        ("invalid_freeze_link", 404),
        ("invalid_grant", 403),
        ("invalid_handle", 400),
        ("invalid_ip", 400),
        ("invalid_json", 400),
        ("invalid_label", 400),
        ("invalid_lock", 400),
        ("invalid_name", 400),
        ("invalid_note", 400),
        ("invalid_overlap", 400),
        ("invalid_phone", 400),
        ("invalid_policy", 400),
        ("invalid_public_key", 400),
        ("invalid_punycode", 400),
        ("invalid_query", 400),
        ("invalid_report", 400),
        ("invalid_report_channel", 400),
        ("invalid_request", 400),
        ("invalid_role", 400),
        ("invalid_secret", 400),
        ("invalid_sign_in_link", 403),
        ("invalid_timestamp", 400),
        ("invalid_url", 400),
        ("invalid_utf8", 400),
        ("key_not_live", 400),
        ("lock_cannot_shorten", 409),
        ("method_not_allowed", 405),
        ("missing_timestamp", 400),
        ("no_decision", 400),
        ("not_found", 404),
        ("not_ready", 503),
        ("passkey_not_enrolled", 403),
        ("passkey_rejected", 403),
        ("passkeys_unavailable", 400),
        ("payload_too_large", 413),
        ("rate_limited", 429),
        ("recv_window_out_of_range", 400),
        ("replay_guard_unavailable", 503),
        ("request_timeout", 408),
        ("rotation_unsupported", 400),
        ("sign_in_link_expired", 403),
        ("sign_in_link_used", 403),
        ("signed_out", 401),
        ("step_up_insufficient", 403),
        ("step_up_locked", 423),
        ("step_up_not_enrolled", 403),
        ("step_up_required", 403),
        ("too_many_passkeys", 400),
        ("totp_not_enrolled", 400),
        ("totp_reused", 403),
        ("totp_wrong", 403),
        ("unauthenticated", 401),
        ("unknown_scope", 400),
        ("unsupported_media_type", 415),
        ("value_too_long", 400),
        ("withdraw_needs_allowlist", 400),
    ];

    #[test]
    fn no_shipped_code_or_status_changed_and_every_code_is_unique() {
        let table: BTreeMap<&str, u16> = ErrorCode::ALL
            .iter()
            .map(|code| (code.as_str(), code.status()))
            .collect();
        assert_eq!(
            table.len(),
            ErrorCode::ALL.len(),
            "a wire string is used twice"
        );
        let shipped: BTreeMap<&str, u16> = SHIPPED.iter().copied().collect();
        assert_eq!(table, shipped);
    }

    #[test]
    fn every_code_says_what_it_means() {
        for code in ErrorCode::ALL {
            assert!(!code.meaning().is_empty(), "{code}");
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
        }
    }
}
