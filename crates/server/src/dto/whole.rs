//! Whole numbers in request bodies as JSON has them: `3` and `3.0` are the same number (JSON
//! Schema's `integer` takes both, and so do the clients that write every number as a float),
//! so both are taken; `3.5`, or a number outside the field's range, is refused.

use serde::de::{Deserialize, Deserializer, Error};

/// A whole number for a field of type `T`.
pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let value = serde_json::Number::deserialize(deserializer)?;
    let whole = value
        .as_i64()
        .or_else(|| value.as_f64().and_then(exact_integer))
        .ok_or_else(|| D::Error::custom(format!("`{value}` is not a whole number in range")))?;
    T::try_from(whole).map_err(|_| D::Error::custom(format!("{whole} is out of range")))
}

/// The same for an optional field (absent or `null`: `None`).
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(serde::Deserialize)]
    struct Whole(#[serde(deserialize_with = "number")] i64);
    let Some(Whole(whole)) = Option::<Whole>::deserialize(deserializer)? else {
        return Ok(None);
    };
    T::try_from(whole)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{whole} is out of range")))
}

/// `x` as an `i64` when it is one exactly (no fraction, inside the range where every whole
/// `f64` is exact).
fn exact_integer(x: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    #[allow(clippy::cast_possible_truncation)] // Whole and within 2^53: exact.
    (x.fract() == 0.0 && x.abs() <= EXACT).then_some(x as i64)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "super::number")]
        hour: u8,
        #[serde(default, deserialize_with = "super::optional")]
        version: Option<i64>,
    }

    fn parse(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_float_is_the_integer_it_spells() {
        assert_eq!(
            parse(r#"{"hour": 3.0, "version": 7.0}"#).unwrap(),
            Body {
                hour: 3,
                version: Some(7)
            }
        );
        assert_eq!(
            parse(r#"{"hour": 3}"#).unwrap(),
            Body {
                hour: 3,
                version: None
            }
        );
        assert_eq!(
            parse(r#"{"hour": 3, "version": null}"#).unwrap().version,
            None
        );
    }

    #[test]
    fn fractions_and_numbers_out_of_range_are_refused() {
        assert!(
            parse(r#"{"hour": 3.5}"#)
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            parse(r#"{"hour": 256}"#)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse(r#"{"hour": -1}"#)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse(r#"{"hour": 1e300}"#)
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(parse(r#"{"hour": "3"}"#).is_err());
    }
}
