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
