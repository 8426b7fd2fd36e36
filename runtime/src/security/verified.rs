//! A bounded cache of password checks that succeeded, so a client sending HTTP Basic credentials
//! on every admin request pays PBKDF2 (thousands of HMAC rounds, milliseconds) once, not per
//! request.
//!
//! An entry is a tag: HMAC-SHA-256, under a random per-process key, of the user name, the
//! presented password, and the credential it was verified against (mechanism, salt, iterations,
//! StoredKey). Each lookup first reads the user's *current* credential from the store, so:
//! - a deleted user has no credential and is refused at once, cache or not;
//! - a changed password is a new credential (fresh salt, new StoredKey), hence a new tag: the old
//!   password misses and fails PBKDF2, the new one is verified once and then cached;
//! - nothing is cached for a failed check, so guessing stays as slow as before.
//!
//! The cache never holds a password or anything that verifies one offline: the tags are keyed
//! by a secret that lives only in this process's memory. At [`VERIFIED_LOGINS_MAX`] entries it is
//! emptied (stale tags of changed credentials are never hit again, so this is also how they go).

use std::collections::HashSet;

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use super::credentials::{CredentialStore, ScramCredential, ScramMechanism};

/// Cached successful checks, at most (32 bytes each).
pub const VERIFIED_LOGINS_MAX: usize = 4096;

/// One tag: which credential a password was verified against.
type Tag = [u8; 32];

/// See the module documentation.
pub struct VerifiedLogins {
    /// The HMAC key; `None` if the system had no randomness to give (then nothing is cached).
    key: Option<[u8; 32]>,
    tags: Mutex<HashSet<Tag>>,
}

impl std::fmt::Debug for VerifiedLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedLogins").field("entries", &self.tags.lock().len()).finish_non_exhaustive()
    }
}

impl Default for VerifiedLogins {
    fn default() -> Self {
        Self::new()
    }
}

/// A check the cache could not answer: run [`Pending::verify`] (slow: off async threads), then
/// [`VerifiedLogins::remember`] it if it succeeded.
pub struct Pending {
    mechanism: ScramMechanism,
    credential: ScramCredential,
    tag: Option<Tag>,
}

impl Pending {
    /// PBKDF2 against the credential read at lookup time.
    pub fn verify(&self, password: &str) -> bool {
        self.credential.verify_password(self.mechanism, password)
    }
}

/// What a lookup found.
pub enum Lookup {
    /// The user has no credential: refuse.
    NoSuchUser,
    /// This password was verified against the user's current credential before.
    Verified,
    /// Not known yet.
    Check(Pending),
}

impl VerifiedLogins {
    /// An empty cache with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        let key = getrandom::fill(&mut key).ok().map(|()| key);
        VerifiedLogins { key, tags: Mutex::new(HashSet::new()) }
    }

    /// Looks `user` / `password` up against the user's current credential in `store`.
    pub fn lookup(&self, store: &CredentialStore, user: &str, password: &str) -> Lookup {
        let Some((mechanism, credential)) = store.strongest(user) else { return Lookup::NoSuchUser };
        let tag = self.tag(user, password, mechanism, &credential);
        if tag.is_some_and(|t| self.tags.lock().contains(&t)) {
            return Lookup::Verified;
        }
        Lookup::Check(Pending { mechanism, credential, tag })
    }

    /// Records a successful check.
    pub fn remember(&self, pending: &Pending) {
        let Some(tag) = pending.tag else { return };
        let mut tags = self.tags.lock();
        if tags.len() >= VERIFIED_LOGINS_MAX {
            tags.clear();
        }
        tags.insert(tag);
    }

    /// How many checks are cached.
    pub fn len(&self) -> usize {
        self.tags.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn tag(&self, user: &str, password: &str, mechanism: ScramMechanism, credential: &ScramCredential) -> Option<Tag> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key?).ok()?;
        // Length prefixes keep the fields apart (no two inputs share an encoding).
        for field in [user.as_bytes(), password.as_bytes(), &credential.salt, &credential.stored_key] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac.update(&[mechanism.wire_id() as u8]);
        mac.update(&credential.iterations.to_be_bytes());
        Some(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store_with(user: &str, password: &str) -> CredentialStore {
        let store = CredentialStore::default();
        store.upsert(user, ScramMechanism::Sha512, ScramCredential::from_password(ScramMechanism::Sha512, password, 4096).unwrap());
        store
    }

    /// Full check through the cache, as the admin middleware does it.
    fn login(cache: &VerifiedLogins, store: &CredentialStore, user: &str, password: &str) -> (bool, bool) {
        match cache.lookup(store, user, password) {
            Lookup::NoSuchUser => (false, false),
            Lookup::Verified => (true, true),
            Lookup::Check(p) => {
                let ok = p.verify(password);
                if ok {
                    cache.remember(&p);
                }
                (ok, false)
            }
        }
    }

    /// The second good login is a cache hit; a wrong password never is; a changed password
    /// invalidates the old one at once; a deleted user is refused at once.
    #[test]
    fn hits_and_invalidation() {
        let cache = VerifiedLogins::new();
        let store = store_with("alice", "pw1");
        assert_eq!(login(&cache, &store, "alice", "pw1"), (true, false));
        assert_eq!(login(&cache, &store, "alice", "pw1"), (true, true));
        assert_eq!(login(&cache, &store, "alice", "wrong"), (false, false));
        assert_eq!(login(&cache, &store, "alice", "wrong"), (false, false));
        assert_eq!(cache.len(), 1);

        // Same password again, new salt: the old tag no longer matches, PBKDF2 runs once more.
        store.upsert("alice", ScramMechanism::Sha512, ScramCredential::from_password(ScramMechanism::Sha512, "pw2", 4096).unwrap());
        assert_eq!(login(&cache, &store, "alice", "pw1"), (false, false));
        assert_eq!(login(&cache, &store, "alice", "pw2"), (true, false));
        assert_eq!(login(&cache, &store, "alice", "pw2"), (true, true));

        store.delete("alice", ScramMechanism::Sha512);
        assert_eq!(login(&cache, &store, "alice", "pw2"), (false, false));
        // Another user with the same password shares nothing.
        let other = store_with("bob", "pw2");
        assert_eq!(login(&cache, &other, "bob", "pw2"), (true, false));
    }

    /// The cache stays under its bound.
    #[test]
    fn bounded() {
        let cache = VerifiedLogins::new();
        let store = store_with("alice", "pw");
        let Lookup::Check(p) = cache.lookup(&store, "alice", "pw") else { panic!() };
        for i in 0..VERIFIED_LOGINS_MAX + 10 {
            cache.remember(&Pending {
                tag: Some([
                    i as u8,
                    (i >> 8) as u8,
                    1,
                    2,
                    3,
                    4,
                    5,
                    6,
                    7,
                    8,
                    9,
                    10,
                    11,
                    12,
                    13,
                    14,
                    15,
                    16,
                    17,
                    18,
                    19,
                    20,
                    21,
                    22,
                    23,
                    24,
                    25,
                    26,
                    27,
                    28,
                    29,
                    30,
                ]),
                ..p.clone_for_test()
            });
            assert!(cache.len() <= VERIFIED_LOGINS_MAX);
        }
    }

    impl Pending {
        fn clone_for_test(&self) -> Pending {
            Pending { mechanism: self.mechanism, credential: self.credential.clone(), tag: self.tag }
        }
    }
}
