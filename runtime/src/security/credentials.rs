//! SCRAM credentials (RFC 5802 §3, RFC 7677) and the in-memory store of them.
//!
//! A password is never kept: a credential is `(salt, iterations, StoredKey, ServerKey)` where
//! `SaltedPassword = Hi(password, salt, i)`, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`
//! and `ServerKey = HMAC(SaltedPassword, "Server Key")`. That is enough to verify a SCRAM proof
//! and, by recomputing the keys, a PLAIN password; it is not enough to log in as the user.
//!
//! The [`CredentialStore`] is the published view; `broker::users` writes changes to the metadata
//! log first and applies them here after the fsync.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's bounds on SCRAM iterations (`ScramMechanism.minIterations` / a sane maximum): fewer is
/// brute-forceable, many more lets one login burn a core for seconds.
pub const MIN_ITERATIONS: i32 = 4096;
/// See [`MIN_ITERATIONS`].
pub const MAX_ITERATIONS: i32 = 16384;
/// Iterations for credentials the broker derives itself (bootstrap user, `sluice user create`).
pub const DEFAULT_ITERATIONS: i32 = 8192;
/// Salt length for credentials the broker derives itself.
pub const SALT_BYTES: usize = 32;

/// A SCRAM hash. The numbers are Kafka's `ScramMechanism` type ids on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (wire id 1).
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512 (wire id 2).
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// Both, strongest first (PLAIN verifies against the first one the user has).
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha512, ScramMechanism::Sha256];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// From the SASL mechanism name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's wire id (AlterUserScramCredentials / DescribeUserScramCredentials).
    pub fn wire_id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// From Kafka's wire id; `None` for 0 (UNKNOWN) and anything else.
    pub fn from_wire_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.wire_id() == id)
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback keeps
        // the data path free of panics all the same.
        match self {
            ScramMechanism::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramMechanism::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this HMAC and one block of output.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// One user's credential for one mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// Random, per credential.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations, within [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
    pub iterations: i32,
    /// `H(ClientKey)`: verifies a client proof.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's final message.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    // Keys stay out of logs even though they are not the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials carries: clients
    /// salt and hash before sending, so the password never crosses the wire).
    pub fn from_salted_password(mechanism: ScramMechanism, salt: Vec<u8>, iterations: i32, salted_password: &[u8]) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        }
    }

    /// Derives a credential from a clear password with a fresh random salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: i32) -> Result<Self, getrandom::Error> {
        let mut salt = vec![0u8; SALT_BYTES];
        getrandom::fill(&mut salt)?;
        let rounds = u32::try_from(iterations).unwrap_or(DEFAULT_ITERATIONS as u32);
        let salted = mechanism.salted_password(password.as_bytes(), &salt, rounds);
        Ok(Self::from_salted_password(mechanism, salt, iterations, &salted))
    }

    /// Whether `password` is this credential's password (for SASL/PLAIN). Constant-time compare.
    pub fn verify_password(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let Ok(rounds) = u32::try_from(self.iterations) else { return false };
        let salted = mechanism.salted_password(password.as_bytes(), &self.salt, rounds);
        let candidate = Self::from_salted_password(mechanism, self.salt.clone(), self.iterations, &salted);
        bool::from(candidate.stored_key.ct_eq(&self.stored_key))
    }
}

/// Every user's SCRAM credentials, by user then mechanism. Cheap to read on every login.
#[derive(Debug, Default)]
pub struct CredentialStore {
    users: RwLock<BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>>,
}

impl CredentialStore {
    /// A store holding `users` (replayed from the metadata log).
    pub fn new(users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>) -> Self {
        CredentialStore { users: RwLock::new(users) }
    }

    /// The user's credential for `mechanism`.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.users.read().get(user)?.get(&mechanism).cloned()
    }

    /// Whether the user has any credential.
    pub fn contains_user(&self, user: &str) -> bool {
        self.users.read().contains_key(user)
    }

    /// `(mechanism, iterations)` of each credential of `user`; `None` for an unknown user.
    pub fn describe(&self, user: &str) -> Option<Vec<(ScramMechanism, i32)>> {
        let users = self.users.read();
        Some(users.get(user)?.iter().map(|(m, c)| (*m, c.iterations)).collect())
    }

    /// All user names, sorted.
    pub fn user_names(&self) -> Vec<String> {
        self.users.read().keys().cloned().collect()
    }

    /// The credential a PLAIN login (or admin HTTP Basic) is checked against: the user's
    /// SCRAM-SHA-512 one, else SCRAM-SHA-256.
    pub fn strongest(&self, user: &str) -> Option<(ScramMechanism, ScramCredential)> {
        let users = self.users.read();
        let credentials = users.get(user)?;
        ScramMechanism::ALL.iter().find_map(|m| credentials.get(m).map(|c| (*m, c.clone())))
    }

    /// Verifies a PLAIN login against the user's strongest SCRAM credential.
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        // The lock is released before PBKDF2, which takes milliseconds.
        let Some((mechanism, credential)) = self.strongest(user) else { return false };
        credential.verify_password(mechanism, password)
    }

    /// Publishes an upsert (after it is durable).
    pub fn upsert(&self, user: &str, mechanism: ScramMechanism, credential: ScramCredential) {
        self.users.write().entry(user.to_string()).or_default().insert(mechanism, credential);
    }

    /// Publishes a deletion (after it is durable). Returns whether it existed.
    pub fn delete(&self, user: &str, mechanism: ScramMechanism) -> bool {
        let mut users = self.users.write();
        let Some(credentials) = users.get_mut(user) else { return false };
        let existed = credentials.remove(&mechanism).is_some();
        if credentials.is_empty() {
            users.remove(user);
        }
        existed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's SCRAM-SHA-256 example: password "pencil", this salt, 4096 rounds gives the
    /// keys the RFC's proof and signature are computed from (checked in `sasl::scram` tests).
    #[test]
    fn rfc7677_salted_password_and_keys() {
        use base64::Engine;
        let salt = base64::engine::general_purpose::STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("b64");
        let m = ScramMechanism::Sha256;
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let c = ScramCredential::from_salted_password(m, salt, 4096, &salted);
        assert!(c.verify_password(m, "pencil"));
        assert!(!c.verify_password(m, "pencil2"));
    }

    /// The store publishes upserts and deletions and verifies PLAIN against SHA-512 first.
    #[test]
    fn store_upsert_verify_delete() {
        let store = CredentialStore::default();
        let c512 = ScramCredential::from_password(ScramMechanism::Sha512, "s3cret", MIN_ITERATIONS).expect("rng");
        store.upsert("alice", ScramMechanism::Sha512, c512);
        assert!(store.verify_password("alice", "s3cret"));
        assert!(!store.verify_password("alice", "wrong"));
        assert!(!store.verify_password("bob", "s3cret"));
        assert_eq!(store.describe("alice"), Some(vec![(ScramMechanism::Sha512, MIN_ITERATIONS)]));
        assert!(store.delete("alice", ScramMechanism::Sha512));
        assert!(!store.contains_user("alice"));
        assert!(!store.delete("alice", ScramMechanism::Sha512));
    }

    /// Two credentials for one password differ (fresh salts), and neither holds the password.
    #[test]
    fn salts_are_fresh() {
        let a = ScramCredential::from_password(ScramMechanism::Sha256, "pw", MIN_ITERATIONS).expect("rng");
        let b = ScramCredential::from_password(ScramMechanism::Sha256, "pw", MIN_ITERATIONS).expect("rng");
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.stored_key, b.stored_key);
    }
}
