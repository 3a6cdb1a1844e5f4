//! `vethtrace_journey_seconds` (`--journey --metrics`): how long packets take through the node,
//! a histogram per entry device, exit device (empty unless the packet left on one) and outcome.
//! Labels stay bounded: interfaces, never addresses; a traced interface's series go when it does.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct JourneyLabels {
    entry: String,
    exit: String,
    outcome: String,
}

/// 1 µs to about 4 s, a bucket every factor of 4.
fn histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 4.0, 12))
}

pub(super) struct JourneyTimes {
    family: Family<JourneyLabels, Histogram, fn() -> Histogram>,
    /// Every label set made, to remove an interface's.
    made: Vec<JourneyLabels>,
}

impl JourneyTimes {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let family = Family::<JourneyLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "journey_seconds",
            "Time from a packet entering the node to its last hop (--journey), by entry device, exit device and outcome",
            family.clone(),
        );
        Self { family, made: Vec::new() }
    }

    pub(super) fn observe(&mut self, entry: &str, exit: &str, outcome: &str, seconds: f64) {
        let labels = JourneyLabels { entry: entry.to_owned(), exit: exit.to_owned(), outcome: outcome.to_owned() };
        if !self.made.contains(&labels) {
            self.made.push(labels.clone());
        }
        self.family.get_or_create(&labels).observe(seconds);
    }

    /// The interface `name` is gone: every series it is part of goes.
    pub(super) fn forget(&mut self, name: &str) {
        let family = &self.family;
        self.made.retain(|l| {
            let keep = l.entry != name && l.exit != name;
            if !keep {
                family.remove(l);
            }
            keep
        });
    }
}
