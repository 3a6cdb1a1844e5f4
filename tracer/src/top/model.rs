//! What `vethtrace top` shows, apart from how it is drawn: one [`Row`] per traced interface
//! (rates from the kernel's counts, the ring's tallies, the node's state), the [`Header`], the
//! columns with their cells, and what the keys change ([`ViewState`]: sort, filter,
//! selection, detail pane). The terminal view ([`super::view`]) and the plain table
//! ([`plain_table`]) both draw from here.

use std::{
    cmp::Ordering,
    fmt::Write as _,
    net::IpAddr,
    time::{Duration, Instant},
};

use tracer_common::traffic::Traffic;

use crate::pipeline::tally::{IfaceTally, RecentDrop};

/// Per second, by direction as the host sees the cali (index 0 ingress: from the pod; 1
/// egress: to the pod).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Rates {
    pub packets: [f64; 2],
    pub bytes: [f64; 2],
}

impl Rates {
    /// What the counts gained between `before` and `now`, over `secs`. A count that went back
    /// (its entry made anew) counts from zero.
    pub(crate) fn between(before: &Traffic, now: &Traffic, secs: f64) -> Self {
        let per_s = |n: u64, b: u64| if secs > 0.0 { n.checked_sub(b).unwrap_or(n) as f64 / secs } else { 0.0 };
        Self {
            packets: [per_s(now.packets[0], before.packets[0]), per_s(now.packets[1], before.packets[1])],
            bytes: [per_s(now.bytes[0], before.bytes[0]), per_s(now.bytes[1], before.bytes[1])],
        }
    }

    fn add(&mut self, other: &Self) {
        for d in 0..2 {
            self.packets[d] += other.packets[d];
            self.bytes[d] += other.bytes[d];
        }
    }

    fn moved(&self) -> bool {
        self.packets.iter().any(|p| *p > 0.0)
    }
}

/// One traced interface, as shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub ifindex: u32,
    pub iface: String,
    /// `namespace/name`; `None` when no source knows the pod.
    pub pod: Option<String>,
    pub ips: Vec<IpAddr>,
    pub rates: Rates,
    pub drops_per_s: f64,
    /// The reason seen most often on this interface since the last refresh, and how often
    /// (else the newest drop's, 0 times).
    pub top_reason: Option<(String, u64)>,
    /// The node's neighbour entry for the pod's (first) address on this interface.
    pub neigh: &'static str,
    pub arp_answered: u64,
    pub arp_unanswered: u64,
    /// Since the last packet counted or event seen.
    pub idle: Option<Duration>,
    /// For the detail pane: the newest drops last, the routes through the interface.
    pub recent: Vec<RecentDrop>,
    pub routes: Vec<String>,
}

impl Row {
    /// The tally's share of the row; `drops_before`, `reasons_before`: its counts at the last
    /// refresh, `secs` ago.
    pub(crate) fn take_tally(&mut self, t: &IfaceTally, drops_before: u64, reasons_before: &[(String, u64)], secs: f64) {
        self.drops_per_s = if secs > 0.0 { t.drops.saturating_sub(drops_before) as f64 / secs } else { 0.0 };
        self.top_reason = t.top_reason_since(reasons_before).map(|(r, n)| (r.to_owned(), n));
        self.arp_answered = t.arp_answered;
        self.arp_unanswered = t.arp_unanswered;
        self.recent = t.recent.iter().cloned().collect();
    }

    /// The idle time at `now`, from the last counted packet or event.
    pub(crate) fn set_idle(&mut self, now: Instant, last: Option<Instant>) {
        self.idle = if self.rates.moved() { Some(Duration::ZERO) } else { last.map(|l| now.saturating_duration_since(l)) };
    }

    fn pod_or_dash(&self) -> &str {
        self.pod.as_deref().unwrap_or("-")
    }
}

/// The header: node totals and how vethtrace runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    pub totals: Rates,
    pub drops_per_s: f64,
    pub traced: usize,
    /// Ring records the kernel could not deliver, since the start.
    pub lost: u64,
    /// ARP/neighbour probe mode, or `off`.
    pub probe: String,
    /// `tcx` or `clsact`.
    pub tc: String,
    /// `uname -r`.
    pub kernel: String,
}

impl Header {
    pub(crate) fn sum(&mut self, rows: &[Row]) {
        self.totals = Rates::default();
        self.drops_per_s = 0.0;
        for r in rows {
            self.totals.add(&r.rates);
            self.drops_per_s += r.drops_per_s;
        }
        self.traced = rows.len();
    }

    /// The node's totals: `3 traced  in 1.23k pk/s 4.56MB/s  out … drops 0/s`.
    pub(crate) fn totals(&self) -> String {
        let t = &self.totals;
        format!(
            "{} traced  in {} pk/s {}B/s  out {} pk/s {}B/s  drops {}/s",
            self.traced,
            si(t.packets[0]),
            si(t.bytes[0]),
            si(t.packets[1]),
            si(t.bytes[1]),
            si(self.drops_per_s),
        )
    }

    /// How vethtrace runs: `lost 0  probe tracepoint  tc tcx  kernel 6.18.44`.
    pub(crate) fn about(&self) -> String {
        format!("lost {}  probe {}  tc {}  kernel {}", self.lost, self.probe, self.tc, self.kernel)
    }
}

/// A column of the table, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Pod,
    Iface,
    Ips,
    PktsIn,
    PktsOut,
    BytesIn,
    BytesOut,
    Drops,
    Neigh,
    Arp,
    Idle,
}

impl Column {
    pub(crate) const ALL: [Self; 11] = [
        Self::Pod,
        Self::Iface,
        Self::Ips,
        Self::PktsIn,
        Self::PktsOut,
        Self::BytesIn,
        Self::BytesOut,
        Self::Drops,
        Self::Neigh,
        Self::Arp,
        Self::Idle,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Pod => "POD",
            Self::Iface => "IFACE",
            Self::Ips => "IPS",
            Self::PktsIn => "IN PK/S",
            Self::PktsOut => "OUT PK/S",
            Self::BytesIn => "IN B/S",
            Self::BytesOut => "OUT B/S",
            Self::Drops => "DROPS/S TOP CAUSE",
            Self::Neigh => "NEIGH",
            Self::Arp => "ARP OK/NO",
            Self::Idle => "IDLE",
        }
    }

    /// The width the terminal view gives the column (the pod and drop columns take what is left).
    pub(crate) fn width(self) -> u16 {
        match self {
            Self::Pod => 18,
            Self::Iface => 15,
            Self::Ips => 15,
            Self::PktsIn | Self::PktsOut | Self::BytesIn | Self::BytesOut => 8,
            Self::Drops => 22,
            Self::Neigh => 10,
            Self::Arp => 9,
            Self::Idle => 5,
        }
    }

    /// Which columns go first when the terminal is narrow: the lower, the longer kept.
    fn priority(self) -> u8 {
        match self {
            Self::Pod | Self::Drops => 0,
            Self::PktsIn | Self::PktsOut => 1,
            Self::Iface => 2,
            Self::BytesIn | Self::BytesOut => 3,
            Self::Neigh => 4,
            Self::Arp => 5,
            Self::Idle => 6,
            Self::Ips => 7,
        }
    }

    /// The columns that fit in `width` cells (one space between columns), in table order.
    pub(crate) fn fitting(width: u16) -> Vec<Self> {
        let mut by_priority = Self::ALL.to_vec();
        by_priority.sort_by_key(|c| c.priority());
        let mut used = 0u16;
        let mut kept = Vec::new();
        for c in by_priority {
            let need = c.width() + u16::from(!kept.is_empty());
            if used + need <= width || kept.is_empty() {
                used += need;
                kept.push(c);
            }
        }
        Self::ALL.into_iter().filter(|c| kept.contains(c)).collect()
    }

    pub(crate) fn cell(self, r: &Row) -> String {
        match self {
            Self::Pod => r.pod_or_dash().to_owned(),
            Self::Iface => r.iface.clone(),
            Self::Ips => r.ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            Self::PktsIn => si(r.rates.packets[0]),
            Self::PktsOut => si(r.rates.packets[1]),
            Self::BytesIn => si(r.rates.bytes[0]),
            Self::BytesOut => si(r.rates.bytes[1]),
            Self::Drops => match &r.top_reason {
                Some((reason, _)) => format!("{} {reason}", si(r.drops_per_s)),
                None => si(r.drops_per_s),
            },
            Self::Neigh => r.neigh.to_owned(),
            Self::Arp => format!("{}/{}", r.arp_answered, r.arp_unanswered),
            Self::Idle => r.idle.map_or_else(|| "-".to_owned(), age),
        }
    }

    fn compare(self, a: &Row, b: &Row) -> Ordering {
        let num = |f: fn(&Row) -> f64| f(a).total_cmp(&f(b));
        match self {
            Self::Pod => a.pod_or_dash().cmp(b.pod_or_dash()),
            Self::Iface => a.iface.cmp(&b.iface),
            Self::Ips => a.ips.cmp(&b.ips),
            Self::PktsIn => num(|r| r.rates.packets[0]),
            Self::PktsOut => num(|r| r.rates.packets[1]),
            Self::BytesIn => num(|r| r.rates.bytes[0]),
            Self::BytesOut => num(|r| r.rates.bytes[1]),
            Self::Drops => num(|r| r.drops_per_s).then_with(|| a.top_reason.as_ref().map(|t| t.1).cmp(&b.top_reason.as_ref().map(|t| t.1))),
            Self::Neigh => a.neigh.cmp(b.neigh),
            Self::Arp => a.arp_unanswered.cmp(&b.arp_unanswered).then(a.arp_answered.cmp(&b.arp_answered)),
            Self::Idle => a.idle.cmp(&b.idle),
        }
    }

    /// Text columns sort A→Z first, numbers largest first.
    fn descending_first(self) -> bool {
        !matches!(self, Self::Pod | Self::Iface | Self::Ips | Self::Neigh)
    }
}

/// `1234567` → `1.2M`: three significant digits at most, SI prefixes.
pub(crate) fn si(v: f64) -> String {
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    let mut v = v.max(0.0);
    let mut unit = 0;
    while v >= 999.5 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v < 9.995 {
        format!("{v:.2}{}", UNITS[unit])
    } else if v < 99.95 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

/// `42s`, `7m`, `3h`.
pub(crate) fn age(d: Duration) -> String {
    match d.as_secs() {
        s if s < 100 => format!("{s}s"),
        s if s < 6000 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// What the keys change.
#[derive(Debug, Clone)]
pub(crate) struct ViewState {
    pub sort: Column,
    pub descending: bool,
    /// Rows whose pod (namespace/name) or interface contains it.
    pub filter: String,
    /// The filter being typed (`/`), not yet applied.
    pub editing: Option<String>,
    /// The selected row's interface.
    pub selected: Option<u32>,
    pub detail: bool,
}

impl Default for ViewState {
    fn default() -> Self {
        Self { sort: Column::BytesIn, descending: true, filter: String::new(), editing: None, selected: None, detail: true }
    }
}

/// A key, as the view hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Char(char),
    Up,
    Down,
    Enter,
    Esc,
    Backspace,
    /// Ctrl-C (raw mode turns it into a key).
    Interrupt,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Redraw,
    Quit,
    Nothing,
}

impl ViewState {
    /// The rows shown, filtered and sorted (ties by interface name).
    pub(crate) fn visible<'a>(&self, rows: &'a [Row]) -> Vec<&'a Row> {
        let needle = self.filter.to_lowercase();
        let mut shown: Vec<&Row> = rows
            .iter()
            .filter(|r| needle.is_empty() || r.pod_or_dash().to_lowercase().contains(&needle) || r.iface.contains(&needle))
            .collect();
        shown.sort_by(|a, b| {
            let o = self.sort.compare(a, b);
            let o = if self.descending { o.reverse() } else { o };
            o.then_with(|| a.iface.cmp(&b.iface))
        });
        shown
    }

    /// The selected row among `shown` (the first when the selection is not shown).
    pub(crate) fn selected_index(&self, shown: &[&Row]) -> Option<usize> {
        if shown.is_empty() {
            return None;
        }
        Some(self.selected.and_then(|s| shown.iter().position(|r| r.ifindex == s)).unwrap_or(0))
    }

    pub(crate) fn key(&mut self, key: Key, rows: &[Row]) -> Action {
        if key == Key::Interrupt {
            return Action::Quit;
        }
        if self.editing.is_some() {
            self.edit(key);
            return Action::Redraw;
        }
        match key {
            Key::Char('q') | Key::Esc => return Action::Quit,
            Key::Char('/') => self.editing = Some(self.filter.clone()),
            Key::Char('c') => self.filter.clear(),
            Key::Char('s') | Key::Char('>') => self.sort_by(Column::ALL[(self.sort_pos() + 1) % Column::ALL.len()]),
            Key::Char('<') => self.sort_by(Column::ALL[(self.sort_pos() + Column::ALL.len() - 1) % Column::ALL.len()]),
            Key::Char('r') => self.descending = !self.descending,
            Key::Char(d @ '1'..='9') => self.sort_by(Column::ALL[d as usize - '1' as usize]),
            Key::Char('0') => self.sort_by(Column::ALL[9]),
            Key::Char('-') => self.sort_by(Column::ALL[10]),
            Key::Enter | Key::Char('d') => self.detail = !self.detail,
            Key::Up | Key::Char('k') => self.step(rows, -1),
            Key::Down | Key::Char('j') => self.step(rows, 1),
            _ => return Action::Nothing,
        }
        Action::Redraw
    }

    fn sort_pos(&self) -> usize {
        Column::ALL.iter().position(|c| *c == self.sort).unwrap_or(0)
    }

    fn sort_by(&mut self, c: Column) {
        self.sort = c;
        self.descending = c.descending_first();
    }

    fn edit(&mut self, key: Key) {
        let Some(text) = &mut self.editing else { return };
        match key {
            Key::Char(c) => text.push(c),
            Key::Backspace => {
                text.pop();
            }
            Key::Enter => self.filter = self.editing.take().unwrap_or_default(),
            Key::Esc => self.editing = None,
            _ => {}
        }
    }

    fn step(&mut self, rows: &[Row], by: isize) {
        let shown = self.visible(rows);
        let Some(at) = self.selected_index(&shown) else { return };
        let to = at.saturating_add_signed(by).min(shown.len() - 1);
        self.selected = Some(shown[to].ifindex);
    }
}

/// The keys, for the footer.
pub(crate) const KEYS: &str =
    "q quit  ↑↓ select  ←→/s sort  1-9,0,- column  r reverse  / filter  c clear  d detail";

/// The plain table printed once per interval when standard output is not a terminal: the
/// header line, then every column of every row (filtered and sorted as `state` says).
pub(crate) fn plain_table(header: &Header, rows: &[Row], state: &ViewState) -> String {
    let shown = state.visible(rows);
    let cells: Vec<Vec<String>> = shown.iter().map(|r| Column::ALL.iter().map(|c| c.cell(r)).collect()).collect();
    let widths: Vec<usize> = Column::ALL
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|row| row[i].chars().count()).max().unwrap_or(0).max(c.title().len()))
        .collect();
    let mut out = format!("{}  {}\n", header.totals(), header.about());
    let mut put_line = |fields: &mut dyn Iterator<Item = &str>| {
        let line: Vec<String> = fields.zip(&widths).map(|(f, w)| format!("{f:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    };
    put_line(&mut Column::ALL.iter().map(|c| c.title()));
    for row in &cells {
        put_line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ifindex: u32, pod: &str, bytes_in: f64) -> Row {
        Row {
            ifindex,
            iface: format!("cali{ifindex:011x}"),
            pod: (!pod.is_empty()).then(|| pod.to_owned()),
            ips: vec![format!("10.0.0.{ifindex}").parse().unwrap()],
            rates: Rates { packets: [bytes_in / 100.0, 1.0], bytes: [bytes_in, 100.0] },
            neigh: "REACHABLE",
            ..Row::default()
        }
    }

    fn rows() -> Vec<Row> {
        vec![row(1, "shop/web", 5000.0), row(2, "shop/db", 9_000_000.0), row(3, "kube-system/dns", 20.0)]
    }

    fn names(state: &ViewState, rows: &[Row]) -> Vec<u32> {
        state.visible(rows).iter().map(|r| r.ifindex).collect()
    }

    #[test]
    fn rates_are_what_the_counts_gained_per_second() {
        let before = Traffic { packets: [100, 10], bytes: [10_000, 1_000] };
        let now = Traffic { packets: [300, 10], bytes: [50_000, 1_500] };
        let r = Rates::between(&before, &now, 2.0);
        assert_eq!(r.packets, [100.0, 0.0]);
        assert_eq!(r.bytes, [20_000.0, 250.0]);
        // An entry made anew (the interface detached and back) counts from zero.
        let again = Rates::between(&now, &Traffic { packets: [5, 0], bytes: [500, 0] }, 1.0);
        assert_eq!(again.packets, [5.0, 0.0]);
        assert_eq!(Rates::between(&before, &now, 0.0), Rates::default());
    }

    #[test]
    fn numbers_read_like_top() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(7.0), "7");
        assert_eq!(si(0.5), "0.50");
        assert_eq!(si(999.0), "999");
        assert_eq!(si(1234.0), "1.23k");
        assert_eq!(si(56_780.0), "56.8k");
        assert_eq!(si(2_500_000_000.0), "2.50G");
        assert_eq!(age(Duration::from_secs(42)), "42s");
        assert_eq!(age(Duration::from_secs(600)), "10m");
    }

    #[test]
    fn sorting_and_filtering_change_the_rows() {
        let rows = rows();
        let mut s = ViewState::default();
        assert_eq!(names(&s, &rows), [2, 1, 3], "bytes in, largest first");
        assert_eq!(s.key(Key::Char('1'), &rows), Action::Redraw);
        assert_eq!(names(&s, &rows), [3, 2, 1], "pod, A to Z");
        s.key(Key::Char('r'), &rows);
        assert_eq!(names(&s, &rows), [1, 2, 3]);
        for k in ['/', 's', 'h', 'o', 'p', 'x'] {
            s.key(Key::Char(k), &rows);
        }
        s.key(Key::Backspace, &rows);
        assert_eq!(names(&s, &rows), [1, 2, 3], "not applied before Enter");
        s.key(Key::Enter, &rows);
        assert_eq!(s.filter, "shop");
        assert_eq!(names(&s, &rows), [1, 2]);
        s.key(Key::Char('c'), &rows);
        assert_eq!(names(&s, &rows).len(), 3);
        assert_eq!(s.key(Key::Char('q'), &rows), Action::Quit);
        assert_eq!(s.key(Key::Interrupt, &rows), Action::Quit);
    }

    #[test]
    fn the_selection_follows_its_row() {
        let rows = rows();
        let mut s = ViewState::default();
        s.key(Key::Down, &rows);
        assert_eq!(s.selected, Some(1));
        s.key(Key::Char('1'), &rows); // re-sorted: the same pod stays selected
        let shown = s.visible(&rows);
        assert_eq!(shown[s.selected_index(&shown).unwrap()].ifindex, 1);
        for _ in 0..5 {
            s.key(Key::Down, &rows);
        }
        assert_eq!(s.selected, Some(1), "the last row stays selected");
    }

    #[test]
    fn a_narrow_terminal_keeps_pod_drops_and_packets() {
        let all = Column::fitting(400);
        assert_eq!(all, Column::ALL);
        let narrow = Column::fitting(80);
        for c in [Column::Pod, Column::Drops, Column::PktsIn, Column::PktsOut] {
            assert!(narrow.contains(&c), "{c:?} in {narrow:?}");
        }
        assert!(!narrow.contains(&Column::Ips));
        let used: u16 = narrow.iter().map(|c| c.width() + 1).sum();
        assert!(used <= 81, "{narrow:?}");
        assert_eq!(Column::fitting(10), [Column::Pod], "at least one column");
    }

    #[test]
    fn the_plain_table_has_a_header_and_a_line_per_row() {
        let mut rows = rows();
        rows[2].drops_per_s = 3.0;
        rows[2].top_reason = Some(("NEIGH_FAILED".into(), 9));
        rows[2].arp_unanswered = 2;
        let mut header = Header { probe: "tracepoint".into(), tc: "tcx".into(), kernel: "6.18.0".into(), ..Header::default() };
        header.sum(&rows);
        let text = plain_table(&header, &rows, &ViewState::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("3 traced  in 90.1k pk/s 9.01MB/s"), "{}", lines[0]);
        assert!(lines[0].contains("drops 3/s") && lines[0].ends_with("kernel 6.18.0"), "{}", lines[0]);
        let titles: Vec<&str> = lines[1].split("  ").filter(|s| !s.is_empty()).map(str::trim).collect();
        assert_eq!(titles.len(), Column::ALL.len(), "{}", lines[1]);
        assert!(lines[2].starts_with("shop/db ") && lines[2].contains("9.00M"), "{}", lines[2]);
        let dns = lines[4];
        assert!(dns.starts_with("kube-system/dns") && dns.contains("3 NEIGH_FAILED") && dns.contains("0/2"), "{dns}");
        // Every column starts where its title does.
        let at = lines[1].find("NEIGH").unwrap();
        assert_eq!(&dns[at..at + 9], "REACHABLE");
    }
}
