//! The full-screen view: header, table, detail pane of the selected pod, keys — drawn with
//! ratatui from the model ([`super::model`]), in colour unless `NO_COLOR` is set.

use std::time::Instant;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Cell, Paragraph, Row as TableRow, Table, TableState},
};

use super::model::{Column, Header, KEYS, Row, ViewState, age};

/// Lines of the detail pane (its title, the routes, the drops).
const DETAIL_LINES: u16 = 8;

/// Styles, or none with `NO_COLOR` (<https://no-color.org>): then only bold and reverse video.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Palette {
    color: bool,
}

impl Palette {
    pub(crate) fn from_env() -> Self {
        Self { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }

    fn fg(self, c: Color) -> Style {
        if self.color { Style::new().fg(c) } else { Style::new() }
    }

    fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    fn warn(self) -> Style {
        self.fg(Color::Red)
    }
}

/// Draws one frame.
pub(crate) fn draw(frame: &mut Frame<'_>, header: &Header, rows: &[Row], state: &ViewState, palette: Palette) {
    let shown = state.visible(rows);
    let selected = state.selected_index(&shown);
    let detail = if state.detail && selected.is_some() { DETAIL_LINES } else { 0 };
    let [top, table, pane, footer] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(2), Constraint::Length(detail), Constraint::Length(1)])
            .areas(frame.area());
    let title = vec![Line::from(format!("vethtrace top  {}", header.about())), Line::from(header.totals())];
    frame.render_widget(Paragraph::new(title).style(palette.title()), top);
    draw_table(frame, table, &shown, selected, state, palette);
    if let Some(i) = selected.filter(|_| detail > 0) {
        draw_detail(frame, pane, shown[i], palette);
    }
    let foot = match &state.editing {
        Some(text) => format!("filter (pod or namespace, Enter applies, Esc cancels): {text}_"),
        None if state.filter.is_empty() => KEYS.to_owned(),
        None => format!("filter \"{}\" ({} of {})  {KEYS}", state.filter, shown.len(), rows.len()),
    };
    frame.render_widget(Paragraph::new(foot).style(palette.fg(Color::Yellow)), footer);
}

fn draw_table(frame: &mut Frame<'_>, area: Rect, shown: &[&Row], selected: Option<usize>, state: &ViewState, palette: Palette) {
    let columns = Column::fitting(area.width);
    let titles = columns.iter().map(|c| {
        let mark = if *c != state.sort {
            ""
        } else if state.descending {
            "▼"
        } else {
            "▲"
        };
        Cell::from(format!("{}{mark}", c.title()))
    });
    let lines = shown.iter().map(|r| {
        let cells = columns.iter().map(|c| {
            let cell = Cell::from(c.cell(r));
            let alarm = match c {
                Column::Drops => r.drops_per_s > 0.0,
                Column::Neigh => r.neigh == "FAILED" || r.neigh == "INCOMPLETE",
                Column::Arp => r.arp_unanswered > 0,
                _ => false,
            };
            if alarm { cell.style(palette.warn()) } else { cell }
        });
        TableRow::new(cells)
    });
    // Pod and drop columns take what the others leave.
    let widths = columns.iter().map(|c| match c {
        Column::Pod | Column::Drops => Constraint::Min(c.width()),
        _ => Constraint::Length(c.width()),
    });
    let table = Table::new(lines, widths)
        .header(TableRow::new(titles).style(palette.title()))
        .column_spacing(1)
        .row_highlight_style(palette.selected());
    let mut table_state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut table_state);
}

/// The selected pod: who, its routes, its recent drops with their causes.
fn draw_detail(frame: &mut Frame<'_>, area: Rect, row: &Row, palette: Palette) {
    let now = Instant::now();
    let ips: Vec<String> = row.ips.iter().map(ToString::to_string).collect();
    let mut lines = vec![
        Line::styled(format!("── {} {} {} ──", row.pod.as_deref().unwrap_or("(pod unknown)"), row.iface, ips.join(" ")), palette.title()),
        Line::from(format!("routes: {}", if row.routes.is_empty() { "none".to_owned() } else { row.routes.join("; ") })),
    ];
    if row.recent.is_empty() {
        lines.push(Line::from("no drops seen"));
    }
    for d in row.recent.iter().rev() {
        let text = format!("{:>4} ago  {}  {}  {}", age(now.saturating_duration_since(d.at)), d.reason, d.flow, d.cause);
        lines.push(Line::styled(text, palette.warn()));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::top::model::{Key, Rates};

    fn rows() -> Vec<Row> {
        let row = |ifindex: u32, pod: Option<&str>, reason: Option<&str>| Row {
            ifindex,
            iface: format!("cali{ifindex:011x}"),
            pod: pod.map(str::to_owned),
            ips: vec![format!("10.244.1.{ifindex}").parse().unwrap()],
            rates: Rates { packets: [1500.0, 20.0], bytes: [2_000_000.0, 1_000.0] },
            drops_per_s: if reason.is_some() { 4.0 } else { 0.0 },
            top_reason: reason.map(|r| (r.to_owned(), 4)),
            neigh: "REACHABLE",
            ..Row::default()
        };
        vec![row(5, Some("shop/web"), None), row(6, None, Some("NETFILTER_DROP"))]
    }

    /// The screen's lines after one frame of `width` × `height`.
    fn screen(width: u16, height: u16, state: &ViewState, color: bool) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let header = Header { probe: "tracepoint".into(), tc: "tcx".into(), kernel: "6.18.0".into(), ..Header::default() };
        terminal.draw(|f| draw(f, &header, &rows(), state, Palette { color })).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let lines = (0..height)
            .map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_owned()).collect::<String>().trim_end().to_owned())
            .collect();
        (lines, buffer)
    }

    #[test]
    fn an_80_by_24_terminal_shows_every_row_the_detail_and_the_keys() {
        let (lines, _) = screen(80, 24, &ViewState::default(), true);
        assert!(lines[0].starts_with("vethtrace top  lost 0  probe tracepoint  tc tcx  kernel 6.18.0"), "{lines:#?}");
        assert!(lines[2].starts_with("POD") && lines[2].contains("DROPS/S"), "{lines:#?}");
        assert!(!lines[2].contains("IPS") && !lines[2].contains("NEIGH"), "too narrow for them: {lines:#?}");
        assert!(lines.iter().any(|l| l.starts_with("shop/web") && l.contains("cali00000000005") && l.contains("1.50k")));
        assert!(lines.iter().any(|l| l.starts_with('-') && l.contains("4 NETFILTER_DROP")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("── shop/web cali00000000005 10.244.1.5 ──")), "{lines:#?}");
        assert!(lines[23].starts_with("q quit"), "{lines:#?}");
    }

    #[test]
    fn the_filter_being_typed_shows_in_the_footer() {
        let mut state = ViewState::default();
        for k in ['/', 's', 'h'] {
            state.key(Key::Char(k), &rows());
        }
        let (lines, _) = screen(100, 20, &state, true);
        assert!(lines[19].starts_with("filter (pod or namespace, Enter applies, Esc cancels): sh_"), "{lines:#?}");
        state.key(Key::Enter, &rows());
        let (lines, _) = screen(100, 20, &state, true);
        assert!(lines[19].starts_with("filter \"sh\" (1 of 2)"), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("cali00000000006")), "{lines:#?}");
    }

    #[test]
    fn no_color_leaves_only_bold_and_reverse() {
        let coloured = |buffer: &ratatui::buffer::Buffer| buffer.content().iter().any(|c| c.fg != Color::Reset);
        assert!(coloured(&screen(120, 20, &ViewState::default(), true).1));
        assert!(!coloured(&screen(120, 20, &ViewState::default(), false).1));
    }
}
