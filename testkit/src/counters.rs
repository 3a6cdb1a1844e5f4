//! The counters vethtrace prints as it exits: `vethtrace: N events, N lost, N undecodable`.

/// Events delivered, events lost (ring full, the kernel's count) and records skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitCounters {
    pub events: u64,
    pub lost: u64,
    pub undecodable: u64,
}

impl ExitCounters {
    /// The last counters line of vethtrace's standard error, if it printed one.
    pub fn parse(stderr: &str) -> Option<Self> {
        let line = stderr.lines().rev().find(|l| l.contains(" events, ") && l.contains(" lost, "))?;
        let nums: Vec<u64> = line
            .trim_start_matches("vethtrace: ")
            .split(", ")
            .filter_map(|p| p.split(' ').next()?.parse().ok())
            .collect();
        match nums[..] {
            [events, lost, undecodable] => Some(Self { events, lost, undecodable }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCounters;

    #[test]
    fn counters_from_the_last_stderr_line() {
        let c = ExitCounters::parse(
            "vethtrace: 1 events, 0 lost, 0 undecodable\nvethtrace: tracing 2 interface(s)\nvethtrace: 641650 events, 39498 lost, 2 undecodable\n",
        );
        assert_eq!(c, Some(ExitCounters { events: 641_650, lost: 39_498, undecodable: 2 }));
    }

    #[test]
    fn no_counters_without_the_line() {
        assert_eq!(ExitCounters::parse("vethtrace: tracing 2 interface(s)\n"), None);
        assert_eq!(ExitCounters::parse("vethtrace: 3 events, 1 lost\n"), None);
    }
}
