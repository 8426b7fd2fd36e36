//! SASL/PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`, verified against the user's SCRAM
//! credential so one store serves both mechanisms and no clear password is ever kept.

use super::AuthError;
use crate::security::CredentialStore;

const MECHANISM: &str = "PLAIN";

/// Checks one PLAIN message; returns the authenticated user.
pub fn authenticate(message: &[u8], store: &CredentialStore) -> Result<String, AuthError> {
    let malformed = |reason: &str| AuthError::Malformed { mechanism: MECHANISM, reason: reason.into() };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("expected authzid NUL authcid NUL passwd"));
    };
    if user.is_empty() {
        return Err(malformed("empty user name"));
    }
    // Kafka allows an authorization id only when it names the authenticating user itself.
    if !authzid.is_empty() && authzid != user {
        return Err(AuthError::InvalidCredentials { mechanism: MECHANISM });
    }
    if !store.verify_password(user, password) {
        return Err(AuthError::InvalidCredentials { mechanism: MECHANISM });
    }
    Ok(user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{ScramCredential, ScramMechanism};

    fn store() -> CredentialStore {
        let store = CredentialStore::default();
        let c = ScramCredential::from_password(ScramMechanism::Sha512, "pw", 4096).expect("rng");
        store.upsert("alice", ScramMechanism::Sha512, c);
        store
    }

    /// PLAIN accepts the right password (with and without authzid) and refuses the rest.
    #[test]
    fn plain_messages() {
        let s = store();
        assert_eq!(authenticate(b"\0alice\0pw", &s).expect("ok"), "alice");
        assert_eq!(authenticate(b"alice\0alice\0pw", &s).expect("ok"), "alice");
        assert!(matches!(authenticate(b"\0alice\0nope", &s), Err(AuthError::InvalidCredentials { .. })));
        assert!(matches!(authenticate(b"bob\0alice\0pw", &s), Err(AuthError::InvalidCredentials { .. })));
        assert!(matches!(authenticate(b"\0mallory\0pw", &s), Err(AuthError::InvalidCredentials { .. })));
        assert!(matches!(authenticate(b"alice-pw", &s), Err(AuthError::Malformed { .. })));
        assert!(matches!(authenticate(b"\0\0pw", &s), Err(AuthError::Malformed { .. })));
        assert!(matches!(authenticate(b"\0a\0b\0c", &s), Err(AuthError::Malformed { .. })));
    }
}
