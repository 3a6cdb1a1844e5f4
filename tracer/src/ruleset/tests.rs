//! Naming by counters on fixture reads: one rule moved, two moved, a rule rewritten.

use super::{calico::DropKind, *};

pub(crate) const BEFORE: &str = r#"*filter
:FORWARD ACCEPT [0:0]
:cali-pi-_hashedPolicyName0 - [0:0]
:cali-pi-_otherPolicyName00 - [0:0]
:cali-tw-cali1111 - [0:0]
:cali-tw-cali2222 - [0:0]
[0:0] -A cali-pi-_hashedPolicyName0 -m comment --comment "cali:aaaaaaaaaaaaaaaa" -m comment --comment "Policy prod/default.deny-all ingress"
[3:180] -A cali-pi-_hashedPolicyName0 -p tcp -m comment --comment "cali:bbbbbbbbbbbbbbbb" -j DROP
[0:0] -A cali-pi-_otherPolicyName00 -m comment --comment "cali:cccccccccccccccc" -m comment --comment "Policy prod/default.allow-web ingress"
[0:0] -A cali-tw-cali1111 -m comment --comment "cali:dddddddddddddddd" -m comment --comment "Start of tier default" -j MARK --set-xmark 0x0/0x20000
[5:300] -A cali-tw-cali1111 -m comment --comment "cali:eeeeeeeeeeeeeeee" -m mark --mark 0x0/0x20000 -j cali-pi-_hashedPolicyName0
[5:300] -A cali-tw-cali1111 -m comment --comment "cali:ffffffffffffffff" -m mark --mark 0x0/0x20000 -j cali-pi-_otherPolicyName00
[1:60] -A cali-tw-cali1111 -m comment --comment "cali:gggggggggggggggg" -m comment --comment "Drop if no policies passed packet" -m mark --mark 0x0/0x20000 -j DROP
[0:0] -A cali-tw-cali2222 -m comment --comment "cali:hhhhhhhhhhhhhhhh" -m comment --comment "Drop if no profiles matched" -j DROP
COMMIT
"#;

fn snapshot(text: &str, at: u64) -> Snapshot {
    Snapshot::new(Ruleset { tables: iptsave::parse(text, Backend::IptablesNft, "ip") }, at, at + 1)
}

/// A read of `text` that began at `at` and took 1 ns.
pub(crate) fn read_of(text: &str, at: u64) -> Read {
    Read { start_ns: at, result: Ok(snapshot(text, at)) }
}

fn bumped(from: &str, to: &str) -> String {
    BEFORE.replace(from, to)
}

const DEVS: DropDevs<'static> = DropDevs { dev: Some("cali9999"), out: Some("cali1111"), family: Some("ip") };

#[test]
fn one_moved_rule_is_named_with_its_policy_from_the_owner_comment() {
    let after = bumped("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed");
    let a = between(&snapshot(BEFORE, 10), &snapshot(&after, 20), None, &DEVS);
    let Attribution::Named(r) = a else { panic!("{a:?}") };
    assert_eq!(r.label(), "ip filter cali-pi-_hashedPolicyName0 #2");
    assert_eq!(r.reading.kind, DropKind::Deny);
    assert_eq!(r.reading.policy.unwrap().label(), "NetworkPolicy prod/deny-all");
}

#[test]
fn end_of_tier_names_the_tier_and_the_policies_tried() {
    let after = bumped("[1:60] -A cali-tw-cali1111", "[2:120] -A cali-tw-cali1111");
    let Attribution::Named(r) = between(&snapshot(BEFORE, 10), &snapshot(&after, 20), None, &DEVS) else { panic!() };
    assert_eq!(r.reading.kind, DropKind::EndOfTier);
    assert_eq!(r.reading.tier.as_deref(), Some("default"));
    assert_eq!(r.reading.endpoint.as_deref(), Some("cali1111"));
    let tried: Vec<String> = r.reading.tried.iter().map(calico::PolicyName::label).collect();
    assert_eq!(tried, ["NetworkPolicy prod/deny-all", "NetworkPolicy prod/allow-web"]);
}

#[test]
fn two_moved_rules_are_ambiguous_never_a_guess() {
    let after = bumped("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed")
        .replace("[1:60] -A cali-tw-cali1111", "[2:120] -A cali-tw-cali1111");
    let Attribution::Ambiguous(c) = between(&snapshot(BEFORE, 10), &snapshot(&after, 20), None, &DEVS) else {
        panic!()
    };
    assert_eq!(c.len(), 2);
}

/// Endpoint chains of interfaces the drop did not pass through are not candidates.
#[test]
fn other_endpoints_chains_are_left_out() {
    let after = bumped("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed")
        .replace("[0:0] -A cali-tw-cali2222", "[1:60] -A cali-tw-cali2222");
    assert!(matches!(between(&snapshot(BEFORE, 10), &snapshot(&after, 20), None, &DEVS), Attribution::Named(_)));
}

/// A rule rewritten between the reads (its counter reset, then moved back to where it was)
/// may have dropped: with another rule moved it is a candidate, never silently skipped.
#[test]
fn a_rewritten_rule_is_never_a_wrong_name() {
    let changes = watch::Changes::default();
    changes.push(watch::Change {
        at_ns: 15,
        family: 2,
        table: "filter".into(),
        chain: Some("cali-pi-_hashedPolicyName0".into()),
    });
    let after = BEFORE.replace("[1:60] -A cali-tw-cali1111", "[2:120] -A cali-tw-cali1111");
    let a = between(&snapshot(BEFORE, 10), &snapshot(&after, 20), Some(&changes), &DEVS);
    let Attribution::Ambiguous(c) = a else { panic!("{a:?}") };
    assert_eq!(c.len(), 2);
    // A counter that went down (reset, no announcement: iptables-legacy) is the same.
    let after = bumped("[3:180] -A cali-pi-_hashed", "[1:60] -A cali-pi-_hashed")
        .replace("[1:60] -A cali-tw-cali1111", "[2:120] -A cali-tw-cali1111");
    assert!(matches!(between(&snapshot(BEFORE, 10), &snapshot(&after, 20), None, &DEVS), Attribution::Ambiguous(_)));
}

#[test]
fn counters_compare() {
    assert_eq!(compare(Some(Some(1)), Some(2), false), Counted::Moved);
    assert_eq!(compare(Some(Some(1)), Some(2), true), Counted::Maybe);
    assert_eq!(compare(None, Some(1), true), Counted::Moved, "new since the read: counted from 0");
    assert_eq!(compare(None, Some(0), false), Counted::Still);
    assert_eq!(compare(Some(Some(2)), Some(2), false), Counted::Still);
    assert_eq!(compare(Some(None), None, false), Counted::Maybe, "no counter: may have dropped");
}

/// A model with the reads `snapshots` in.
fn model(snapshots: Vec<Snapshot>) -> RulesetModel {
    let last_start_ns = snapshots.last().map(|s| s.start_ns);
    RulesetModel { snapshots, last_start_ns, ..RulesetModel::new(None) }
}

/// A netfilter drop at `ts_ns` on `DEVS`.
pub(crate) fn query(ts_ns: u64) -> RuleQuery {
    RuleQuery { ts_ns, dev: DEVS.dev.map(str::to_owned), out: DEVS.out.map(str::to_owned), family: DEVS.family }
}

/// A drop is compared between the last read that ended before it and the first that began
/// after it; a drop during a read is compared across that read; a drop after the last read
/// waits for the next.
#[test]
fn a_drop_is_bracketed_by_the_reads_around_it() {
    let moved = bumped("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed");
    let mut model = model(vec![snapshot(BEFORE, 10), snapshot(BEFORE, 20), snapshot(&moved, 30)]);
    let named = |n: Naming| matches!(n, Naming::Rule(Attribution::Named(_)));
    // Between the 2nd and 3rd reads: the Deny moved there.
    assert!(named(model.naming(&query(25))));
    // During the 2nd read (20..21): compared from the 1st to the 3rd.
    assert!(named(model.naming(&query(20))));
    // Between the 1st and 2nd: nothing moved there.
    assert_eq!(model.naming(&query(15)), Naming::Rule(Attribution::Unknown("no dropping rule's counter moved")));
    // Before any read ended.
    assert_eq!(model.naming(&query(5)), Naming::Rule(Attribution::Unknown("no read of the ruleset before the drop")));
    // After the last read began: not yet.
    assert_eq!(model.naming(&query(35)), Naming::Wait);
}

/// Reads are taken in as they come; a failed read ends the wait of the drops before it; the
/// tools missing from the start leaves every netfilter drop its plain cause.
#[test]
fn reads_taken_in_end_the_wait() {
    let mut m = RulesetModel::new(None);
    assert!(m.wants_baseline());
    assert_eq!(m.next_read_ns(), 0, "the baseline at once");
    assert_eq!(m.naming(&query(5)), Naming::Wait, "a drop before the baseline waits for it");
    m.take(read_of(BEFORE, 10));
    assert!(!m.wants_baseline());
    assert_eq!(m.next_read_ns(), 10 + READ_GAP_NS, "at most ten reads a second");
    assert_eq!(m.naming(&query(5)), Naming::Rule(Attribution::Unknown("no read of the ruleset before the drop")));
    assert_eq!(m.naming(&query(12)), Naming::Wait);
    m.take(Read { start_ns: 20, result: Err(RulesetError::Stopped("test".into())) });
    assert_eq!(m.naming(&query(12)), Naming::Rule(Attribution::Unknown("the ruleset could not be read")));
    assert_eq!(m.naming(&query(22)), Naming::Wait, "a later drop waits for a read that works");
    let mut absent = RulesetModel::new(None);
    let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
    absent.take(Read { start_ns: 1, result: Err(RulesetError::Spawn { cmd: "nft", source: missing }) });
    assert!(!absent.wants_baseline());
    assert_eq!(absent.naming(&query(0)), Naming::Plain);
    assert_eq!(absent.naming(&query(5)), Naming::Plain);
}

/// An IPv4 drop is never put on an ip6 table's rule.
#[test]
fn the_other_families_tables_are_left_out() {
    let after = bumped("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed");
    let v6 = |text: &str, at| {
        let mut ruleset = Ruleset { tables: iptsave::parse(text, Backend::IptablesNft, "ip") };
        ruleset.tables.iter_mut().for_each(|t| t.family = "ip6".into());
        Snapshot::new(ruleset, at, at + 1)
    };
    let a = between(&v6(BEFORE, 10), &v6(&after, 20), None, &DEVS);
    assert_eq!(a, Attribution::Unknown("no dropping rule's counter moved"));
}

/// A rule inserted at the top of a chain shifts every iptables rule after it: they keep their
/// counters and are the same rules (known by text, not position), so nothing is said to move.
#[test]
fn a_shifted_iptables_rule_is_the_same_rule() {
    let inserted = BEFORE.replace(
        "[0:0] -A cali-pi-_hashedPolicyName0 -m comment --comment \"cali:aaaaaaaaaaaaaaaa\"",
        "[0:0] -A cali-pi-_hashedPolicyName0 -p udp -j DROP\n[0:0] -A cali-pi-_hashedPolicyName0 -m comment --comment \"cali:aaaaaaaaaaaaaaaa\"",
    );
    let a = between(&snapshot(BEFORE, 10), &snapshot(&inserted, 20), None, &DEVS);
    assert_eq!(a, Attribution::Unknown("no dropping rule's counter moved"));
    let moved = inserted.replace("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed");
    let Attribution::Named(r) = between(&snapshot(BEFORE, 10), &snapshot(&moved, 20), None, &DEVS) else { panic!() };
    assert_eq!(r.position, 3, "named where it is now");
}
