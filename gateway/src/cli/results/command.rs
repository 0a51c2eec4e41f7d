//! What `yrd results …` takes on its command line.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use yrd_domain::AgencyId;
use yrd_proto::v1 as pb;

use crate::cli::connect::ConnectArgs;
use crate::cli::results::sheet::SheetFormat;

/// `yrd results …`: spot-check results (监督抽查结果) in and out of spreadsheets, for the
/// partner systems and officers that keep them in 结果公示 tables.
#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// Publish every row of a .xlsx or .csv result table (one result per row); a re-run
    /// publishes nothing twice.
    Import(ImportArgs),
    /// Write the results a search finds (every page) to a .xlsx or .csv table in the
    /// 结果公示 layout, which `yrd results import` reads back.
    Export(ExportArgs),
}

/// `yrd results import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The sheet: .xlsx (first worksheet; .xls, .xlsm, .ods too) or .csv (UTF-8).
    pub file: PathBuf,
    /// A TOML file naming the field of each header the built-in Chinese and English header
    /// sets do not know (`[columns]` `"header" = "producer.name"` or `"ignore"`).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Check every row here (its cells and the exchange's rules) and publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the rejected rows to this CSV as (row, column, reason); replaced if it exists.
    #[arg(long, value_name = "FILE")]
    pub rejected: Option<PathBuf>,
    /// Publications in flight at once over the one connection.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub concurrency: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// An overall verdict, as `--verdict` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerdictArg {
    /// 合格.
    Conforming,
    /// 不合格.
    NonConforming,
}

/// A publication state, as `--state` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    /// In force (已公示).
    Published,
    /// Withdrawn (已撤回).
    Withdrawn,
    /// Both.
    Any,
}

/// A campaign kind, as `--campaign-kind` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CampaignKindArg {
    /// 国家监督抽查.
    National,
    /// 省级监督抽查.
    Provincial,
    /// 市县级监督抽查.
    Local,
    /// 专项抽查.
    Special,
    /// 长三角联合抽查.
    DeltaJoint,
}

/// `yrd results export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The file format (default: by the extension of --out).
    #[arg(long, value_enum)]
    pub format: Option<SheetFormat>,
    /// Write the English header set instead of the Chinese 结果公示 headers.
    #[arg(long)]
    pub english: bool,
    /// Only results whose nominal producer has this USCC.
    #[arg(long)]
    pub producer_uscc: Option<String>,
    /// Only results whose seller has this USCC.
    #[arg(long)]
    pub seller_uscc: Option<String>,
    /// Only results whose product name contains this text.
    #[arg(long)]
    pub product_name_contains: Option<String>,
    /// Only results sampled on this e-commerce platform.
    #[arg(long)]
    pub platform: Option<String>,
    /// Only results whose producer or seller lies within this GB/T 2260 code (330000: the
    /// whole province).
    #[arg(long)]
    pub region_code: Option<String>,
    /// Only results with this overall verdict.
    #[arg(long, value_enum)]
    pub verdict: Option<VerdictArg>,
    /// Only results of this campaign code.
    #[arg(long)]
    pub campaign_code: Option<String>,
    /// Only results of this campaign kind.
    #[arg(long, value_enum)]
    pub campaign_kind: Option<CampaignKindArg>,
    /// Only results sampled on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub sampled_from: Option<String>,
    /// Only results sampled on or before this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub sampled_to: Option<String>,
    /// Only results published by this agency, e.g. 330000-AMR.
    #[arg(long)]
    pub publisher_agency: Option<AgencyId>,
    /// Only results in this state (withdrawn results are left out unless asked for).
    #[arg(long, value_enum, default_value = "published")]
    pub state: StateArg,
    /// Results asked for per call (the export always fetches every page).
    #[arg(long, default_value_t = 500, hide = true, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub page_size: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl ExportArgs {
    /// The `SearchResults` request of these filters (first page).
    pub fn search(&self) -> pb::SearchResultsRequest {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let sampling_date =
            (self.sampled_from.is_some() || self.sampled_to.is_some()).then(|| pb::DateRange {
                start_date: text(&self.sampled_from),
                end_date: text(&self.sampled_to),
            });
        pb::SearchResultsRequest {
            producer_uscc: text(&self.producer_uscc),
            seller_uscc: text(&self.seller_uscc),
            product_name_contains: text(&self.product_name_contains),
            platform: text(&self.platform),
            region_code: text(&self.region_code),
            verdict: match self.verdict {
                None => pb::Verdict::Unspecified,
                Some(VerdictArg::Conforming) => pb::Verdict::Conforming,
                Some(VerdictArg::NonConforming) => pb::Verdict::NonConforming,
            } as i32,
            campaign_code: text(&self.campaign_code),
            sampling_date,
            publisher_agency: self
                .publisher_agency
                .as_ref()
                .map(|a| format!("agencies/{}", a.as_str()))
                .unwrap_or_default(),
            state: match self.state {
                StateArg::Published => pb::ResultState::Published,
                StateArg::Withdrawn => pb::ResultState::Withdrawn,
                StateArg::Any => pb::ResultState::Unspecified,
            } as i32,
            campaign_kind: match self.campaign_kind {
                None => pb::CampaignKind::Unspecified,
                Some(CampaignKindArg::National) => pb::CampaignKind::National,
                Some(CampaignKindArg::Provincial) => pb::CampaignKind::Provincial,
                Some(CampaignKindArg::Local) => pb::CampaignKind::Local,
                Some(CampaignKindArg::Special) => pb::CampaignKind::Special,
                Some(CampaignKindArg::DeltaJoint) => pb::CampaignKind::DeltaJoint,
            } as i32,
            page_size: i32::try_from(self.page_size).unwrap_or(500),
            page_token: String::new(),
        }
    }
}
