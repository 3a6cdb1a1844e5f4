//! `vethtrace top`: the node's pods at a glance, live. A trace that writes no line per event
//! (as metrics mode: packets and bytes counted in the kernel's `TRAFFIC` map, read once a
//! second; drops, ARP and neighbour events through the ring, tallied by [`Tally`]), shown as a
//! full-screen table ([`view`]) or, without a terminal on standard output, one plain table per
//! second ([`model::plain_table`]). The session ([`crate::trace`]) owns the node's state and
//! the pod index; this module only reads them.

pub(crate) mod model;
mod terminal;
mod view;

use std::{
    collections::HashMap,
    io::{IsTerminal as _, Write as _},
    net::IpAddr,
    time::Instant,
};

use anyhow::Context as _;
use ratatui::{
    DefaultTerminal,
    crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
};
use tokio::sync::mpsc;
use tracer_common::traffic::Traffic;

use self::{
    model::{Action, Header, Key, Rates, Row, ViewState, plain_table},
    view::Palette,
};
use crate::{
    cli::TopArgs,
    filter::Filter,
    metrics::kernel_counts::{Sums as _, TrafficMap},
    mirror::{
        Mirror,
        routes::{self, Route},
    },
    trace::{self, Counters, Frontend, Session},
    writers::is_closed,
};

/// Runs `vethtrace top` until `q`, Ctrl-C, SIGTERM, `--duration` or a closed pipe.
pub async fn run(args: &TopArgs, expression: Option<&Filter>) -> anyhow::Result<Counters> {
    let state = ViewState { filter: args.filter.clone(), ..ViewState::default() };
    trace::run_with(&args.trace_args(), expression, |s| Live::start(s, state)).await
}

/// Where the view goes.
enum Output {
    /// The full-screen view;
    /// keys come from a thread of their own (`None` once it has ended).
    Screen { terminal: DefaultTerminal, keys: Option<mpsc::Receiver<Event>>, palette: Palette, log_level: log::LevelFilter },
    /// One plain table per second on standard output.
    Plain,
}

impl Drop for Output {
    /// The terminal as it was (raw mode off, the main screen back), then the logs again.
    fn drop(&mut self) {
        if let Self::Screen { log_level, .. } = self {
            terminal::give_back();
            log::set_max_level(*log_level);
        }
    }
}

/// Reads keys (and resizes) and hands them to the event loop; ends with the loop.
fn spawn_key_reader() -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

/// Rates are measured over at least this long.
const MIN_REFRESH: std::time::Duration = std::time::Duration::from_millis(500);

/// What an interface had at the last tick.
struct Before {
    traffic: Traffic,
    drops: u64,
    /// Drops by reason.
    reasons: Vec<(String, u64)>,
    /// When its counts last moved.
    moved: Option<Instant>,
}

/// The live view: the kernel's counts, what they were at the last tick, the rows shown.
pub(crate) struct Live {
    traffic: TrafficMap,
    before: HashMap<u32, Before, foldhash::fast::RandomState>,
    last_tick: Instant,
    rows: Vec<Row>,
    header: Header,
    state: ViewState,
    out: Output,
    /// Tests only: `VETHTRACE_FAULT=top-panic` panics at the first refresh after the start,
    /// to show that a panic leaves the terminal as it was.
    panic_at_tick: bool,
}

impl Live {
    fn start(s: &mut Session, state: ViewState) -> anyhow::Result<Self> {
        let traffic = s.take_traffic().context("reading the kernel's traffic counts")?;
        let (tc, probe, drops) = s.modes();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        let probe = if drops { probe.to_owned() } else { format!("{probe} (no drops)") };
        let header = Header { probe, tc: tc.to_owned(), kernel, ..Header::default() };
        let out = if std::io::stdout().is_terminal() {
            // Log lines would tear the screen: only errors until it is restored.
            let log_level = log::max_level();
            log::set_max_level(log::LevelFilter::Error);
            let terminal = terminal::take().context("cannot take over the terminal")?;
            Output::Screen { terminal, keys: Some(spawn_key_reader()), palette: Palette::from_env(), log_level }
        } else {
            Output::Plain
        };
        let panic_at_tick = std::env::var_os("VETHTRACE_FAULT").is_some_and(|v| v == "top-panic");
        let mut live = Self {
            traffic,
            before: HashMap::default(),
            last_tick: Instant::now(),
            rows: Vec::new(),
            header,
            state,
            out,
            panic_at_tick,
        };
        live.refresh(s);
        live.show()?;
        Ok(live)
    }

    /// The rows anew: rates since the last tick, the tallies, the node's state.
    fn refresh(&mut self, s: &mut Session) {
        let now = Instant::now();
        let secs = now.duration_since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        let traced = s.traced();
        // Interfaces no longer traced: their counts and tallies go (an index may be reused).
        let gone: Vec<u32> = self.before.keys().copied().filter(|i| !traced.iter().any(|(t, _)| t == i)).collect();
        for ifindex in gone {
            self.before.remove(&ifindex);
            self.traffic.forget(ifindex);
            if let Some(t) = s.tally() {
                t.forget(ifindex);
            }
        }
        let tally = s.tally().map(|t| &*t);
        let mut rows = Vec::with_capacity(traced.len());
        for (ifindex, iface) in traced {
            let counts = self.traffic.sum(ifindex);
            let t = tally.and_then(|t| t.get(ifindex));
            let tallied = || (t.map_or(0, |t| t.drops), t.map(|t| t.by_reason.clone()).unwrap_or_default());
            let before = self.before.entry(ifindex).or_insert_with(|| {
                let (drops, reasons) = tallied();
                Before { traffic: counts, drops, reasons, moved: None }
            });
            let mut row = Row { ifindex, iface, rates: Rates::between(&before.traffic, &counts, secs), ..Row::default() };
            if let Some(t) = t {
                row.take_tally(t, before.drops, &before.reasons, secs);
            }
            if counts != before.traffic {
                before.moved = Some(now);
            }
            let last = match (before.moved, t.and_then(|t| t.last_event)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            row.set_idle(now, last);
            let (drops, reasons) = tallied();
            *before = Before { traffic: counts, drops, reasons, moved: before.moved };
            rows.push(row);
        }
        let by_dev = RoutesByDev::of(s.node());
        for row in &mut rows {
            describe(row, s, &by_dev);
        }
        self.header.lost = s.lost();
        self.header.sum(&rows);
        self.rows = rows;
    }

    /// Draws the view, or prints the table; `Ok(false)` when standard output was closed.
    fn show(&mut self) -> anyhow::Result<bool> {
        let Self { header, rows, state, out, .. } = self;
        match out {
            Output::Screen { terminal, palette, .. } => {
                terminal.draw(|f| view::draw(f, header, rows, state, *palette)).context("drawing the view")?;
                Ok(true)
            }
            Output::Plain => {
                let mut text = plain_table(header, rows, state);
                text.push('\n');
                let mut stdout = std::io::stdout().lock();
                match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
                    Err(e) if is_closed(&e) => Ok(false),
                    other => other.map(|()| true).context("writing the table"),
                }
            }
        }
    }
}

/// The routes through each interface (not the local table's: the kernel's own for every
/// address and link-local prefix), gathered once per refresh.
struct RoutesByDev<'m>(HashMap<u32, Vec<&'m Route>, foldhash::fast::RandomState>);

impl<'m> RoutesByDev<'m> {
    fn of(node: &'m Mirror) -> Self {
        let mut by_dev: HashMap<u32, Vec<&Route>, _> = HashMap::default();
        for r in node.routes.iter().filter(|r| r.table != routes::RT_TABLE_LOCAL) {
            let mut devs: Vec<u32> = r.nexthops.iter().map(|n| n.dev).collect();
            devs.dedup();
            for dev in devs {
                by_dev.entry(dev).or_default().push(r);
            }
        }
        Self(by_dev)
    }

    fn get(&self, dev: u32) -> &[&'m Route] {
        self.0.get(&dev).map_or(&[], Vec::as_slice)
    }

    /// The addresses routed to `dev` alone in the main table, IPv4 first.
    fn host_addrs(&self, dev: u32) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self
            .get(dev)
            .iter()
            .filter(|r| r.table == routes::RT_TABLE_MAIN && r.dst.len == r.dst.family().bits())
            .filter(|r| r.nexthops.iter().all(|n| n.dev == dev))
            .map(|r| r.dst.addr)
            .collect();
        ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
        ips
    }
}

/// Who is behind the row's interface, its addresses, their neighbour state, its routes.
fn describe(row: &mut Row, s: &Session, by_dev: &RoutesByDev<'_>) {
    let node = s.node();
    let pod = s.pods().by_ifname(&row.iface);
    row.pod = pod.as_ref().map(|p| format!("{}/{}", p.namespace, p.name));
    row.ips = match pod {
        Some(p) if !p.ips.is_empty() => p.ips.clone(),
        // Unknown pod: its host routes (Calico routes each pod address to its cali).
        _ => by_dev.host_addrs(row.ifindex),
    };
    let ip = row.ips.iter().find(|ip| ip.is_ipv4()).or(row.ips.first());
    row.neigh = ip.and_then(|ip| node.neighbours.get(row.ifindex, *ip)).map_or("-", |n| n.state.name());
    row.routes = by_dev
        .get(row.ifindex)
        .iter()
        .map(|r| {
            let table = if r.table == routes::RT_TABLE_MAIN {
                String::new()
            } else {
                format!(" table {}", routes::table_name(r.table).map_or_else(|| r.table.to_string(), str::to_owned))
            };
            format!("{} scope {}{table}", r.dst, routes::scope_name(r.scope))
        })
        .collect();
    row.routes.sort();
}

/// A terminal event as a key of the view.
fn key_of(ev: &Event) -> Option<Key> {
    let Event::Key(k) = ev else { return None };
    if k.kind != KeyEventKind::Press {
        return None;
    }
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Right => Key::Char('>'),
        KeyCode::Left => Key::Char('<'),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

impl Frontend for Live {
    /// A terminal event; `None` once the key reader is gone.
    type Input = Option<Event>;

    async fn input(&mut self) -> Option<Event> {
        match &mut self.out {
            Output::Screen { keys: Some(keys), .. } => keys.recv().await,
            Output::Screen { keys: None, .. } | Output::Plain => std::future::pending().await,
        }
    }

    fn on_input(&mut self, input: Option<Event>, _: &mut Session) -> anyhow::Result<bool> {
        let Some(ev) = input else {
            // No more keys (the terminal went away): the view runs on until a signal.
            if let Output::Screen { keys, .. } = &mut self.out {
                *keys = None;
            }
            return Ok(true);
        };
        let action = match key_of(&ev) {
            Some(key) => self.state.key(key, &self.rows),
            None if matches!(ev, Event::Resize(..)) => Action::Redraw,
            None => Action::Nothing,
        };
        match action {
            Action::Quit => Ok(false),
            Action::Redraw => self.show(),
            Action::Nothing => Ok(true),
        }
    }

    fn on_tick(&mut self, s: &mut Session) -> anyhow::Result<bool> {
        assert!(!self.panic_at_tick, "VETHTRACE_FAULT=top-panic (a test)");
        // The first tick comes at once, right after the start's refresh: rates over a few
        // milliseconds would be noise.
        if self.last_tick.elapsed() >= MIN_REFRESH {
            self.refresh(s);
        }
        self.show()
    }
}
