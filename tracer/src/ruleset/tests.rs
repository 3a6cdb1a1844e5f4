//! Naming by counters on fixture reads: one rule moved, two moved, a rule rewritten.

use super::{calico::DropKind, *};

const BEFORE: &str = r#"*filter
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
    let ruleset = Ruleset { tables: iptsave::parse(text, Backend::IptablesNft, "ip") };
    let counters = ruleset.drop_counters();
    Snapshot { start_ns: at, end_ns: at + 1, ruleset: Arc::new(ruleset), counters }
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

/// A drop is compared between the last read that ended before it and the first that began
/// after it; a drop during a read is compared across that read.
#[test]
fn a_drop_is_bracketed_by_the_reads_around_it() {
    let moved = bumped("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed");
    let mut model = RulesetModel {
        snapshots: vec![snapshot(BEFORE, 10), snapshot(BEFORE, 20), snapshot(&moved, 30)],
        changes: None,
        warned: false,
    };
    // Between the 2nd and 3rd reads: the Deny moved there.
    assert!(matches!(model.attribute(25, &DEVS), Attribution::Named(_)));
    // During the 2nd read (20..21): compared from the 1st to the 3rd.
    assert!(matches!(model.attribute(20, &DEVS), Attribution::Named(_)));
    // Between the 1st and 2nd: nothing moved there.
    assert_eq!(model.attribute(15, &DEVS), Attribution::Unknown("no dropping rule's counter moved"));
    // Before any read ended.
    assert_eq!(model.attribute(5, &DEVS), Attribution::Unknown("no read of the ruleset before the drop"));
}

/// An IPv4 drop is never put on an ip6 table's rule.
#[test]
fn the_other_families_tables_are_left_out() {
    let after = bumped("[3:180] -A cali-pi-_hashed", "[4:240] -A cali-pi-_hashed");
    let v6 = |text: &str, at| {
        let mut s = snapshot(text, at);
        let mut ruleset = (*s.ruleset).clone();
        ruleset.tables.iter_mut().for_each(|t| t.family = "ip6".into());
        s.counters = ruleset.drop_counters();
        s.ruleset = Arc::new(ruleset);
        s
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
