//! `sluice apply | diff | delete -f FILE|DIR`: manifests against a running broker, through the
//! admin HTTP API ([`Admin`]). Everything is validated and planned before the first change;
//! apply changes only what differs and prints one line per object.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::apply_admin::HttpAdmin;
use super::args::AdminArgs;
use super::progress::Progress;
use crate::manifest::model::Object;
use crate::manifest::plan::{self, Action, Current, Removal};
use crate::manifest::wasm::Modules;
use crate::manifest::{Kind, Located, ManifestError};
use crate::security::acl::AclBinding;
use crate::transform::TransformSpec;

/// Objects in one run above which a terminal shows progress on stderr.
const PROGRESS_OBJECTS_MIN: usize = 5;

/// The broker operations apply needs. Implemented over the admin HTTP client; tests can fake it.
pub trait Admin {
    /// The broker's topics, transforms and stored manifests.
    fn current(&self) -> anyhow::Result<Current>;
    /// Creates a topic.
    fn create_topic(&self, name: &str, partitions: i32, configs: &BTreeMap<String, String>) -> anyhow::Result<()>;
    /// Grows a topic to `partitions` (if set) and sets (`Some`) or resets (`None`) configs.
    fn alter_topic(&self, name: &str, partitions: Option<i32>, configs: &BTreeMap<String, Option<String>>) -> anyhow::Result<()>;
    /// Deletes a topic and its data.
    fn delete_topic(&self, name: &str) -> anyhow::Result<()>;
    /// Deploys (or redeploys, resuming at the committed position) a transform.
    fn deploy_transform(&self, spec: &TransformSpec, wasm: Vec<u8>) -> anyhow::Result<()>;
    /// Deletes a transform (its topics stay).
    fn delete_transform(&self, name: &str) -> anyhow::Result<()>;
    /// Stores an applied document under `kind`/`name`.
    fn put_manifest(&self, kind: Kind, name: &str, document: &serde_json::Value) -> anyhow::Result<()>;
    /// Deletes a stored document.
    fn delete_manifest(&self, kind: Kind, name: &str) -> anyhow::Result<()>;
    /// Creates ACL bindings (existing ones are left alone). Only `Acl` documents call it.
    fn create_acls(&self, _bindings: &[AclBinding]) -> anyhow::Result<()> {
        anyhow::bail!("this admin client cannot manage ACLs")
    }
    /// Deletes exactly these ACL bindings.
    fn delete_acls(&self, _bindings: &[AclBinding]) -> anyhow::Result<()> {
        anyhow::bail!("this admin client cannot manage ACLs")
    }
}

/// The manifests a command reads and the broker it talks to: what apply, diff and delete share.
#[derive(clap::Args, Debug)]
pub struct ManifestArgs {
    /// Manifest files or directories (`*.yaml`, `*.yml`, read recursively). Repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// Where the admin API is.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Create or update what manifests declare: topics, ACLs, transforms, pipelines. Idempotent: prints
/// `kind/name created|updated (what)|unchanged` per object; nothing changes unless every
/// document is valid.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  sluice apply -f manifests/quickstart.yaml
  sluice apply -f manifests/            # every *.yaml / *.yml below, in path order
  SLUICE_ADMIN=http://broker:9644 sluice apply -f pipeline.yaml")]
pub struct ApplyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: ManifestArgs,
}

/// Show what `sluice apply` would do, changing nothing (`kind/name would be created|updated
/// (what)`, or `unchanged`).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  sluice diff -f manifests/log-aggregation.yaml
  sluice diff -f manifests/ --admin http://broker:9644")]
pub struct DiffArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: ManifestArgs,
}

/// Delete what manifests declare: transforms, stored pipelines and ACLs; topics (and their
/// data) only with --include-topics.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  sluice delete -f manifests/quickstart.yaml
  sluice delete -f manifests/quickstart.yaml --include-topics")]
pub struct DeleteArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: ManifestArgs,
    /// Also delete the declared topics, with their data.
    #[arg(long)]
    pub include_topics: bool,
}

/// Runs `sluice apply`.
pub fn main_apply(args: ApplyArgs) -> std::process::ExitCode {
    let result = HttpAdmin::new(&args.target.admin).and_then(|admin| apply(&args.target.files, &admin, false, &mut std::io::stdout()));
    report("apply", result)
}

/// Runs `sluice diff`.
pub fn main_diff(args: DiffArgs) -> std::process::ExitCode {
    let result = HttpAdmin::new(&args.target.admin).and_then(|admin| apply(&args.target.files, &admin, true, &mut std::io::stdout()));
    report("diff", result)
}

/// Runs `sluice delete`.
pub fn main_delete(args: DeleteArgs) -> std::process::ExitCode {
    let result = HttpAdmin::new(&args.target.admin)
        .and_then(|admin| delete(&args.target.files, &admin, args.include_topics, &mut std::io::stdout()));
    report("delete", result)
}

/// `[i/n] kind/name` on stderr (the shared progress line), when it is a terminal and there are
/// many objects.
fn progress(total: usize) -> Progress {
    Progress::new(total >= PROGRESS_OBJECTS_MIN && std::io::stderr().is_terminal(), Duration::ZERO)
}

fn show_step(progress: &mut Progress, i: usize, total: usize, id: &str) {
    progress.update(|| format!("[{}/{total}] {id}", i + 1));
}

/// Loads, reads every module (files and URLs) and validates against the broker. Problems →
/// `ManifestError::Invalid`, all of them.
fn load_and_fetch(files: &[PathBuf], admin: &dyn Admin) -> anyhow::Result<(Vec<Located>, Current, Modules)> {
    // Files first: a wrong path is reported as such even when the broker is down.
    let mut loaded = crate::manifest::load_all(files)?;
    let (modules, problems) = crate::manifest::wasm::read_modules(&loaded, &super::wasm_fetch::fetch);
    loaded.problems.extend(problems);
    let current = admin.current().context("cannot read the broker's state")?;
    let docs = crate::manifest::check(loaded, &current.topic_names())?;
    Ok((docs, current, modules))
}

/// Runs apply (or, with `dry_run`, diff); writes one line per object to `out`.
pub fn apply(files: &[PathBuf], admin: &dyn Admin, dry_run: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let (docs, current, modules) = load_and_fetch(files, admin)?;
    let shas: BTreeMap<String, String> = modules.iter().map(|(k, (_, sha))| (k.clone(), sha.clone())).collect();
    let steps = plan::apply(&docs, &current, &shas).map_err(ManifestError::Invalid)?;
    let total = steps.len();
    let mut progress = progress(if dry_run { 0 } else { total });
    for (i, step) in steps.iter().enumerate() {
        let doc = step.doc;
        if !dry_run {
            show_step(&mut progress, i, total, &doc.id());
            let result = execute(step, &current, &modules, admin).and_then(|()| {
                let key = plan::store_key(doc.object.kind(), &doc.name);
                if current.manifests.get(&key) != Some(&doc.raw) {
                    admin.put_manifest(doc.object.kind(), &doc.name, &doc.raw)?;
                }
                Ok(())
            });
            if let Err(e) = result {
                progress.clear();
                return Err(e.context(format!("{} (declared at {}:{})", doc.id(), doc.origin.file, doc.origin.line)));
            }
        }
        progress.clear();
        writeln!(out, "{}", step.describe(dry_run))?;
    }
    Ok(())
}

fn execute(step: &plan::Step, current: &Current, modules: &Modules, admin: &dyn Admin) -> anyhow::Result<()> {
    let doc = step.doc;
    match (&step.action, &doc.object) {
        (Action::Unchanged, _) | (_, Object::Pipeline(_)) => Ok(()),
        (_, Object::Acl(a)) => {
            let stored = current.manifests.get(&plan::store_key(Kind::Acl, &doc.name));
            let changes = crate::manifest::acl::changes(a, &current.acls, stored);
            admin.create_acls(&changes.create)?;
            admin.delete_acls(&changes.delete)
        }
        (Action::Create, Object::Topic(t)) => admin.create_topic(&doc.name, t.partitions, &t.configs),
        (Action::Update(_), Object::Topic(t)) => {
            let now = current.topics.get(&doc.name).context("topic vanished since the plan")?;
            let partitions = (t.partitions > now.partitions).then_some(t.partitions);
            let mut configs: BTreeMap<String, Option<String>> = BTreeMap::new();
            for (k, v) in &t.configs {
                if now.configs.get(k) != Some(v) {
                    configs.insert(k.clone(), Some(v.clone()));
                }
            }
            for k in now.configs.keys().filter(|k| !t.configs.contains_key(*k)) {
                configs.insert(k.clone(), None);
            }
            admin.alter_topic(&doc.name, partitions, &configs)
        }
        (_, Object::Transform(t)) => {
            let (bytes, _) = modules.get(&doc.name).context("module not read")?;
            admin.deploy_transform(&t.to_spec(), bytes.clone())
        }
    }
}

/// Runs delete; writes one line per object to `out`.
pub fn delete(files: &[PathBuf], admin: &dyn Admin, include_topics: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    // Only decoding matters: references to topics that are gone are fine when deleting.
    let docs = crate::manifest::load(files)?;
    let current = admin.current().context("cannot read the broker's state")?;
    let plan = plan::delete(&docs, &current, include_topics);
    let total = plan.len();
    let mut progress = progress(total);
    for (i, (doc, removal)) in plan.iter().enumerate() {
        show_step(&mut progress, i, total, &doc.id());
        let kind = doc.object.kind();
        let result = match removal {
            Removal::Delete => match &doc.object {
                Object::Topic(_) => admin.delete_topic(&doc.name),
                Object::Transform(_) => admin.delete_transform(&doc.name),
                Object::Pipeline(_) => Ok(()),
                Object::Acl(a) => {
                    let stored = current.manifests.get(&plan::store_key(kind, &doc.name));
                    admin.delete_acls(&crate::manifest::acl::removals(a, &current.acls, stored))
                }
            },
            Removal::Absent | Removal::Kept => Ok(()),
        };
        let stored = current.manifests.contains_key(&plan::store_key(kind, &doc.name));
        let result =
            result.and_then(|()| if stored && *removal != Removal::Kept { admin.delete_manifest(kind, &doc.name) } else { Ok(()) });
        progress.clear();
        if let Err(e) = result {
            return Err(e.context(doc.id()));
        }
        let line = match removal {
            Removal::Delete => format!("{} deleted", doc.id()),
            Removal::Absent => format!("{} absent", doc.id()),
            Removal::Kept => format!("{} kept (pass --include-topics to delete topics and their data)", doc.id()),
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Prints an error as the CLI does: validation problems one per line, anything else as one
/// line; returns the exit code.
pub fn report(command: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if let Some(ManifestError::Invalid(problems)) = e.downcast_ref::<ManifestError>() {
                for p in problems {
                    eprintln!("{p}");
                }
                eprintln!("sluice {command}: {} problem(s); nothing was changed", problems.len());
            } else {
                eprintln!("sluice {command}: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::manifest::plan::{CurrentTopic, CurrentTransform};

    /// Records every call; `current` is what the broker has.
    #[derive(Default)]
    struct Fake {
        current: Current,
        calls: RefCell<Vec<String>>,
    }

    impl Admin for Fake {
        fn current(&self) -> anyhow::Result<Current> {
            Ok(self.current.clone())
        }
        fn create_topic(&self, name: &str, partitions: i32, configs: &BTreeMap<String, String>) -> anyhow::Result<()> {
            self.calls.borrow_mut().push(format!("create {name} {partitions} {configs:?}"));
            Ok(())
        }
        fn alter_topic(&self, name: &str, partitions: Option<i32>, configs: &BTreeMap<String, Option<String>>) -> anyhow::Result<()> {
            self.calls.borrow_mut().push(format!("alter {name} {partitions:?} {configs:?}"));
            Ok(())
        }
        fn delete_topic(&self, name: &str) -> anyhow::Result<()> {
            self.calls.borrow_mut().push(format!("delete topic {name}"));
            Ok(())
        }
        fn deploy_transform(&self, spec: &TransformSpec, wasm: Vec<u8>) -> anyhow::Result<()> {
            self.calls.borrow_mut().push(format!("deploy {} {} bytes", spec.name, wasm.len()));
            Ok(())
        }
        fn delete_transform(&self, name: &str) -> anyhow::Result<()> {
            self.calls.borrow_mut().push(format!("delete transform {name}"));
            Ok(())
        }
        fn put_manifest(&self, kind: Kind, name: &str, _: &serde_json::Value) -> anyhow::Result<()> {
            self.calls.borrow_mut().push(format!("put {}/{name}", kind.as_str()));
            Ok(())
        }
        fn delete_manifest(&self, kind: Kind, name: &str) -> anyhow::Result<()> {
            self.calls.borrow_mut().push(format!("unstore {}/{name}", kind.as_str()));
            Ok(())
        }
    }

    const MANIFEST: &str = "\
apiVersion: sluice/v1
kind: Topic
metadata: {name: a}
spec:
  partitions: 3
  configs: {retention.ms: 1000}
---
apiVersion: sluice/v1
kind: Transform
metadata: {name: up}
spec: {wasm: m.wasm, input: a, outputs: [b]}
";

    fn fixture() -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.wasm"), b"\0asm-bytes").unwrap();
        std::fs::write(dir.path().join("x.yaml"), MANIFEST).unwrap();
        let files = vec![dir.path().join("x.yaml")];
        (dir, files)
    }

    /// Apply creates what is missing and stores each document; only what differs changes after.
    #[test]
    fn apply_changes_only_what_differs() {
        let (_dir, files) = fixture();
        let mut fake = Fake::default();
        fake.current.topics.insert("b".into(), CurrentTopic { partitions: 1, configs: BTreeMap::new() });
        let mut out = Vec::new();
        apply(&files, &fake, false, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "topic/a created\ntransform/up created\n");
        assert_eq!(
            *fake.calls.borrow(),
            ["create a 3 {\"retention.ms\": \"1000\"}", "put Topic/a", "deploy up 10 bytes", "put Transform/up"]
        );

        // The broker now has `a` with 2 partitions and another config; `up` as declared.
        let docs = crate::manifest::load(&files).unwrap();
        let Object::Transform(t) = &docs[1].doc.object else { panic!() };
        let sha = crate::transform::module::sha256_hex(b"\0asm-bytes");
        let configs: BTreeMap<String, String> = [("cleanup.policy".to_string(), "compact".to_string())].into();
        fake.current.topics.insert("a".into(), CurrentTopic { partitions: 2, configs });
        fake.current.transforms.insert("up".into(), CurrentTransform { spec: t.to_spec(), module_sha256: sha });
        fake.current.manifests.insert("Transform/up".into(), docs[1].doc.raw.clone());
        fake.calls.borrow_mut().clear();
        let mut out = Vec::new();
        apply(&files, &fake, false, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "topic/a updated (partitions 2 -> 3; cleanup.policy compact -> (default); retention.ms (default) -> 1000)\ntransform/up unchanged\n");
        assert_eq!(*fake.calls.borrow(), ["alter a Some(3) {\"cleanup.policy\": None, \"retention.ms\": Some(\"1000\")}", "put Topic/a"]);

        // diff calls nothing that changes the broker.
        fake.calls.borrow_mut().clear();
        apply(&files, &fake, true, &mut Vec::new()).unwrap();
        assert!(fake.calls.borrow().is_empty());
    }

    /// A validation problem stops everything before the first call.
    #[test]
    fn invalid_manifest_changes_nothing() {
        let (dir, files) = fixture();
        std::fs::write(dir.path().join("x.yaml"), MANIFEST.replace("outputs: [b]", "outputs: [nowhere]")).unwrap();
        let fake = Fake::default();
        let err = apply(&files, &fake, false, &mut Vec::new()).unwrap_err();
        let Some(ManifestError::Invalid(problems)) = err.downcast_ref::<ManifestError>() else { panic!("{err:#}") };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("\"nowhere\" neither exists"));
        assert!(fake.calls.borrow().is_empty());
    }

    /// Delete removes transforms first, keeps topics unless asked, and unstores what it removed.
    #[test]
    fn delete_order_and_topics() {
        let (_dir, files) = fixture();
        let mut fake = Fake::default();
        fake.current.topics.insert("a".into(), CurrentTopic { partitions: 3, configs: BTreeMap::new() });
        let docs = crate::manifest::load(&files).unwrap();
        let Object::Transform(t) = &docs[1].doc.object else { panic!() };
        fake.current.transforms.insert("up".into(), CurrentTransform { spec: t.to_spec(), module_sha256: String::new() });
        fake.current.manifests.insert("Transform/up".into(), serde_json::Value::Null);
        fake.current.manifests.insert("Topic/a".into(), serde_json::Value::Null);
        let mut out = Vec::new();
        delete(&files, &fake, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "transform/up deleted\ntopic/a kept (pass --include-topics to delete topics and their data)\n"
        );
        assert_eq!(*fake.calls.borrow(), ["delete transform up", "unstore Transform/up"]);
        fake.calls.borrow_mut().clear();
        delete(&files, &fake, true, &mut Vec::new()).unwrap();
        assert_eq!(*fake.calls.borrow(), ["delete transform up", "unstore Transform/up", "delete topic a", "unstore Topic/a"]);
    }
}
