//! Readiness: named conditions that must all hold before `/readyz` answers 200.
//!
//! `serve` registers `recovery` (the broker's logs and metadata are open) and `kafka_listener`
//! (the accept loop runs), and clears readiness when shutdown starts. A later subsystem adds its
//! own condition at start (e.g. `transforms`) and sets it once it is running. `/healthz` is only
//! liveness: the process answers HTTP.

use parking_lot::Mutex;

/// The conditions and whether each holds.
#[derive(Debug, Default)]
pub struct Readiness {
    conditions: Mutex<Vec<(&'static str, bool)>>,
}

impl Readiness {
    /// Readiness with `names` all unmet.
    pub fn new(names: &[&'static str]) -> Self {
        Readiness { conditions: Mutex::new(names.iter().map(|&n| (n, false)).collect()) }
    }

    /// Sets condition `name`, adding it if new.
    pub fn set(&self, name: &'static str, met: bool) {
        let mut conditions = self.conditions.lock();
        match conditions.iter_mut().find(|(n, _)| *n == name) {
            Some(c) => c.1 = met,
            None => conditions.push((name, met)),
        }
    }

    /// The conditions not met yet; empty means ready.
    pub fn unmet(&self) -> Vec<&'static str> {
        self.conditions.lock().iter().filter(|(_, met)| !met).map(|(n, _)| *n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_condition_holds() {
        let r = Readiness::new(&["recovery", "kafka_listener"]);
        assert_eq!(r.unmet(), vec!["recovery", "kafka_listener"]);
        r.set("recovery", true);
        r.set("transforms", false);
        assert_eq!(r.unmet(), vec!["kafka_listener", "transforms"]);
        r.set("kafka_listener", true);
        r.set("transforms", true);
        assert!(r.unmet().is_empty());
        r.set("kafka_listener", false);
        assert_eq!(r.unmet(), vec!["kafka_listener"]);
    }
}
