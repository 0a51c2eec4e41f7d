//! Output shared by the `yrd` subcommands.

use std::io::{self, Write};

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
