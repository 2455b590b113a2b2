-- SSH into app instances: the app's and the space's switch (CC's `enable_ssh` and `allow_ssh`,
-- both on unless turned off), and the one-time codes the token issuer hands out for the SSH
-- endpoint. A code is kept only as its SHA-256, with the claims of the user it was issued to,
-- and is deleted when redeemed, so it works once.
ALTER TABLE apps ADD COLUMN enable_ssh BIGINT NOT NULL DEFAULT 1;
ALTER TABLE spaces ADD COLUMN allow_ssh BIGINT NOT NULL DEFAULT 1;
CREATE TABLE ssh_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    claims TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ssh_codes_expiry ON ssh_codes (expires_at);
