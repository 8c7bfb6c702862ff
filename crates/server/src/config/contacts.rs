//! The contact verification's part of the configuration: how many accounts' reports make a
//! contact a known scam, and the region national phone numbers are read in.

use super::ConfigError;
use portcullis_app::contacts::ContactSettings;

/// The threshold 1..=1000; the region empty or one the phone library knows.
pub(super) fn contact_settings(
    threshold: u32,
    region: &str,
) -> Result<ContactSettings, ConfigError> {
    if !(1..=1000).contains(&threshold) {
        return Err(ConfigError::Invalid(
            "contact_report_threshold must be between 1 and 1000".into(),
        ));
    }
    let region = region.trim().to_ascii_uppercase();
    if !region.is_empty() && !portcullis_contacts::phone::is_known_region(&region) {
        return Err(ConfigError::Invalid(format!(
            "contact_default_region = {region:?} is not a region code such as GB or SG"
        )));
    }
    Ok(ContactSettings {
        report_threshold: i64::from(threshold),
        default_region: (!region.is_empty()).then_some(region),
    })
}
