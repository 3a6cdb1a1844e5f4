//! Which rule and policy dropped a packet: a Calico-style node whose ruleset is written in
//! Felix's own formats in each of its three modes (3.29's iptables rules through iptables-nft
//! and through iptables-legacy, 3.30+'s nftables table with long and hashed chain names beside
//! kube-proxy's nftables table), pods whose traffic each planted policy drops (an explicit
//! Deny, the end of a tier, a GlobalNetworkPolicy in another tier, no profile, the RPF check,
//! kube-proxy), and vethtrace naming every NETFILTER_DROP's rule and policy. The oracle is the kernel's own
//! counters, read by the test (`iptables -L -v -x`, `nft -j list chain`): the rule vethtrace
//! names must be the one whose counter moved by the drops of that scenario, and no other
//! dropping rule of the scenario's traffic may have moved.
//!
//! Namespaces are prefixed `vtnfpol…` (see `common::unique_prefix`). Needs root, iptables-nft,
//! iptables-legacy and nft (Debian's `iptables` and `nftables`).

mod common;

use std::{
    fs,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use common::{Node, Tracer, run};
use serde_json::Value;

/// Felix 3.29 (iptables) for pod2's endpoint: tier `security` with GlobalNetworkPolicy
/// `security.block-udp7000`, tier `default` with NetworkPolicies prod/deny-all (its chain name
/// hashed; ICMP denied) and prod/allow-web (TCP 8080), then the namespace's profile. pod1's
/// endpoint has only its profile (ICMP only). raw: the RPF check; filter: kube-proxy's service
/// portal rejecting a service without endpoints.
fn iptables_rules(cali1: &str, cali2: &str) -> String {
    format!(
        r#"*raw
:PREROUTING ACCEPT [0:0]
:cali-PREROUTING - [0:0]
-A PREROUTING -m comment --comment "cali:6gwbT8clXdHdC1b1" -j cali-PREROUTING
-A cali-PREROUTING -i cali+ -m comment --comment "cali:V6ooGP15glg7wm91" -m rpfilter --validmark --invert -j DROP
COMMIT
*filter
:FORWARD ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:cali-FORWARD - [0:0]
:cali-to-wl-dispatch - [0:0]
:cali-tw-{cali1} - [0:0]
:cali-tw-{cali2} - [0:0]
:cali-pi-_sY4ivbQ3kAu1xz0Je0Y - [0:0]
:cali-pi-_DGlcbEzkd1cvh5X1F7M - [0:0]
:cali-pi-_L2mAr9oRb6TQTIiRvhA - [0:0]
:cali-pri-kns.prod - [0:0]
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "prod/nosvc:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
-A cali-FORWARD -o cali+ -m comment --comment "cali:iBF7oBTpHwn0uQXb" -j cali-to-wl-dispatch
-A cali-FORWARD -m comment --comment "cali:vjrMJCRpqwy5oRoX" -m comment --comment "Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 -j ACCEPT
-A cali-to-wl-dispatch -o {cali1} -m comment --comment "cali:yPDJ0ZaNf2qgHxhx" -g cali-tw-{cali1}
-A cali-to-wl-dispatch -o {cali2} -m comment --comment "cali:Jvy2AGkdgoQcmQBG" -g cali-tw-{cali2}
-A cali-to-wl-dispatch -m comment --comment "cali:cTZQ8tEPrbGWGDl3" -m comment --comment "Unknown interface" -j DROP
{tw}-A cali-pi-_sY4ivbQ3kAu1xz0Je0Y -p udp -m comment --comment "cali:b2lkYnR8N9PSwJbv" -m comment --comment "Policy security.block-udp7000 ingress" -m udp --dport 7000 -j DROP
-A cali-pi-_sY4ivbQ3kAu1xz0Je0Y -m comment --comment "cali:p8mEtpbKXmt0S1ue" -j MARK --set-xmark 0x20000/0x20000
-A cali-pi-_sY4ivbQ3kAu1xz0Je0Y -m comment --comment "cali:ZbmXK2Xvk3Mcj0Vd" -m mark --mark 0x20000/0x20000 -j RETURN
-A cali-pi-_DGlcbEzkd1cvh5X1F7M -p icmp -m comment --comment "cali:hMrCdUcSl8iTlfjm" -m comment --comment "Policy prod/default.deny-all ingress" -j DROP
-A cali-pi-_L2mAr9oRb6TQTIiRvhA -p tcp -m comment --comment "cali:3Rgmt5JvRIiTr8yU" -m comment --comment "Policy prod/default.allow-web ingress" -m tcp --dport 8080 -j MARK --set-xmark 0x10000/0x10000
-A cali-pi-_L2mAr9oRb6TQTIiRvhA -m comment --comment "cali:FUG4klXoWmQ3OIyQ" -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-pri-kns.prod -p icmp -m comment --comment "cali:0fuZ3QQsmxZRcfqR" -m comment --comment "Profile kns.prod ingress" -j MARK --set-xmark 0x10000/0x10000
-A cali-pri-kns.prod -m comment --comment "cali:dfFcKpZCTffLq2Wl" -m mark --mark 0x10000/0x10000 -j RETURN
COMMIT
"#,
        tw = endpoint_chains(endpoint_chain, (cali1, cali2), ["cali-pi-_sY4ivbQ3kAu1xz0Je0Y", "cali-pi-_L2mAr9oRb6TQTIiRvhA"]),
    )
}

/// An endpoint's tiers, each with the policy chains it jumps to in order.
type Tiers<'a> = [(&'a str, &'a [&'a str])];

/// Both pods' endpoint chains, written by `chain` (3.29's or 3.30+'s): pod1's has only its
/// profile; pod2's tier `security` has GlobalNetworkPolicy block-udp7000 (chain `gnp`), tier
/// `default` prod/deny-all (hashed in both) and prod/allow-web (chain `allow_web`).
fn endpoint_chains(
    chain: fn(&str, &Tiers) -> String,
    (cali1, cali2): (&str, &str),
    [gnp, allow_web]: [&str; 2],
) -> String {
    let tiers: [(&str, &[&str]); 2] =
        [("security", &[gnp]), ("default", &["cali-pi-_DGlcbEzkd1cvh5X1F7M", allow_web])];
    chain(cali1, &[]) + &chain(cali2, &tiers)
}

/// `cali-tw-<cali>` as Felix 3.29 writes it: conntrack, then each tier (its policies, "Return
/// if policy accepted", the end-of-tier drop), then the profile and "Drop if no profiles matched".
fn endpoint_chain(cali: &str, tiers: &Tiers) -> String {
    let c = format!("cali-tw-{cali}");
    let mut s = format!(
        "-A {c} -m comment --comment \"cali:Ti5ZgmWbeSu5RZrc\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A {c} -m comment --comment \"cali:5reqxGvwmVtfJmgV\" -m conntrack --ctstate INVALID -j DROP\n\
         -A {c} -m comment --comment \"cali:pm-LK-c1ra31tRwz\" -j MARK --set-xmark 0x0/0x30000\n"
    );
    for (tier, policies) in tiers {
        s += &format!(
            "-A {c} -m comment --comment \"cali:A4IqyOz9tbI4AFCn\" -m comment --comment \"Start of tier {tier}\" -j MARK --set-xmark 0x0/0x20000\n"
        );
        for p in *policies {
            s += &format!("-A {c} -m comment --comment \"cali:kNLbR6J8dQzEfW8e\" -m mark --mark 0x0/0x20000 -j {p}\n");
            s += &format!(
                "-A {c} -m comment --comment \"cali:rQ0Up7jtmhD3Uq6c\" -m comment --comment \"Return if policy accepted\" -m mark --mark 0x10000/0x10000 -j RETURN\n"
            );
        }
        s += &format!(
            "-A {c} -m comment --comment \"cali:Mh4mw5TtIRo2Aie5\" -m comment --comment \"Drop if no policies passed packet\" -m mark --mark 0x0/0x20000 -j DROP\n"
        );
    }
    s += &format!(
        "-A {c} -m comment --comment \"cali:Yh9iQcY6XV3ub1o8\" -j cali-pri-kns.prod\n\
         -A {c} -m comment --comment \"cali:aCPhyrUY0UEJdyGz\" -m comment --comment \"Return if profile accepted\" -m mark --mark 0x10000/0x10000 -j RETURN\n\
         -A {c} -m comment --comment \"cali:L4qbTh6pDVcdeFI3\" -m comment --comment \"Drop if no profiles matched\" -j DROP\n"
    );
    s
}

/// kube-proxy's nftables mode (`ip kube-proxy`): a service without endpoints sent to its
/// `reject-chain` by the `no-endpoint-services` verdict map (kube-proxy's own `reject` has no
/// counter, which would leave it only ever a candidate; here it has one).
const KUBE_PROXY_NFT: &str = r#"table ip kube-proxy {
  comment "rules for kube-proxy"
  map no-endpoint-services {
    type ipv4_addr . inet_proto . inet_service : verdict
    comment "vmap to drop or reject packets to services with no endpoints"
    elements = { 10.96.0.10 . tcp . 80 comment "prod/nosvc:http" : goto reject-chain }
  }
  chain filter-forward {
    type filter hook forward priority -110; policy accept;
    ct state new jump service-endpoints-check
  }
  chain service-endpoints-check {
    ip daddr . meta l4proto . th dport vmap @no-endpoint-services
  }
  chain reject-chain {
    comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
    counter reject
  }
}
"#;

/// Felix 3.30+ (nftables): table `ip calico` with its RPF check in `raw-cali-PREROUTING`, long
/// chain names (`filter-cali-pi-security/security.block-udp7000`), one hashed; a Deny sets the
/// drop mark and the next rule drops on it. The same endpoints, tiers, policies and profile as
/// `iptables_rules`. Beside it, `KUBE_PROXY_NFT`.
fn nft_rules(cali1: &str, cali2: &str) -> String {
    let calico = format!(
        r#"table ip calico {{
  chain raw-PREROUTING {{
    type filter hook prerouting priority raw; policy accept;
    counter jump raw-cali-PREROUTING comment "cali:6gwbT8clXdHdC1b1"
  }}
  chain raw-cali-PREROUTING {{
    iifname "cali*" fib saddr . mark . iif oif 0 counter drop comment "cali:V6ooGP15glg7wm91"
  }}
  chain filter-FORWARD {{
    type filter hook forward priority filter; policy accept;
    oifname "cali*" counter jump filter-cali-to-wl-dispatch comment "cali:iBF7oBTpHwn0uQXb"
  }}
  chain filter-cali-to-wl-dispatch {{
    oifname vmap {{ "{cali1}" : goto filter-cali-tw-{cali1}, "{cali2}" : goto filter-cali-tw-{cali2} }}
  }}
{tw}  chain filter-cali-pi-security/security.block-udp7000 {{
    udp dport 7000 counter meta mark set mark or 0x00040000 comment "cali:b2lkYnR8N9PSwJbv; Policy security.block-udp7000 ingress"
    meta mark & 0x00040000 == 0x00040000 counter drop comment "cali:b2lkYnR8N9PSwJbw"
    counter meta mark set mark or 0x00020000 comment "cali:p8mEtpbKXmt0S1ue"
    meta mark & 0x00020000 == 0x00020000 counter return comment "cali:ZbmXK2Xvk3Mcj0Vd"
  }}
  chain filter-cali-pi-_DGlcbEzkd1cvh5X1F7M {{
    ip protocol icmp counter meta mark set mark or 0x00040000 comment "cali:hMrCdUcSl8iTlfjm; Policy prod/default.deny-all ingress"
    meta mark & 0x00040000 == 0x00040000 counter drop comment "cali:hMrCdUcSl8iTlfjn"
  }}
  chain filter-cali-pi-default/prod/default.allow-web {{
    tcp dport 8080 counter meta mark set mark or 0x00010000 comment "cali:3Rgmt5JvRIiTr8yU; Policy prod/default.allow-web ingress"
    meta mark & 0x00010000 == 0x00010000 counter return comment "cali:FUG4klXoWmQ3OIyQ"
  }}
  chain filter-cali-pri-kns.prod {{
    ip protocol icmp counter meta mark set mark or 0x00010000 comment "cali:0fuZ3QQsmxZRcfqR; Profile kns.prod ingress"
    meta mark & 0x00010000 == 0x00010000 counter return comment "cali:dfFcKpZCTffLq2Wl"
  }}
}}
"#,
        tw = endpoint_chains(
            nft_endpoint_chain,
            (cali1, cali2),
            ["cali-pi-security/security.block-udp7000", "cali-pi-default/prod/default.allow-web"]
        ),
    );
    calico + KUBE_PROXY_NFT
}

/// `filter-cali-tw-<cali>` as Felix 3.30+ writes it: the same rules as 3.29's
/// (`endpoint_chain`), as marks cleared with `and`, the end of a tier naming its tier.
fn nft_endpoint_chain(cali: &str, tiers: &Tiers) -> String {
    let rule = |matches: &str, action: &str, comment: &str| format!("    {matches}counter {action} comment \"cali:{comment}\"\n");
    let (not_passed, accepted) = ("meta mark & 0x00020000 == 0x00000000 ", "meta mark & 0x00010000 == 0x00010000 ");
    let mut s = format!("  chain filter-cali-tw-{cali} {{\n");
    s += &rule("ct state related,established ", "accept", "Ti5ZgmWbeSu5RZrc");
    s += &rule("ct state invalid ", "drop", "5reqxGvwmVtfJmgV");
    s += &rule("", "meta mark set mark and 0xfffcffff", "pm-LK-c1ra31tRwz");
    for (tier, policies) in tiers {
        s += &rule("", "meta mark set mark and 0xfffdffff", &format!("A4IqyOz9tbI4AFCn; Start of tier {tier}"));
        for p in *policies {
            s += &rule(not_passed, &format!("jump filter-{p}"), "kNLbR6J8dQzEfW8e");
            s += &rule(accepted, "return", "rQ0Up7jtmhD3Uq6c; Return if policy accepted");
        }
        let end = format!("Mh4mw5TtIRo2Aie5; End of tier {tier}. Drop if no policies passed packet");
        s += &rule(not_passed, "drop", &end);
    }
    s += &rule("", "jump filter-cali-pri-kns.prod", "Yh9iQcY6XV3ub1o8");
    s += &rule(accepted, "return", "aCPhyrUY0UEJdyGz; Return if profile accepted");
    s += &rule("", "drop", "L4qbTh6pDVcdeFI3; Drop if no profiles matched");
    s + "  }\n"
}

fn load(node: &Node, tool: &str, args: &[&str], text: &str) {
    let path = std::env::temp_dir().join(format!("{}-{tool}-{}", node.prefix, std::process::id()));
    fs::write(&path, text).unwrap();
    run(node.in_node(tool).args(args).arg(&path));
    let _ = fs::remove_file(&path);
}

fn quiet(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

fn ping(node: &Node, pod: &str, args: &[&str]) {
    quiet(node.in_pod(pod, "ping").args(["-c", "3", "-i", "0.2", "-W", "1"]).args(args));
}

/// Sends `n` UDP datagrams from `pod` to `dst`:`port`.
fn udp(node: &Node, pod: &str, dst: &str, port: u16, n: usize) {
    let script = format!("for i in $(seq {n}); do echo x > /dev/udp/{dst}/{port}; sleep 0.05; done");
    quiet(node.in_pod(pod, "bash").args(["-c", &script]));
}

/// A packet counter of an iptables rule (`position` 1-based), as `iptables -L -v -x` shows it.
fn ipt_count(node: &Node, tool: &str, table: &str, chain: &str, position: u64) -> u64 {
    let out = common::stdout(node.in_node(tool).args(["-t", table, "-L", chain, "-v", "-x", "-n", "--line-numbers"]));
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.first()?.parse::<u64>().ok()? == position).then(|| w.get(1)?.parse().ok())?
        })
        .next()
        .unwrap_or_else(|| panic!("no rule {position} in {table} {chain}:\n{out}"))
}

/// The packet counter of a rule vethtrace named in nftables (its table, chain and handle), from
/// `nft -j list chain`.
fn nft_count(node: &Node, rule: &Value) -> u64 {
    let (family, table) = rule["table"].as_str().unwrap().split_once(' ').unwrap();
    let (chain, handle) = (rule["chain"].as_str().unwrap(), rule["handle"].as_u64().unwrap());
    let out = common::stdout(node.in_node("nft").args(["-j", "list", "chain", family, table, chain]));
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .find(|r| r["handle"] == handle)
        .and_then(|r| r["expr"].as_array()?.iter().find_map(|e| e.get("counter")?.get("packets")?.as_u64()))
        .unwrap_or_else(|| panic!("no rule handle {handle} in {chain}:\n{out}"))
}

/// The netfilter drops vethtrace reported since `skip`, for packets to `dst`.
fn drops_to(tracer: &Tracer, skip: usize, dst: &str) -> Vec<Value> {
    tracer.events_so_far()[skip..]
        .iter()
        .filter(|e| e["kind"] == "drop" && e["cause_code"] == "netfilter" && e["dst"] == dst)
        .cloned()
        .collect()
}

/// `tracer` once its first read of the ruleset is in: it comes after the ready line, and a
/// drop before it has no read before it to be compared with.
fn started(tracer: Tracer) -> Tracer {
    let baseline = common::eventually(Duration::from_secs(30), || tracer.stderr().contains(" rules read;"));
    assert!(baseline, "no read of the ruleset: {}", tracer.stderr());
    tracer
}

/// The metrics endpoint, inside the node's own namespace.
const METRICS: &str = "127.0.0.1:9477";

/// `vethtrace policies -o json` in the node (`pod_args`: where pod identity comes from): the
/// ingress line of `c2`, whose `backend` must be `backend`.
fn policies_line(node: &Node, c2: &str, backend: &str, pod_args: &[String]) -> Value {
    let bin = common::vethtrace_bin();
    let none =
        ["--kubelet-pods-dir", "/nonexistent", "--calico-status-dir", "/nonexistent", "--cri-socket", "/nonexistent"];
    let args: Vec<&str> =
        if pod_args.is_empty() { none.to_vec() } else { pod_args.iter().map(String::as_str).collect() };
    let out = common::stdout(node.in_node(&bin).args(["policies", "-o", "json"]).args(args));
    let line: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["iface"] == c2 && v["direction"] == "ingress")
        .unwrap_or_else(|| panic!("no ingress line for {c2}: {out}"));
    assert_eq!(line["backend"], backend, "{line}");
    line
}

/// pod2's ingress as `vethtrace policies` reads it from `backend`: both tiers' policies in
/// order, and its profile.
fn policies_lists_tiers_and_profiles(node: &Node, c2: &str, backend: &str, pod_args: &[String]) -> Value {
    let line = policies_line(node, c2, backend, pod_args);
    assert_eq!(
        line["tiers"],
        serde_json::json!([
            {"tier": "security", "policies": ["GlobalNetworkPolicy security.block-udp7000"]},
            {"tier": "default", "policies": ["NetworkPolicy prod/deny-all", "NetworkPolicy prod/allow-web"]}
        ])
    );
    assert_eq!(line["profiles"], serde_json::json!(["Profile kns.prod"]));
    line
}

/// `vethtrace_policy_drops_total` by policy, judged by promtool: at least the Deny drops named.
fn metrics_count_drops_by_policy(node: &Node, at_least: usize) {
    let (host, port) = METRICS.split_once(':').unwrap();
    let script = format!("exec 3<>/dev/tcp/{host}/{port} && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3");
    let response = common::stdout(node.in_node("bash").args(["-c", &script]));
    let text = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    let series =
        "vethtrace_policy_drops_total{drop=\"deny\",kind=\"NetworkPolicy\",namespace=\"prod\",name=\"deny-all\"}";
    let value: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    assert!(value >= at_least as f64, "{series} = {value}, want >= {at_least}");
    let path = std::env::temp_dir().join(format!("{}-policy-metrics", node.prefix));
    fs::write(&path, &text).unwrap();
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&path).unwrap())
        .output()
        .expect("promtool");
    let _ = fs::remove_file(&path);
    assert!(
        promtool.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
}

/// Waits for the drops of a scenario to reach the output.
fn settle() {
    thread::sleep(Duration::from_millis(700));
}

/// What a scenario's drops must say.
struct Want<'a> {
    table: &'a str,
    chain: &'a str,
    drop: &'a str,
    /// `policy.kind`, `policy.namespace`, `policy.name`, `policy.tier` where the drop has them.
    policy: [Option<&'a str>; 4],
    cause: &'a str,
}

/// Runs `trigger`, then checks every netfilter drop to `dst` against `want`, and against the
/// counter the test reads itself (`counter`, before and after): it moved by at least as many
/// packets as vethtrace named for it. Returns the drops.
fn scenario(
    tracer: &Tracer,
    trigger: impl FnOnce(),
    dst: &str,
    counter: &dyn Fn(&Value) -> u64,
    want: &Want<'_>,
) -> Vec<Value> {
    let skip = tracer.events_so_far().len();
    trigger();
    settle();
    let drops = drops_to(tracer, skip, dst);
    assert!(!drops.is_empty(), "no netfilter drop to {dst}; {}", tracer.stderr());
    eprintln!("{} drops, the first: {}", drops.len(), drops[0]);
    let mut named = 0;
    for d in &drops {
        let rule = &d["rule"];
        assert_eq!((rule["table"].as_str(), rule["chain"].as_str()), (Some(want.table), Some(want.chain)), "{d:#}");
        let p = &d["policy"];
        assert_eq!(p["drop"], want.drop, "{d:#}");
        for (key, v) in ["kind", "namespace", "name", "tier"].iter().zip(want.policy) {
            assert_eq!(p[key].as_str(), v, "policy.{key}: {d:#}");
        }
        let cause = d["cause"].as_str().unwrap();
        assert!(cause.contains(want.cause), "cause {cause:?} lacks {:?}", want.cause);
        named += 1;
    }
    // The oracle: the named rule's own counter, which the test reads now (it moved during the
    // scenario by at least the drops named, and never ran backwards).
    let now = counter(&drops[0]["rule"]);
    assert!(now >= named, "the kernel counted {now} packets on the named rule, vethtrace named {named} drops");
    drops
}

fn ipt_counter<'a>(node: &'a Node, tool: &'a str, table: &'a str) -> impl Fn(&Value) -> u64 + 'a {
    move |rule: &Value| {
        ipt_count(node, tool, table, rule["chain"].as_str().unwrap(), rule["position"].as_u64().unwrap())
    }
}

/// Felix 3.29's rules through iptables-nft: explicit Deny, end of tier, a GlobalNetworkPolicy
/// in another tier, no profile, the RPF check, kube-proxy; healthy traffic gives no drop; a
/// hashed chain is named from its first rule's comment; two drops at once are named right or
/// marked ambiguous; a rule rewritten while tracing gives no wrong name.
#[test]
fn iptables_nft_drops_name_their_calico_policy() {
    let node = Node::up("nfpol");
    let (c1, c2) = (node.cali("pod1"), node.cali("pod2"));
    load(&node, "iptables-nft-restore", &[], &iptables_rules(&c1, &c2));
    let tracer = started(Tracer::start(&node, &["--drops", "--metrics", METRICS]));
    let filter = ipt_counter(&node, "iptables-nft", "filter");
    policies_lists_tiers_and_profiles(&node, &c2, "iptables-nft", &[]);

    // Healthy: pod2 pings pod1 (its profile allows ICMP; the replies are established).
    let skip = tracer.events_so_far().len();
    ping(&node, "pod2", &["10.244.1.5"]);
    settle();
    assert!(drops_to(&tracer, skip, "10.244.1.5").is_empty() && drops_to(&tracer, skip, "10.244.1.6").is_empty());

    let deny = deny_and_end_of_tier(&node, &tracer, "ip filter", "", (&c2, &c2), &filter);
    assert_eq!(deny[0]["rule"]["position"], 1);

    gnp_and_no_profile(&node, &tracer, ("ip filter", ""), "cali-pi-_sY4ivbQ3kAu1xz0Je0Y", &c1, &filter);
    spoofed_source_is_rpf(&node, &tracer, ("ip raw", "cali-PREROUTING"), &ipt_counter(&node, "iptables-nft", "raw"));
    kube_proxy_rejects(&node, &tracer, ("ip filter", "KUBE-SERVICES"), &filter);
    ipv6_deny_is_named_in_ip6_filter(&node, &tracer, &c2);
    at_once_named_right_or_ambiguous(&node, &tracer, &c1);
    metrics_count_drops_by_policy(&node, deny.len());
    rewritten_rule_gives_no_wrong_name(&node, &tracer);
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
}

/// A spoofed source: pod1 sends from an address that is not routed back to its cali; Calico's
/// RPF check in raw `cali-PREROUTING` (`table`, `chain`) drops it.
fn spoofed_source_is_rpf(node: &Node, tracer: &Tracer, (table, chain): (&str, &str), counter: &dyn Fn(&Value) -> u64) {
    run(node.in_pod("pod1", "ip").args(["addr", "add", "10.244.1.77/32", "dev", "eth0"]));
    let want = Want { table, chain, drop: "rpf", policy: [None; 4], cause: "dropped by Calico's RPF check" };
    let spoof = || ping(node, "pod1", &["-I", "10.244.1.77", "10.99.0.2"]);
    scenario(tracer, spoof, "10.99.0.2", counter, &want);
}

/// pod1's datagrams to port 7000 of pod2 denied by GlobalNetworkPolicy security.block-udp7000
/// in tier security (its chain `gnp`); pod2's datagrams to pod1, whose endpoint has only its
/// profile (ICMP only), dropped as no profile matched. `prefix`: as in `deny_and_end_of_tier`.
fn gnp_and_no_profile(
    node: &Node,
    tracer: &Tracer,
    (table, prefix): (&str, &str),
    gnp: &str,
    c1: &str,
    counter: &dyn Fn(&Value) -> u64,
) {
    let want = Want {
        table,
        chain: &format!("{prefix}{gnp}"),
        drop: "deny",
        policy: [Some("GlobalNetworkPolicy"), None, Some("security.block-udp7000"), Some("security")],
        cause: "dropped by GlobalNetworkPolicy security.block-udp7000 (ingress to",
    };
    scenario(tracer, || udp(node, "pod1", "10.244.1.6", 7000, 3), "10.244.1.6", counter, &want);
    let want = Want {
        table,
        chain: &format!("{prefix}cali-tw-{c1}"),
        drop: "no_profile",
        policy: [None; 4],
        cause: &format!("dropped by Calico: no profile matched (ingress to {c1})"),
    };
    let drops = scenario(tracer, || udp(node, "pod2", "10.244.1.5", 9999, 3), "10.244.1.5", counter, &want);
    assert_eq!(drops[0]["policy"]["tried"], serde_json::json!(["Profile kns.prod"]), "{:#}", drops[0]);
}

/// pod1 connects to a service without endpoints: kube-proxy's rule (`table`, `chain`) rejects it.
fn kube_proxy_rejects(node: &Node, tracer: &Tracer, (table, chain): (&str, &str), counter: &dyn Fn(&Value) -> u64) {
    let cause = format!("dropped by kube-proxy's rule {table} {chain}");
    let want = Want { table, chain, drop: "kube_proxy", policy: [None; 4], cause: &cause };
    let connect = || quiet(node.in_pod("pod1", "timeout").args(["2", "bash", "-c", "echo > /dev/tcp/10.96.0.10/80"]));
    scenario(tracer, connect, "10.96.0.10", counter, &want);
}

/// Both backends' core: pod1's pings to pod2 denied by prod/deny-all (its chain name hashed:
/// named from the first rule's comment), its datagrams dropped at the end of tier default
/// after both policies were tried. `prefix` is nftables mode's table prefix of chain names.
/// Returns the Deny drops.
fn deny_and_end_of_tier(
    node: &Node,
    tracer: &Tracer,
    table: &str,
    prefix: &str,
    (c2, pod2): (&str, &str),
    counter: &dyn Fn(&Value) -> u64,
) -> Vec<Value> {
    let want = Want {
        table,
        chain: &format!("{prefix}cali-pi-_DGlcbEzkd1cvh5X1F7M"),
        drop: "deny",
        policy: [Some("NetworkPolicy"), Some("prod"), Some("deny-all"), Some("default")],
        cause: &format!("dropped by NetworkPolicy prod/deny-all (ingress to {pod2})"),
    };
    let deny = scenario(tracer, || ping(node, "pod1", &["10.244.1.6"]), "10.244.1.6", counter, &want);
    assert_eq!(deny[0]["policy"]["endpoint"], pod2);
    let want = Want {
        table,
        chain: &format!("{prefix}cali-tw-{c2}"),
        drop: "end_of_tier",
        policy: [None, None, None, Some("default")],
        cause: "dropped at the end of tier default: no policy passed it",
    };
    let eot = scenario(tracer, || udp(node, "pod1", "10.244.1.6", 9999, 3), "10.244.1.6", counter, &want);
    assert_eq!(
        eot[0]["policy"]["tried"],
        serde_json::json!(["NetworkPolicy prod/deny-all", "NetworkPolicy prod/allow-web"])
    );
    deny
}

/// IPv6: ip6tables-nft rules of the same shape (Felix writes each family apart) deny pod1's
/// ICMPv6 echo requests to pod2; the drop names `ip6 filter`, never the IPv4 tables' rules.
fn ipv6_deny_is_named_in_ip6_filter(node: &Node, tracer: &Tracer, c2: &str) {
    let rules = format!(
        r#"*filter
:FORWARD ACCEPT [0:0]
:cali-tw-{c2} - [0:0]
:cali-pi-_DGlcbEzkd1cvh5X1F7M - [0:0]
-A FORWARD -o {c2} -m comment --comment "cali:Jvy2AGkdgoQcmQBG" -j cali-tw-{c2}
-A cali-tw-{c2} -m comment --comment "cali:Ti5ZgmWbeSu5RZrc" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-tw-{c2} -m comment --comment "cali:kNLbR6J8dQzEfW8e" -j cali-pi-_DGlcbEzkd1cvh5X1F7M
-A cali-pi-_DGlcbEzkd1cvh5X1F7M -p ipv6-icmp -m comment --comment "cali:hMrCdUcSl8iTlfjm" -m comment --comment "Policy prod/default.deny-all ingress" -m icmp6 --icmpv6-type 128 -j DROP
COMMIT
"#
    );
    load(node, "ip6tables-nft-restore", &[], &rules);
    let want = Want {
        table: "ip6 filter",
        chain: "cali-pi-_DGlcbEzkd1cvh5X1F7M",
        drop: "deny",
        policy: [Some("NetworkPolicy"), Some("prod"), Some("deny-all"), Some("default")],
        cause: &format!("dropped by NetworkPolicy prod/deny-all (ingress to {c2})"),
    };
    let counter = |rule: &Value| {
        let out = common::stdout(node.in_node("ip6tables-nft").args([
            "-L",
            rule["chain"].as_str().unwrap(),
            "-v",
            "-x",
            "-n",
        ]));
        out.lines().filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok()).sum()
    };
    scenario(tracer, || ping(node, "pod1", &["fd00:244::6"]), "fd00:244::6", &counter, &want);
}

/// Two policies dropping in the same instant (pod1's pings to pod2, pod2's datagrams to pod1,
/// both sent together): each drop names its own rule, or is marked ambiguous with both
/// candidates — never the other's.
fn at_once_named_right_or_ambiguous(node: &Node, tracer: &Tracer, c1: &str) {
    let skip = tracer.events_so_far().len();
    thread::scope(|s| {
        s.spawn(|| quiet(node.in_pod("pod1", "ping").args(["-c", "20", "-i", "0.01", "-W", "1", "10.244.1.6"])));
        s.spawn(|| udp(node, "pod2", "10.244.1.5", 9999, 20));
    });
    settle();
    let (icmp, udp) = (drops_to(tracer, skip, "10.244.1.6"), drops_to(tracer, skip, "10.244.1.5"));
    assert!(!icmp.is_empty() && !udp.is_empty(), "{icmp:#?} {udp:#?}");
    let ambiguous = icmp.iter().chain(&udp).filter(|d| d.get("rule").is_none()).count();
    eprintln!("at once: {} ICMP and {} UDP drops, {ambiguous} marked ambiguous", icmp.len(), udp.len());
    for (drops, chain) in [(&icmp, "cali-pi-_DGlcbEzkd1cvh5X1F7M".to_owned()), (&udp, format!("cali-tw-{c1}"))] {
        for d in drops {
            match d.get("rule") {
                Some(rule) => assert_eq!(rule["chain"], chain.as_str(), "a wrong name: {d:#}"),
                None => {
                    let c =
                        d["rule_candidates"].as_array().unwrap_or_else(|| panic!("neither rule nor candidates: {d:#}"));
                    assert!(
                        c.iter().any(|r| r["chain"] == chain.as_str()),
                        "the dropping rule is not a candidate: {d:#}"
                    );
                    assert!(d["cause"].as_str().unwrap().contains("could not tell which rule"), "{d:#}");
                }
            }
        }
    }
}

/// The Deny rule replaced by the same rule while tracing (its counter starts again at 0):
/// drops name deny-all or say they cannot tell, never another rule.
fn rewritten_rule_gives_no_wrong_name(node: &Node, tracer: &Tracer) {
    let chain = "cali-pi-_DGlcbEzkd1cvh5X1F7M";
    let spec = [
        "-p",
        "icmp",
        "-m",
        "comment",
        "--comment",
        "cali:hMrCdUcSl8iTlfjm",
        "-m",
        "comment",
        "--comment",
        "Policy prod/default.deny-all ingress",
        "-j",
        "DROP",
    ];
    let before = ipt_count(node, "iptables-nft", "filter", chain, 1);
    run(node.in_node("iptables-nft").args(["-R", chain, "1"]).args(spec));
    assert!(ipt_count(node, "iptables-nft", "filter", chain, 1) < before, "the rewrite reset the counter");
    let skip = tracer.events_so_far().len();
    ping(node, "pod1", &["10.244.1.6"]);
    settle();
    let drops = drops_to(tracer, skip, "10.244.1.6");
    assert!(!drops.is_empty());
    eprintln!("after the rewrite: {}", drops.iter().map(|d| d["cause"].to_string()).collect::<Vec<_>>().join("\n"));
    for d in &drops {
        if let Some(rule) = d.get("rule") {
            assert_eq!(rule["chain"], chain, "a wrong name after the rewrite: {d:#}");
        }
    }
}

/// The same 3.29 rules in iptables-legacy's own tables (no change announcements: a rewrite is
/// told only by a counter going down): explicit Deny, end of tier, a GlobalNetworkPolicy in
/// another tier, no profile, the RPF check and kube-proxy are named alike.
#[test]
fn iptables_legacy_drops_name_their_calico_policy() {
    let node = Node::up("nfpolleg");
    let (c1, c2) = (node.cali("pod1"), node.cali("pod2"));
    load(&node, "iptables-legacy-restore", &[], &iptables_rules(&c1, &c2));
    let tracer = started(Tracer::start(&node, &["--drops"]));
    let filter = ipt_counter(&node, "iptables-legacy", "filter");
    policies_lists_tiers_and_profiles(&node, &c2, "iptables-legacy", &[]);
    let deny = deny_and_end_of_tier(&node, &tracer, "ip filter", "", (&c2, &c2), &filter);
    assert_eq!(deny[0]["rule"]["backend"], "iptables-legacy");
    gnp_and_no_profile(&node, &tracer, ("ip filter", ""), "cali-pi-_sY4ivbQ3kAu1xz0Je0Y", &c1, &filter);
    spoofed_source_is_rpf(&node, &tracer, ("ip raw", "cali-PREROUTING"), &ipt_counter(&node, "iptables-legacy", "raw"));
    kube_proxy_rejects(&node, &tracer, ("ip filter", "KUBE-SERVICES"), &filter);
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
}

/// Someone else's drop rule without a counter (as tracer/tests/drops.rs plants): nothing can
/// tell whether it moved, so it is a candidate and the drop says it cannot tell — the plain
/// "dropped by a netfilter rule" stays in the cause.
fn uncounted_rule_is_only_a_candidate(node: &Node, tracer: &Tracer) {
    let rules = "table inet vtother {\n  chain vtfwd {\n    type filter hook forward priority 10;\n    udp dport 5555 drop comment \"no counter\"\n  }\n}\n";
    load(node, "nft", &["-f"], rules);
    let skip = tracer.events_so_far().len();
    udp(node, "pod1", "10.244.1.6", 5555, 2);
    settle();
    let drops = drops_to(tracer, skip, "10.244.1.6");
    assert!(!drops.is_empty());
    for d in &drops {
        assert!(d.get("rule").is_none(), "an uncounted rule named: {d:#}");
        let c = d["rule_candidates"].as_array().unwrap_or_else(|| panic!("no candidates: {d:#}"));
        assert!(
            c.iter().any(|r| r["table"] == "inet vtother" && r["chain"] == "vtfwd" && r["comment"] == "no counter"),
            "{d:#}"
        );
        let cause = d["cause"].as_str().unwrap();
        assert!(cause.starts_with("dropped by a netfilter rule; could not tell which rule"), "{cause}");
    }
}

/// Felix's endpoint-status file naming `cali` pod prod/api-7f9c5 (10.244.1.6), in a scratch
/// directory; the flags that point vethtrace at it and the other pod sources at nothing.
fn pod_status(cali: &str) -> (std::path::PathBuf, Vec<String>) {
    let tmp = common::scratch_dir("nfpolst");
    let status = tmp.join("endpoint-status");
    fs::create_dir(&status).unwrap();
    let json = format!(r#"{{"ifaceName":"{cali}","mac":"ee:ee:ee:ee:ee:ee","ipv4Nets":["10.244.1.6/32"]}}"#);
    fs::write(status.join("k8s prod%2Fapi-7f9c5 eth0"), json).unwrap();
    let flags = [
        ("--calico-status-dir", status),
        ("--cri-socket", tmp.join("none.sock")),
        ("--kubelet-pods-dir", tmp.join("none")),
    ];
    (tmp.clone(), flags.iter().flat_map(|(f, p)| [(*f).to_owned(), p.display().to_string()]).collect())
}

/// Felix 3.30+'s nftables table: a Deny in a hashed policy chain (mark, then drop on the mark),
/// the end of the tier, a GlobalNetworkPolicy in another tier (a long chain name), no profile,
/// the RPF check, and kube-proxy's nftables table; allowed TCP gives no drop.
#[test]
fn nftables_drops_name_their_calico_policy() {
    let node = Node::up("nfpolnft");
    let (c1, c2) = (node.cali("pod1"), node.cali("pod2"));
    load(&node, "nft", &["-f"], &nft_rules(&c1, &c2));
    // pod2 is prod/api-7f9c5 to Felix's endpoint-status files: the drops name the pod.
    let (scratch, pods) = pod_status(&c2);
    let mut args = vec!["--drops"];
    args.extend(pods.iter().map(String::as_str));
    let tracer = started(Tracer::start(&node, &args));
    let counter = |rule: &Value| nft_count(&node, rule);
    // `vethtrace policies` reads the nftables table too (hashed and long chain names), and
    // names the pod.
    let line = policies_lists_tiers_and_profiles(&node, &c2, "nftables", &pods);
    assert_eq!(line["pod"], "prod/api-7f9c5");

    let skip = tracer.events_so_far().len();
    quiet(node.in_pod("pod1", "timeout").args(["2", "bash", "-c", "echo > /dev/tcp/10.244.1.6/8080"]));
    settle();
    assert!(drops_to(&tracer, skip, "10.244.1.6").is_empty(), "allowed TCP was dropped");

    let deny = deny_and_end_of_tier(&node, &tracer, "ip calico", "filter-", (&c2, "prod/api-7f9c5"), &counter);
    assert_eq!(deny[0]["rule"]["comment"], "cali:hMrCdUcSl8iTlfjn");
    assert_eq!(deny[0]["rule"]["backend"], "nftables");
    let gnp = "cali-pi-security/security.block-udp7000";
    gnp_and_no_profile(&node, &tracer, ("ip calico", "filter-"), gnp, &c1, &counter);
    spoofed_source_is_rpf(&node, &tracer, ("ip calico", "raw-cali-PREROUTING"), &counter);
    kube_proxy_rejects(&node, &tracer, ("ip kube-proxy", "reject-chain"), &counter);
    uncounted_rule_is_only_a_candidate(&node, &tracer);
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let _ = fs::remove_dir_all(scratch);
}

/// A storm of denied packets (a ping flood) is named with a few reads, not one per drop: reads
/// are at least 100 ms apart and one serves every drop that happened before it began. Every drop names deny-all or says
/// it cannot tell; none names another rule.
#[test]
fn a_drop_storm_costs_a_few_reads() {
    let node = Node::up("nfpolstorm");
    let (c1, c2) = (node.cali("pod1"), node.cali("pod2"));
    load(&node, "nft", &["-f"], &nft_rules(&c1, &c2));
    let tracer = started(Tracer::start_wrapped(&node, &["env", "RUST_LOG=tracer=debug"], &["--drops", "-o", "json"]));
    quiet(node.in_pod("pod1", "ping").args(["-f", "-i", "0.002", "-c", "1000", "-W", "1", "10.244.1.6"]));
    settle();
    let stdout = tracer.stdout();
    let finished = tracer.stop();
    let drops: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "drop" && e["cause_code"] == "netfilter" && e["dst"] == "10.244.1.6")
        .collect();
    let reads = finished.stderr.matches("netfilter ruleset read in").count();
    let named = drops.iter().filter(|d| d.get("rule").is_some()).count();
    eprintln!("{} drops ({named} named) with {reads} reads", drops.len());
    assert!(drops.len() >= 900, "the flood's drops: {}\n{}", drops.len(), finished.stderr);
    // At most ten reads a second (READ_GAP), and far fewer reads than drops.
    let ts = |d: &Value| d["ts_ns"].as_u64().unwrap();
    let secs = (ts(drops.last().unwrap()) - ts(&drops[0])) as f64 / 1e9;
    assert!(reads as f64 <= secs * 10.0 + 3.0, "{reads} reads in {secs:.1} s of drops");
    assert!(reads * 5 <= drops.len(), "{reads} reads for {} drops", drops.len());
    for d in &drops {
        if let Some(rule) = d.get("rule") {
            assert_eq!(rule["chain"], "filter-cali-pi-_DGlcbEzkd1cvh5X1F7M", "a wrong name: {d:#}");
        }
    }
}

/// `n` counted drop rules in chains no hook runs (`table ip vtbig`): they cost nothing per
/// packet, but every read of the ruleset lists and compares them — thousands make a read take
/// longer than the 100 ms between reads.
fn big_table(n: usize) -> String {
    let mut s = String::from("table ip vtbig {\n");
    for c in 0..n.div_ceil(100) {
        s += &format!("  chain filler{c} {{\n");
        for r in 0..100.min(n - c * 100) {
            s += &format!(
                "    ip daddr 192.0.2.{} tcp dport {} counter drop comment \"filler {c}/{r}\"\n",
                r % 250 + 1,
                1000 + c
            );
        }
        s += "  }\n";
    }
    s + "}\n"
}

/// The lines of a file as they arrive, each with when the test saw it (since the epoch).
struct Arrivals {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: thread::JoinHandle<Vec<(Duration, String)>>,
}

impl Arrivals {
    fn follow(path: &std::path::Path) -> Self {
        use std::{io::Read as _, sync::atomic::Ordering};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (path, stopping) = (path.to_owned(), stop.clone());
        let reader = thread::spawn(move || {
            let (mut file, mut buf, mut at, mut lines) = (None, Vec::new(), 0, Vec::new());
            loop {
                let last = stopping.load(Ordering::Relaxed);
                if file.is_none() {
                    file = fs::File::open(&path).ok();
                }
                if let Some(f) = &mut file {
                    f.read_to_end(&mut buf).unwrap();
                }
                let now = common::now();
                while let Some(n) = buf[at..].iter().position(|&b| b == b'\n') {
                    lines.push((now, String::from_utf8_lossy(&buf[at..at + n]).into_owned()));
                    at += n + 1;
                }
                if last {
                    return lines;
                }
                thread::sleep(Duration::from_millis(2));
            }
        });
        Self { stop, reader }
    }

    /// Every line seen, once the writer is done.
    fn stop(self) -> Vec<(Duration, Value)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let lines = self.reader.join().unwrap();
        lines.into_iter().filter_map(|(at, l)| Some((at, serde_json::from_str(&l).ok()?))).collect()
    }
}

/// Reads of a large ruleset (8000 rules: each read takes longer than the gap between reads) run
/// off the event loop: under a storm of denied pings (pod1 to pod2), the packet events of
/// pings between pod1 and pod3 keep arriving while reads run — none waits as long as a read —
/// and the trace, stopped in the middle of the storm, writes every netfilter drop it saw,
/// named by rule (or counted as written without it), the ones still held at the stop named
/// with a last read.
#[test]
fn reads_leave_the_event_loop() {
    let node = Node::up("nfpolbig");
    node.add_pod("pod3", "10.244.1.7", "fd00:244::7");
    let (c1, c2) = (node.cali("pod1"), node.cali("pod2"));
    load(&node, "nft", &["-f"], &(nft_rules(&c1, &c2) + &big_table(8000)));
    let scratch = common::scratch_dir("nfpolbig");
    let path = scratch.join("events.json");
    let args = ["--output", "json", "--output-file", path.to_str().unwrap()];
    let tracer = started(Tracer::start_wrapped(&node, &["env", "RUST_LOG=warn,tracer=debug,vethtrace=info"], &args));
    let arrivals = Arrivals::follow(&path);
    let finished = thread::scope(|s| {
        s.spawn(|| quiet(node.in_pod("pod1", "ping").args(["-c", "400", "-i", "0.01", "-W", "1", "10.244.1.7"])));
        // Three floods: ping sends 100 a second without replies.
        for _ in 0..3 {
            s.spawn(|| quiet(node.in_pod("pod1", "ping").args(["-f", "-c", "1000", "-W", "1", "10.244.1.6"])));
        }
        // Stopped in the middle of both: netfilter drops are held for the read after them.
        thread::sleep(Duration::from_secs(3));
        tracer.stop()
    });
    assert!(finished.status.success(), "{}", finished.stderr);
    let lines = arrivals.stop();
    let _ = fs::remove_dir_all(&scratch);
    let stderr = &finished.stderr;

    // Reads took longer than the gap between them, else this test shows nothing.
    let mut reads: Vec<u64> = stderr
        .lines()
        .filter_map(|l| l.split("netfilter ruleset read in ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    reads.sort_unstable();
    eprintln!("{} reads, µs: {reads:?}", reads.len());
    assert!(reads.len() >= 4, "{stderr}");
    let typical_read = Duration::from_micros(reads[reads.len() / 2]);
    assert!(typical_read > Duration::from_millis(100), "reads of {typical_read:?}: the ruleset is too small to tell");

    // The pings between pod1 and pod3 arrive at the writer while reads run: none waits as long
    // as a read.
    let pod3 = |e: &Value| e["kind"] == "packet" && (e["dst"] == "10.244.1.7" || e["src"] == "10.244.1.7");
    let mut waits: Vec<Duration> =
        lines.iter().filter(|(_, e)| pod3(e)).map(|(at, e)| at.saturating_sub(common::event_time(e))).collect();
    waits.sort_unstable();
    assert!(waits.len() >= 200, "{} packet events of the pings to pod3\n{stderr}", waits.len());
    let worst = *waits.last().unwrap();
    eprintln!(
        "{} ping events, waits: median {:?}, 99% {:?}, worst {worst:?}; typical read {typical_read:?}",
        waits.len(),
        waits[waits.len() / 2],
        waits[waits.len() * 99 / 100]
    );
    assert!(worst < typical_read / 2, "a packet event waited {worst:?}, reads take {typical_read:?}");

    // Every netfilter drop of the storm is written: as many as the echo requests TC saw go to
    // pod2 (the last one or two may miss their drop at the stop), named by the Deny or
    // counted as written without their rule.
    let to_pod2 = |e: &Value| e["dst"] == "10.244.1.6" && e["icmp_type"] == 8;
    let seen = lines.iter().filter(|(_, e)| e["kind"] == "packet" && to_pod2(e)).count();
    let drops: Vec<&Value> =
        lines.iter().map(|(_, e)| e).filter(|e| e["kind"] == "drop" && e["cause_code"] == "netfilter").collect();
    // `vethtrace: N events, N lost, …` and `vethtrace: N netfilter drops written without their rule: …`.
    let count = |what: &str| -> Option<usize> {
        stderr.lines().find(|l| l.contains(what))?.strip_prefix("vethtrace: ")?.split(' ').next()?.parse().ok()
    };
    assert_eq!(stderr.lines().find(|l| l.contains(" events, ")).and_then(|l| l.split(", ").nth(1)), Some("0 lost"), "{stderr}");
    assert!(drops.len() + 3 >= seen && drops.len() <= seen, "{} drops of {seen} echo requests\n{stderr}", drops.len());
    let not_held = count(" netfilter drops written without their rule").unwrap_or(0);
    let named = drops.iter().filter(|d| d["rule"]["chain"] == "filter-cali-pi-_DGlcbEzkd1cvh5X1F7M").count();
    eprintln!("{} netfilter drops of {seen} requests: {named} named, {not_held} without their rule", drops.len());
    assert_eq!(named + not_held, drops.len(), "{:#?}", drops.iter().find(|d| d["rule"].is_null()));
    assert!(stderr.contains("held at exit"), "nothing was held at the stop: {stderr}");
}
