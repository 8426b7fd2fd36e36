//! The server side of SCRAM (RFC 5802) with SHA-256 (RFC 7677) or SHA-512.
//!
//! ```text
//! C: n,[a=authzid],n=user,r=cnonce[,ext]                 client-first
//! S: r=cnonce+snonce,s=base64(salt),i=iterations         server-first
//! C: c=base64(gs2-header),r=cnonce+snonce,p=base64(proof) client-final
//! S: v=base64(ServerSignature)                           server-final
//! ```
//!
//! `AuthMessage = client-first-bare "," server-first "," client-final-without-proof`;
//! `ClientKey = proof XOR HMAC(StoredKey, AuthMessage)` must hash to `StoredKey`. Channel binding
//! (`p=`) is refused: Kafka clients never ask for it. Kafka's `tokenauth` extension (delegation
//! tokens) is refused too: there are no delegation tokens here.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{AuthError, Step};
use crate::security::credentials::{CredentialStore, ScramCredential, ScramMechanism};

/// Random bytes in the server's half of the nonce (base64-encoded on the wire).
const SERVER_NONCE_BYTES: usize = 24;

/// One SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    /// Injected by tests (RFC vectors); random otherwise.
    server_nonce: Option<String>,
    state: State,
}

#[derive(Debug)]
enum State {
    AwaitingClientFirst,
    AwaitingClientFinal(Pending),
    Complete,
}

#[derive(Debug)]
struct Pending {
    user: String,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ScramServer {
    /// An exchange with a random server nonce.
    pub fn new(mechanism: ScramMechanism) -> Self {
        ScramServer { mechanism, server_nonce: None, state: State::AwaitingClientFirst }
    }

    /// An exchange with a fixed server nonce (tests against the RFC's example).
    pub fn with_server_nonce(mechanism: ScramMechanism, server_nonce: &str) -> Self {
        ScramServer { mechanism, server_nonce: Some(server_nonce.to_string()), state: State::AwaitingClientFirst }
    }

    /// Feeds one client message.
    pub fn step(&mut self, message: &[u8], store: &CredentialStore) -> Result<Step, AuthError> {
        match std::mem::replace(&mut self.state, State::Complete) {
            State::AwaitingClientFirst => {
                let pending = self.client_first(message, store)?;
                let reply = pending.server_first.clone().into_bytes();
                self.state = State::AwaitingClientFinal(pending);
                Ok(Step::Continue(reply))
            }
            State::AwaitingClientFinal(pending) => self.client_final(message, pending),
            State::Complete => Err(AuthError::AlreadyComplete { mechanism: self.mechanism.name() }),
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> AuthError {
        AuthError::Malformed { mechanism: self.mechanism.name(), reason: reason.into() }
    }

    fn invalid(&self) -> AuthError {
        AuthError::InvalidCredentials { mechanism: self.mechanism.name() }
    }

    fn client_first(&self, message: &[u8], store: &CredentialStore) -> Result<Pending, AuthError> {
        let text = std::str::from_utf8(message).map_err(|_| self.malformed("client-first is not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(self.malformed("client-first lacks a GS2 header"));
        };
        if cbind != "n" && cbind != "y" {
            return Err(self.malformed("channel binding is not supported"));
        }
        let mut attrs = bare.split(',');
        let user = match attrs.next().and_then(|a| a.strip_prefix("n=")) {
            Some(name) => decode_saslname(name).ok_or_else(|| self.malformed("bad user name escape"))?,
            None => return Err(self.malformed("client-first-bare must start with n=")),
        };
        let client_nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).unwrap_or_default();
        if client_nonce.is_empty() {
            return Err(self.malformed("client-first lacks a nonce"));
        }
        if attrs.any(|ext| ext.starts_with("tokenauth=")) {
            return Err(self.invalid()); // delegation tokens do not exist here
        }
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if decode_saslname(authzid).as_deref() != Some(user.as_str()) {
                return Err(self.invalid());
            }
        } else if !authzid.is_empty() {
            return Err(self.malformed("bad authzid in GS2 header"));
        }
        if user.is_empty() {
            return Err(self.malformed("empty user name"));
        }
        let credential = store.get(&user, self.mechanism).ok_or_else(|| self.invalid())?;
        let server_nonce = match &self.server_nonce {
            Some(n) => n.clone(),
            None => {
                let mut bytes = [0u8; SERVER_NONCE_BYTES];
                getrandom::fill(&mut bytes).map_err(|e| self.malformed(format!("no randomness for a nonce: {e}")))?;
                B64.encode(bytes)
            }
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        Ok(Pending {
            user,
            credential,
            gs2_header: format!("{cbind},{authzid},"),
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
        })
    }

    fn client_final(&self, message: &[u8], pending: Pending) -> Result<Step, AuthError> {
        let text = std::str::from_utf8(message).map_err(|_| self.malformed("client-final is not UTF-8"))?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| self.malformed("client-final lacks a proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs.next().and_then(|a| a.strip_prefix("c=")).ok_or_else(|| self.malformed("client-final must start with c="))?;
        let binding = B64.decode(binding).map_err(|_| self.malformed("channel binding is not base64"))?;
        if binding != pending.gs2_header.as_bytes() {
            return Err(self.malformed("channel binding does not repeat the GS2 header"));
        }
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or_else(|| self.malformed("client-final lacks a nonce"))?;
        // RFC 5802 wants equality; Kafka accepts any nonce that *ends with* the combined one, and
        // librdkafka before 2.1 (Debian's kcat) relies on it: it sends its client nonce twice.
        // The proof covers the nonce as sent, so a fresh server nonce still prevents replay.
        if !nonce.ends_with(&pending.nonce) {
            return Err(self.malformed("nonce does not match the server's"));
        }
        let proof = B64.decode(proof).map_err(|_| self.malformed("proof is not base64"))?;
        let auth_message = format!("{},{},{}", pending.client_first_bare, pending.server_first, without_proof);
        let m = self.mechanism;
        let client_signature = m.hmac(&pending.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(self.invalid());
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        if !bool::from(m.hash(&client_key).ct_eq(&pending.credential.stored_key)) {
            return Err(self.invalid());
        }
        let server_signature = m.hmac(&pending.credential.server_key, auth_message.as_bytes());
        let response = format!("v={}", B64.encode(server_signature)).into_bytes();
        Ok(Step::Done { user: pending.user, response })
    }
}

/// RFC 5802 `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is invalid.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc7677_store() -> CredentialStore {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("b64");
        let m = ScramMechanism::Sha256;
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let store = CredentialStore::default();
        store.upsert("user", m, ScramCredential::from_salted_password(m, salt, 4096, &salted));
        store
    }

    /// The exchange of RFC 7677 §3 byte for byte: our server-first and server-final match it.
    #[test]
    fn rfc7677_example() {
        let store = rfc7677_store();
        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let first = server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &store).expect("first");
        assert_eq!(
            first,
            Step::Continue(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec())
        );
        let last = server
            .step(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", &store)
            .expect("final");
        assert_eq!(last, Step::Done { user: "user".into(), response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec() });
        assert!(matches!(server.step(b"again", &store), Err(AuthError::AlreadyComplete { .. })));
    }

    /// A wrong proof, an unknown user, a replaced nonce and channel binding are all refused.
    #[test]
    fn refusals() {
        let store = rfc7677_store();
        let nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, nonce);
        server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &store).expect("first");
        let bad_proof = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert!(matches!(server.step(bad_proof, &store), Err(AuthError::InvalidCredentials { .. })));

        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, nonce);
        assert!(matches!(server.step(b"n,,n=nobody,r=abc", &store), Err(AuthError::InvalidCredentials { .. })));

        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha512, nonce);
        assert!(matches!(server.step(b"n,,n=user,r=abc", &store), Err(AuthError::InvalidCredentials { .. })), "no SHA-512 credential");

        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, nonce);
        assert!(matches!(server.step(b"p=tls-unique,,n=user,r=abc", &store), Err(AuthError::Malformed { .. })));

        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, nonce);
        server.step(b"n,,n=user,r=abc", &store).expect("first");
        assert!(matches!(server.step(b"c=biws,r=abcOTHER,p=AAAA", &store), Err(AuthError::Malformed { .. })));

        // Old librdkafka repeats its client nonce; Kafka (and we) accept a proof over that.
        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, nonce);
        server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &store).expect("first");
        let doubled = format!("c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO{nonce},p=AAAA");
        assert!(
            matches!(server.step(doubled.as_bytes(), &store), Err(AuthError::InvalidCredentials { .. })),
            "nonce accepted, proof checked"
        );
    }

    /// A SHA-512 round trip with a client computed from the RFC's formulas and a random nonce.
    #[test]
    fn sha512_round_trip() {
        let m = ScramMechanism::Sha512;
        let store = CredentialStore::default();
        store.upsert("a=b,c", m, ScramCredential::from_password(m, "pw", 4096).expect("rng"));
        let mut server = ScramServer::new(m);
        let bare = "n=a=3Db=2Cc,r=clientnonce";
        let Step::Continue(first) = server.step(format!("n,,{bare}").as_bytes(), &store).expect("first") else {
            panic!("expected server-first")
        };
        let first = String::from_utf8(first).expect("utf8");
        let fields: Vec<&str> = first.split(',').collect();
        let nonce = fields[0].trim_start_matches("r=");
        let salt = B64.decode(fields[1].trim_start_matches("s=")).expect("salt");
        let iterations: u32 = fields[2].trim_start_matches("i=").parse().expect("i");
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{bare},{first},{without_proof}");
        let salted = m.salted_password(b"pw", &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let signature = m.hmac(&m.hash(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let last = server.step(format!("{without_proof},p={}", B64.encode(proof)).as_bytes(), &store).expect("final");
        let expected = m.hmac(&m.hmac(&salted, b"Server Key"), auth_message.as_bytes());
        assert_eq!(last, Step::Done { user: "a=b,c".into(), response: format!("v={}", B64.encode(expected)).into_bytes() });
    }
}
