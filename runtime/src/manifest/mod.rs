//! Manifests: Kubernetes-style YAML documents (`apiVersion: sluice/v1`, `kind`,
//! `metadata.name`, `spec`) declaring topics, transforms, pipelines and ACLs, for `sluice apply`.
//!
//! # Layout
//! - `model`: the typed objects ([`Document`], [`Object`]); a transform converts to the broker's
//!   `TransformSpec` at the edge.
//! - `load`: files and directories → documents (multi-document splitting, YAML parsing).
//! - `locate`: field path → line:column in a document.
//! - `decode`: one YAML value → a typed document, reporting every problem with its position.
//! - `validate`: checks across documents (duplicates, references, cycles).
//! - `wasm`: a transform's module (file or pinned URL): shape checks, and reading every module
//!   before anything changes.
//! - `acl`: the `Acl` kind (ACL bindings): decoding, and its apply/delete changes.
//! - `plan`: desired documents against the broker's state → created / updated / unchanged.
//! - `error`: [`Problem`] and [`ManifestError`].
//!
//! Pipelines reference Topic and Transform documents by name (they do not nest them): every
//! object has exactly one declaration, and `kubectl`-style flat files stay greppable.

pub mod acl;
pub mod decode;
pub mod error;
pub mod load;
pub mod locate;
pub mod model;
pub mod plan;
pub mod validate;
pub mod wasm;

#[cfg(test)]
mod tests;

pub use error::{ManifestError, Problem};
pub use load::{load, load_all, Located};
pub use model::{Document, Kind, Object};

use std::collections::BTreeSet;
use std::path::PathBuf;

/// Loads `paths` and runs every check; `existing_topics` are the broker's. All problems, or
/// none.
pub fn load_checked(paths: &[PathBuf], existing_topics: &BTreeSet<String>) -> Result<Vec<Located>, ManifestError> {
    check(load_all(paths)?, existing_topics)
}

/// Runs the checks across documents on what [`load_all`] read (so files are read, and I/O
/// errors reported, before the broker is asked for its topics).
pub fn check(loaded: load::Loaded, existing_topics: &BTreeSet<String>) -> Result<Vec<Located>, ManifestError> {
    let mut problems = loaded.problems;
    problems.extend(validate::check(&loaded.docs, &loaded.headers, existing_topics));
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        return Err(ManifestError::Invalid(problems));
    }
    Ok(loaded.docs)
}
