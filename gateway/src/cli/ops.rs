//! The arguments of the operator commands that work on the store directly rather than over the
//! contract: `yrd migrate` and `yrd backup`. They find the database exactly as `yrd serve` does
//! (`--config`, `YRD_*`, `--data-dir`, `--database-url`); the crate's `ops` module runs them.

use std::path::PathBuf;

use clap::Args;

/// Where the store is: the subset of `yrd serve`'s flags that locate the database.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// A TOML configuration file; `YRD_*` environment variables override its keys.
    #[arg(long, env = "YRD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the embedded database lives (default ./yrd-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// `yrd backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The database to copy.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The copy to write (a new file; an existing one is never replaced). The copy is verified
    /// once written.
    #[arg(long, required_unless_present = "check", conflicts_with = "check")]
    pub out: Option<PathBuf>,
    /// Verify an existing copy instead of making one (e.g. before restoring it).
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    #[test]
    fn backup_wants_out_or_check_but_not_both() {
        assert!(Cli::try_parse_from(["yrd", "backup"]).is_err());
        assert!(
            Cli::try_parse_from(["yrd", "backup", "--out", "a.db", "--check", "b.db"]).is_err()
        );
        let cli = Cli::try_parse_from(["yrd", "backup", "--data-dir", "d", "--out", "a.db"])
            .expect("parses");
        let Command::Backup(args) = cli.command else {
            panic!("not backup");
        };
        assert_eq!(args.out.as_deref(), Some(std::path::Path::new("a.db")));
        assert_eq!(
            args.store.data_dir.as_deref(),
            Some(std::path::Path::new("d"))
        );
        let cli = Cli::try_parse_from(["yrd", "migrate", "--database-url", "postgres://u@h/db"])
            .expect("parses");
        assert!(matches!(cli.command, Command::Migrate(_)));
    }
}
