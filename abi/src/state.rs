//! Keyed state across the boundary (ABI v2): the operations a guest reports at the end of a
//! batch ([`StateOp`], in the output buffer), and the commands the host sends through the
//! `sluice_transform_v2_state` export ([`StateCommand`]).
//!
//! ```text
//! command  := u8 0 (commit)                 -- the last process call's changes are final
//!           | u8 1 (abort)                  -- undo every change since the last commit
//!           | u8 2 (restore) op*            -- apply these operations, then commit
//! op       := u8 1 bytes(key) bytes(value)  -- put
//!           | u8 2 bytes(key)               -- delete
//! bytes    := u32 len  len*u8
//! ```
//! The host sends restore commands in chunks (a whole changelog does not fit one buffer) in
//! changelog order; later operations on a key win, exactly as in the log.

use crate::output::{DecodeError, Reader};

const CMD_COMMIT: u8 = 0;
const CMD_ABORT: u8 = 1;
const CMD_RESTORE: u8 = 2;
pub(crate) const OP_PUT: u8 = 1;
pub(crate) const OP_DELETE: u8 = 2;

/// One change to a state entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateOp {
    /// The entry `key` now holds `value`.
    Put {
        /// Opaque state key (the SDK's own layout; see the SDK's `state` module).
        key: Vec<u8>,
        /// Opaque value bytes.
        value: Vec<u8>,
    },
    /// The entry `key` is gone.
    Delete {
        /// Opaque state key.
        key: Vec<u8>,
    },
}

impl StateOp {
    /// The key the operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            StateOp::Put { key, .. } | StateOp::Delete { key } => key,
        }
    }
}

/// A command the host sends to a stateful guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateCommand {
    /// Make the changes of the last successful `process` call permanent (the host wrote them).
    Commit,
    /// Undo every change since the last commit (the host will retry the batch).
    Abort,
    /// Apply these operations in order and commit them (restoring from the changelog).
    Restore(Vec<StateOp>),
}

impl StateCommand {
    /// Encodes the command (host side).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            StateCommand::Commit => vec![CMD_COMMIT],
            StateCommand::Abort => vec![CMD_ABORT],
            StateCommand::Restore(ops) => {
                let mut buf = vec![CMD_RESTORE];
                for op in ops {
                    encode_op(&mut buf, op);
                }
                buf
            }
        }
    }

    /// Decodes a command (guest side). The guest trusts its host, but a malformed buffer is
    /// still an error rather than a panic.
    pub fn decode(bytes: &[u8]) -> Result<StateCommand, DecodeError> {
        let mut r = Reader::new(bytes);
        match r.u8()? {
            CMD_COMMIT => Ok(StateCommand::Commit),
            CMD_ABORT => Ok(StateCommand::Abort),
            CMD_RESTORE => {
                let mut ops = Vec::new();
                while !r.done() {
                    ops.push(decode_op(&mut r)?);
                }
                Ok(StateCommand::Restore(ops))
            }
            _ => r.fail("unknown state command"),
        }
    }
}

/// Appends `op` in the wire layout above (shared with the output buffer's state entries).
pub(crate) fn encode_op(buf: &mut Vec<u8>, op: &StateOp) {
    match op {
        StateOp::Put { key, value } => encode_put(buf, key, value),
        StateOp::Delete { key } => encode_delete(buf, key),
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    // A single field over 4 GiB cannot exist in a 32-bit guest.
    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
    buf.extend_from_slice(b);
}

/// A put of `key` = `value`, from borrowed bytes (the guest writes its changes without first
/// copying them into [`StateOp`]s).
pub(crate) fn encode_put(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    buf.reserve(9 + key.len() + value.len());
    buf.push(OP_PUT);
    put_bytes(buf, key);
    put_bytes(buf, value);
}

/// A delete of `key`.
pub(crate) fn encode_delete(buf: &mut Vec<u8>, key: &[u8]) {
    buf.push(OP_DELETE);
    put_bytes(buf, key);
}

pub(crate) fn decode_op(r: &mut Reader<'_>) -> Result<StateOp, DecodeError> {
    match r.u8()? {
        OP_PUT => {
            let key = r.bytes()?.to_vec();
            let value = r.bytes()?.to_vec();
            Ok(StateOp::Put { key, value })
        }
        OP_DELETE => Ok(StateOp::Delete { key: r.bytes()?.to_vec() }),
        _ => r.fail("unknown state operation"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command survives encode → decode; truncations are errors.
    #[test]
    fn commands_round_trip() {
        let ops = vec![StateOp::Put { key: b"k".to_vec(), value: b"v".to_vec() }, StateOp::Delete { key: b"gone".to_vec() }];
        for cmd in [StateCommand::Commit, StateCommand::Abort, StateCommand::Restore(ops), StateCommand::Restore(vec![])] {
            assert_eq!(StateCommand::decode(&cmd.encode()).expect("decode"), cmd);
        }
        let bytes = StateCommand::Restore(vec![StateOp::Put { key: b"key".to_vec(), value: b"value".to_vec() }]).encode();
        for cut in 2..bytes.len() {
            assert!(StateCommand::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(StateCommand::decode(&[7]).is_err());
        assert!(StateCommand::decode(&[]).is_err());
    }
}
