//! Which interfaces to trace: shell globs on the interface name, and optionally only the
//! interfaces of some pods (`--pod`, looked up in the live [`PodIndex`]).

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::{cli::PodSelector, pods::PodIndex};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("bad interface glob '{glob}': {reason}")]
    BadGlob { glob: String, reason: String },
}

/// The set of `--iface` globs, and the `--pod` selectors (empty: every pod).
#[derive(Debug, Clone)]
pub(crate) struct IfaceFilter {
    globs: Vec<String>,
    set: GlobSet,
    pods: Vec<PodSelector>,
    index: Option<PodIndex>,
}

impl IfaceFilter {
    pub(crate) fn new(globs: &[String]) -> Result<Self, FilterError> {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            let bad = |reason: &str| FilterError::BadGlob { glob: glob.clone(), reason: reason.into() };
            if glob.is_empty() {
                return Err(bad("empty"));
            }
            if glob.contains('/') || glob.chars().any(char::is_whitespace) {
                return Err(bad("interface names never contain '/' or spaces"));
            }
            let literal_len = glob.chars().filter(|c| !"*?[]{}!".contains(*c)).count();
            if !glob.contains(['*', '?', '[', '{']) && literal_len > IFNAME_MAX {
                return Err(bad("longer than the 15 characters an interface name can have"));
            }
            let g = Glob::new(glob).map_err(|e| bad(&e.kind().to_string()))?;
            builder.add(g);
        }
        let set = builder
            .build()
            .map_err(|e| FilterError::BadGlob { glob: globs.join(" "), reason: e.to_string() })?;
        Ok(Self { globs: globs.to_vec(), set, pods: Vec::new(), index: None })
    }

    /// Also requires the interface to be the cali of one of `pods` (none given: no change).
    /// The answer follows `index`: re-apply [`matches`](Self::matches) when it changes.
    pub(crate) fn with_pods(mut self, pods: &[PodSelector], index: PodIndex) -> Self {
        if !pods.is_empty() {
            self.pods = pods.to_vec();
            self.index = Some(index);
        }
        self
    }

    /// Whether `--pod` selectors were given (so pod-index changes matter).
    pub(crate) fn selects_pods(&self) -> bool {
        !self.pods.is_empty()
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        if !self.set.is_match(name) {
            return false;
        }
        match &self.index {
            None => true,
            Some(index) => index.by_ifname(name).is_some_and(|pod| self.pods.iter().any(|sel| pod.is(sel))),
        }
    }

    /// The globs (and pods) as the user wrote them, for messages.
    pub(crate) fn describe(&self) -> String {
        let globs = self.globs.iter().map(|g| format!("'{g}'")).collect::<Vec<_>>().join(", ");
        if self.pods.is_empty() {
            return globs;
        }
        let pods: Vec<String> = self
            .pods
            .iter()
            .map(|p| p.namespace.as_ref().map_or_else(|| p.name.clone(), |ns| format!("{ns}/{}", p.name)))
            .collect();
        format!("{globs} of pod(s) {}", pods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(globs: &[&str]) -> Result<IfaceFilter, FilterError> {
        IfaceFilter::new(&globs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn cali_glob_matches_calico_host_ends_only() {
        let f = filter(&["cali*"]).unwrap();
        assert!(f.matches("cali1234567890a"));
        assert!(f.matches("cali"));
        assert!(!f.matches("eth0"));
        assert!(!f.matches("xcali1"));
        assert!(!f.matches("tap0"));
    }

    #[test]
    fn several_globs_are_a_union() {
        let f = filter(&["cali*", "tap?", "veth[0-3]"]).unwrap();
        assert!(f.matches("tap1"));
        assert!(!f.matches("tap10"));
        assert!(f.matches("veth2"));
        assert!(!f.matches("veth7"));
        assert!(f.matches("calia"));
    }

    #[test]
    fn bad_globs_are_rejected_with_the_glob_named() {
        for bad in ["cali[", "", "a/b", "eth 0", "averyveryverylongname"] {
            let err = filter(&[bad]).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }
}
