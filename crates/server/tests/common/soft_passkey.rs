//! A software passkey for the console's stories: an ES256 key pair (aws-lc-rs) that answers
//! WebAuthn registration ("none" attestation) and authentication challenges with user
//! verification, as a browser's authenticator would, in the JSON shape webauthn-rs reads.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

pub struct SoftPasskey {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    origin: String,
    counter: u32,
}

/// CBOR: a major type and its length or value.
fn head(major: u8, value: u64, out: &mut Vec<u8>) {
    let major = major << 5;
    if value < 24 {
        out.push(major | u8::try_from(value).unwrap());
    } else if value < 256 {
        out.extend([major | 24, u8::try_from(value).unwrap()]);
    } else {
        out.push(major | 25);
        out.extend(u16::try_from(value).unwrap().to_be_bytes());
    }
}

fn length(len: usize) -> u64 {
    u64::try_from(len).unwrap()
}

fn int(value: i64, out: &mut Vec<u8>) {
    if value >= 0 {
        head(0, value.unsigned_abs(), out);
    } else {
        head(1, (-1 - value).unsigned_abs(), out);
    }
}

fn bytes(value: &[u8], out: &mut Vec<u8>) {
    head(2, length(value.len()), out);
    out.extend_from_slice(value);
}

fn text(value: &str, out: &mut Vec<u8>) {
    head(3, length(value.len()), out);
    out.extend_from_slice(value.as_bytes());
}

fn challenge_of(options: &Value) -> (String, String) {
    let pk = &options["publicKey"];
    let challenge = pk["challenge"].as_str().unwrap().to_owned();
    let rp_id = pk["rp"]["id"]
        .as_str()
        .or_else(|| pk["rpId"].as_str())
        .unwrap()
        .to_owned();
    (challenge, rp_id)
}

impl SoftPasskey {
    /// A new authenticator for pages served from `origin` (the service's `public_url`).
    pub fn new(origin: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let credential_id = portcullis_app::random::bytes::<16>().unwrap().to_vec();
        Self {
            key,
            credential_id,
            origin: origin.to_owned(),
            counter: 0,
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    /// The answer to `navigator.credentials.create` for `options`.
    pub fn register(&mut self, options: &Value) -> Value {
        let (challenge, rp_id) = challenge_of(options);
        let point = self.key.public_key().as_ref().to_vec(); // 0x04 | x | y
        let mut cose = Vec::new();
        head(5, 5, &mut cose);
        int(1, &mut cose);
        int(2, &mut cose);
        int(3, &mut cose);
        int(-7, &mut cose);
        int(-1, &mut cose);
        int(1, &mut cose);
        int(-2, &mut cose);
        bytes(&point[1..33], &mut cose);
        int(-3, &mut cose);
        bytes(&point[33..65], &mut cose);
        let mut auth = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth.push(0x45); // user present, user verified, attested credential data
        auth.extend(0u32.to_be_bytes());
        auth.extend([0u8; 16]);
        auth.extend(
            u16::try_from(self.credential_id.len())
                .unwrap()
                .to_be_bytes(),
        );
        auth.extend(&self.credential_id);
        auth.extend(cose);
        let mut attestation = Vec::new();
        head(5, 3, &mut attestation);
        text("fmt", &mut attestation);
        text("none", &mut attestation);
        text("attStmt", &mut attestation);
        head(5, 0, &mut attestation);
        text("authData", &mut attestation);
        bytes(&auth, &mut attestation);
        let id = B64URL.encode(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "attestationObject": B64URL.encode(attestation),
                "clientDataJSON": B64URL.encode(self.client_data("webauthn.create", &challenge)),
            },
            "extensions": {},
        })
    }

    /// The answer to `navigator.credentials.get` for `options`.
    pub fn assert(&mut self, options: &Value) -> Value {
        let (challenge, rp_id) = challenge_of(options);
        self.counter += 1;
        let mut auth = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        auth.push(0x05); // user present, user verified
        auth.extend(self.counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", &challenge);
        let mut signed = auth.clone();
        signed.extend(digest(&SHA256, &client_data).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        let id = B64URL.encode(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "authenticatorData": B64URL.encode(auth),
                "clientDataJSON": B64URL.encode(client_data),
                "signature": B64URL.encode(signature.as_ref()),
                "userHandle": null,
            },
            "extensions": {},
        })
    }
}
