//! The ACLs indexed for the authorizer's questions, so a check looks at the bindings that can
//! cover the resource instead of scanning every binding (it is asked several times per request:
//! Metadata asks once per topic).
//!
//! Per resource type: literal bindings in a map by name (`*` is one more key), prefixed
//! bindings in a map by prefix plus the set of prefix lengths in use. The prefixes of a name
//! that can match are then the name's first `len` bytes for each length in use, one map lookup
//! each: a check costs O(distinct prefix lengths + bindings on the resource), whatever the total.
//! A trie was the alternative; with topic names under 250 bytes and few distinct prefix lengths
//! in practice, the length set is simpler and as fast.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::{AclBinding, PatternType, ResourceType, WILDCARD};

/// One resource type's bindings.
#[derive(Debug, Default)]
struct TypeIndex {
    /// Literal bindings by resource name (`*` included).
    literal: HashMap<String, Vec<AclBinding>>,
    /// Prefixed bindings by prefix.
    prefixed: HashMap<String, Vec<AclBinding>>,
    /// Byte length of each prefix in `prefixed` → how many prefixes have it.
    prefix_lengths: BTreeMap<usize, usize>,
}

impl TypeIndex {
    fn insert(&mut self, binding: AclBinding) {
        match binding.pattern_type {
            PatternType::Literal => self.literal.entry(binding.resource_name.clone()).or_default().push(binding),
            PatternType::Prefixed => {
                let list = self.prefixed.entry(binding.resource_name.clone()).or_default();
                if list.is_empty() {
                    *self.prefix_lengths.entry(binding.resource_name.len()).or_default() += 1;
                }
                list.push(binding);
            }
        }
    }

    fn remove(&mut self, binding: &AclBinding) {
        let name = &binding.resource_name;
        let map = match binding.pattern_type {
            PatternType::Literal => &mut self.literal,
            PatternType::Prefixed => &mut self.prefixed,
        };
        let Some(list) = map.get_mut(name) else { return };
        list.retain(|b| b != binding);
        if !list.is_empty() {
            return;
        }
        map.remove(name);
        if binding.pattern_type == PatternType::Prefixed {
            if let Some(count) = self.prefix_lengths.get_mut(&name.len()) {
                *count -= 1;
                if *count == 0 {
                    self.prefix_lengths.remove(&name.len());
                }
            }
        }
    }

    /// Every binding whose pattern covers `name`.
    fn covering<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a AclBinding> + 'a {
        let exact = self.literal.get(name).into_iter().flatten();
        // `*` as a name is covered once, by the exact lookup.
        let wildcard = (name != WILDCARD).then(|| self.literal.get(WILDCARD)).flatten().into_iter().flatten();
        let prefixed = self
            .prefix_lengths
            .range(..=name.len())
            .filter_map(move |(len, _)| name.get(..*len))
            .filter_map(move |prefix| self.prefixed.get(prefix))
            .flatten();
        exact.chain(wildcard).chain(prefixed)
    }

    fn all(&self) -> impl Iterator<Item = &AclBinding> {
        self.literal.values().chain(self.prefixed.values()).flatten()
    }
}

/// Every binding, as a set (for listing and filters) and indexed by resource type and pattern
/// (for decisions). Both views change together, under the store's one lock.
#[derive(Debug, Default)]
pub struct AclIndex {
    set: BTreeSet<AclBinding>,
    by_type: [TypeIndex; 4],
}

fn slot(resource_type: ResourceType) -> usize {
    match resource_type {
        ResourceType::Topic => 0,
        ResourceType::Group => 1,
        ResourceType::Cluster => 2,
        ResourceType::TransactionalId => 3,
    }
}

impl AclIndex {
    /// An index of `bindings`.
    pub fn new(bindings: BTreeSet<AclBinding>) -> Self {
        let mut index = AclIndex::default();
        for b in bindings {
            index.insert(b);
        }
        index
    }

    /// Adds a binding; false if it was there already.
    pub fn insert(&mut self, binding: AclBinding) -> bool {
        if !self.set.insert(binding.clone()) {
            return false;
        }
        self.by_type[slot(binding.resource_type)].insert(binding);
        true
    }

    /// Removes a binding; false if it was not there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        if !self.set.remove(binding) {
            return false;
        }
        self.by_type[slot(binding.resource_type)].remove(binding);
        true
    }

    /// Every binding, ordered.
    pub fn set(&self) -> &BTreeSet<AclBinding> {
        &self.set
    }

    /// The bindings whose pattern covers resource `name` of `resource_type` (exactly those for
    /// which [`AclBinding::covers`] holds), in no particular order.
    pub fn covering<'a>(&'a self, resource_type: ResourceType, name: &'a str) -> impl Iterator<Item = &'a AclBinding> + 'a {
        self.by_type[slot(resource_type)].covering(name)
    }

    /// The bindings on resources of `resource_type`.
    pub fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &AclBinding> {
        self.by_type[slot(resource_type)].all()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::security::acl::model::{Operation, Permission};

    fn binding(rt: ResourceType, name: &str, pattern: PatternType, user: &str) -> AclBinding {
        AclBinding::from_wire(
            rt.code(),
            name,
            pattern.code(),
            &format!("User:{user}"),
            "*",
            Operation::All.code(),
            Permission::Allow.code(),
        )
        .unwrap()
    }

    /// `covering` returns exactly what a scan with `covers` returns, through inserts and
    /// removals, for names at, inside and beyond every prefix (multi-byte characters included).
    #[test]
    fn covering_equals_the_scan() {
        use PatternType::{Literal, Prefixed};
        use ResourceType::{Group, Topic};
        let all = [
            binding(Topic, "orders", Literal, "a"),
            binding(Topic, "orders", Literal, "b"),
            binding(Topic, "*", Literal, "a"),
            binding(Topic, "ord", Prefixed, "a"),
            binding(Topic, "orders-", Prefixed, "c"),
            binding(Topic, "é", Prefixed, "a"),
            binding(Topic, "x", Prefixed, "a"),
            binding(Group, "orders", Literal, "a"),
            binding(Group, "o", Prefixed, "a"),
        ];
        let names = ["orders", "orders-eu", "ord", "or", "", "*", "éclair", "x", "xy", "other", "é"];
        let mut index = AclIndex::default();
        let check = |index: &AclIndex| {
            for rt in [Topic, Group] {
                for name in names {
                    let mut got: Vec<&AclBinding> = index.covering(rt, name).collect();
                    got.sort();
                    let want: Vec<&AclBinding> = index.set().iter().filter(|b| b.covers(rt, name)).collect();
                    assert_eq!(got, want, "{rt:?} {name:?}");
                }
            }
        };
        for b in &all {
            assert!(index.insert(b.clone()));
            check(&index);
        }
        assert!(!index.insert(all[0].clone()));
        for b in all.iter().rev().step_by(2).chain(all.iter()) {
            index.remove(b);
            check(&index);
        }
        assert!(index.set().is_empty());
        assert!(index.by_type.iter().all(|t| t.literal.is_empty() && t.prefixed.is_empty() && t.prefix_lengths.is_empty()));
    }
}
