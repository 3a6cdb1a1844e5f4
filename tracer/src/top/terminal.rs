//! Taking the terminal for the view (raw mode, the alternate screen) and giving it back exactly
//! once, by whoever comes first: the view's end or a panic (whose message then lands on the
//! main screen, in line mode, and stays there: leaving the alternate screen a second time would
//! put the cursor back above it).

use std::{
    io::{self, stdout},
    sync::atomic::{AtomicBool, Ordering},
};

use ratatui::{
    DefaultTerminal, Terminal,
    backend::CrosstermBackend,
    crossterm::{
        execute,
        terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
    },
};

/// The terminal is in raw mode on the alternate screen.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Raw mode and the alternate screen; a panic from now on gives them back before its message.
pub(crate) fn take() -> io::Result<DefaultTerminal> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        give_back();
        hook(info);
    }));
    TAKEN.store(true, Ordering::SeqCst);
    let taken = enable_raw_mode().and_then(|()| execute!(stdout(), EnterAlternateScreen));
    match taken.and_then(|()| Terminal::new(CrosstermBackend::new(stdout()))) {
        Ok(t) => Ok(t),
        Err(e) => {
            give_back();
            Err(e)
        }
    }
}

/// The terminal as it was, if it is still taken.
pub(crate) fn give_back() {
    if TAKEN.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(stdout(), LeaveAlternateScreen);
    }
}
