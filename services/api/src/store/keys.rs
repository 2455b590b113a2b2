//! The token signing key: an RSA key made on first start, kept in the database, published as
//! a JWK set at `/token_keys`.

use base64::Engine as _;
use kit::db::Db;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use sqlx::Row as _;

pub const KID: &str = "key-1";
const SETTING: &str = "token_signing_key";

pub struct SigningKey {
    pub encoding: jsonwebtoken::EncodingKey,
    pub jwks: auth::Jwks,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key storage: {0}")]
    Db(#[from] sqlx::Error),
    #[error("signing key: {0}")]
    Key(String),
}

/// The stored key, or a new one stored now (a concurrent first start keeps the first).
pub async fn load_or_create(db: &Db, now_ms: i64) -> Result<SigningKey, KeyError> {
    let bad = |e: &dyn std::fmt::Display| KeyError::Key(e.to_string());
    let existing = sqlx::query("SELECT value FROM platform_settings WHERE name = $1")
        .bind(SETTING)
        .fetch_optional(&db.pool)
        .await?;
    let pem = match existing {
        Some(row) => row.try_get::<String, _>("value")?,
        None => {
            let key = tokio::task::spawn_blocking(|| {
                rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            })
            .await
            .map_err(|e| bad(&e))?
            .map_err(|e| bad(&e))?;
            let pem =
                key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).map_err(|e| bad(&e))?.to_string();
            sqlx::query(
                "INSERT INTO platform_settings (name, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(SETTING)
            .bind(&pem)
            .bind(now_ms)
            .execute(&db.pool)
            .await?;
            let row = sqlx::query("SELECT value FROM platform_settings WHERE name = $1")
                .bind(SETTING)
                .fetch_one(&db.pool)
                .await?;
            row.try_get::<String, _>("value")?
        }
    };
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).map_err(|e| bad(&e))?;
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let public_pem = {
        use rsa::pkcs8::EncodePublicKey as _;
        key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| bad(&e))?
    };
    let jwk = auth::Jwk {
        kty: "RSA".into(),
        kid: KID.into(),
        alg: "RS256".into(),
        use_: "sig".into(),
        n: b64(key.n().to_bytes_be()),
        e: b64(key.e().to_bytes_be()),
        value: Some(public_pem),
    };
    Ok(SigningKey {
        encoding: jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| bad(&e))?,
        jwks: auth::Jwks { keys: vec![jwk] },
    })
}
