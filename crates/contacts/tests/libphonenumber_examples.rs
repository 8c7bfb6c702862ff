//! libphonenumber's 1,144 example numbers (../shared/data/test-vectors) through the phone
//! normaliser: each national example with its region, its E.164 form and its international
//! format must all come out as the reference implementation's E.164.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_contacts::phone::normalise_phone;
use serde_json::Value;

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/test-vectors/phonenumbers-examples-9.0.33.json"
);

#[test]
fn every_libphonenumber_example_normalises_to_its_e164_form() {
    let text = std::fs::read_to_string(EXAMPLES).expect("the shared test vectors");
    let examples: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(examples.len(), 1144);
    let mut wrong = Vec::new();
    // Without the guard, the crate alone: how many international forms it gets wrong.
    let mut crate_alone_wrong = 0;
    for example in &examples {
        let region = example["region"].as_str().unwrap();
        let e164 = example["e164"].as_str().unwrap();
        for (input, with_region) in [
            (example["input"].as_str().unwrap(), true),
            (e164, false),
            (example["intl"].as_str().unwrap(), false),
        ] {
            // "001" is libphonenumber's name for non-geographic codes (+800, +882, …): nobody
            // types a number "in region 001", so those are checked in their written forms only.
            if with_region && region == "001" {
                continue;
            }
            let region = with_region.then_some(region);
            match normalise_phone(input, region) {
                Ok(got) if got == e164 => {}
                other => wrong.push(format!("{input} ({region:?}): {other:?}, want {e164}")),
            }
        }
        let alone = phonenumber::parse(None, e164)
            .map(|n| n.format().mode(phonenumber::Mode::E164).to_string());
        if alone.ok().as_deref() != Some(e164) {
            crate_alone_wrong += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The guard is needed: the crate on its own mis-reads some E.164 inputs.
    assert!(
        crate_alone_wrong > 0,
        "the crate alone read every example right"
    );
    eprintln!(
        "phonenumber alone mis-read {crate_alone_wrong} of 1144 E.164 examples; the guard fixes them"
    );
}
