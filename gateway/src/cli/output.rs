//! Output shared by the `yrd` subcommands.

use std::io::{self, IsTerminal as _, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Writes `value` as pretty JSON and a final newline: what every `--json` flag prints.
pub fn write_json<E>(out: &mut (dyn Write + Send), value: &impl Serialize) -> Result<(), E>
where
    E: From<io::Error> + From<serde_json::Error>,
{
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A progress bar on stderr drawn with `template` (indicatif's), or a hidden one when stderr is
/// not a terminal (scripts and logs get no bar).
pub fn progress_bar(template: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
