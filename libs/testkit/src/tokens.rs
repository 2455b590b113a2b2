//! A token issuer for tests: an RSA key made in the test, its JWK set, and signed tokens with
//! whatever scopes, issuer and expiry a test needs (including wrong ones).

use base64::Engine as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;

pub struct Issuer {
    pub kid: String,
    pub issuer: String,
    encoding: jsonwebtoken::EncodingKey,
    jwks: auth::Jwks,
}

impl Issuer {
    /// A fresh 2048-bit key published under `kid`, issuing as `issuer`.
    pub fn new(kid: &str, issuer: &str) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa key");
        let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).expect("pem");
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = auth::Jwk {
            kty: "RSA".into(),
            kid: kid.into(),
            alg: "RS256".into(),
            use_: "sig".into(),
            n: b64(key.n().to_bytes_be()),
            e: b64(key.e().to_bytes_be()),
            value: None,
        };
        Self {
            kid: kid.into(),
            issuer: issuer.into(),
            encoding: jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
                .expect("encoding key"),
            jwks: auth::Jwks { keys: vec![jwk] },
        }
    }

    pub fn jwks(&self) -> auth::Jwks {
        self.jwks.clone()
    }

    /// A verifier that trusts exactly this issuer's key.
    pub fn verifier(&self) -> auth::Verifier {
        auth::Verifier::with_keys(self.issuer.clone(), None, &self.jwks)
    }

    /// `bearer <jwt>` for a user with `scopes`, valid for `ttl_secs` (negative: expired).
    pub fn token(&self, scopes: &[&str], ttl_secs: i64) -> String {
        self.token_as(&self.issuer, scopes, ttl_secs)
    }

    /// Like [`Issuer::token`] but claiming another issuer.
    pub fn token_as(&self, issuer: &str, scopes: &[&str], ttl_secs: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = auth::Claims {
            jti: uuid::Uuid::new_v4().to_string(),
            sub: "u-1".into(),
            user_id: Some("u-1".into()),
            user_name: Some("tester".into()),
            email: None,
            origin: Some("uaa".into()),
            client_id: "cf".into(),
            cid: "cf".into(),
            grant_type: "password".into(),
            scope: scopes.iter().map(|s| (*s).to_owned()).collect(),
            aud: vec!["cloud_controller".into()],
            iss: issuer.into(),
            iat: now,
            exp: now + ttl_secs,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        format!("bearer {}", jsonwebtoken::encode(&header, &claims, &self.encoding).expect("sign"))
    }
}
