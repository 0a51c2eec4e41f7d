//! `yrd agency …`: the admins' command line for the agencies (市场监督管理部门) admitted to
//! the exchange: register one, list them, suspend and resume one.
//!
//! Like `yrd cert`, each command is a plain async function writing to a caller-supplied `out`,
//! calling the exchange through an admin [`Session`](crate::cli::session::Session); failures
//! are the [`CliError`] of `yrd cert`.

use std::io::Write;

use comfy_table::{Table, presets};
use serde::Serialize;
use yrd_client::{Authed, RpcError, list_all};
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::{self as pb, CreateAgencyRequest, ListAgenciesRequest, UpdateAgencyRequest};

use crate::cli::command::{
    AgencyCommand, AgencyCreateArgs, AgencyListArgs, AgencyStateArg, AgencyStateArgs,
};
use crate::cli::error::{CliError, admin_session};
use crate::cli::output::write_json;

/// Runs one `yrd agency` subcommand, writing what a user reads to `out`.
pub async fn run_agency(
    command: AgencyCommand,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    match command {
        AgencyCommand::Create(args) => agency_create(args, out).await,
        AgencyCommand::List(args) => agency_list(args, out).await,
        AgencyCommand::Suspend(args) => {
            agency_set_state(args, pb::AgencyState::Suspended, out).await
        }
        AgencyCommand::Resume(args) => agency_set_state(args, pb::AgencyState::Active, out).await,
    }
}

async fn agency_create(
    args: AgencyCreateArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let session = admin_session(&args.connect).await?;
    let created = session
        .admin()
        .create_agency(CreateAgencyRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            agency: Some(pb::Agency {
                agency_id: args.agency.to_string(),
                display_name: args.name,
                display_name_zh: args.name_zh,
                state: pb::AgencyState::Active as i32,
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| RpcError::new("AdminService.CreateAgency", s))?
        .into_inner()
        .agency
        .ok_or(CliError::Incomplete {
            method: "AdminService.CreateAgency",
            field: "agency",
        })?;
    let view = AgencyView::from_pb(&created);
    writeln!(
        out,
        "registered {} {} ({}), {}",
        view.agency_id, view.display_name, view.display_name_zh, view.state
    )?;
    writeln!(
        out,
        "next: the agency runs `yrd cert request --agency {} --profile system --out DIR` and sends you the CSR",
        view.agency_id
    )?;
    Ok(())
}

async fn agency_list(args: AgencyListArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let session = admin_session(&args.connect).await?;
    let admin = session.admin();
    let request = ListAgenciesRequest {
        state: match args.state {
            None => pb::AgencyState::Unspecified,
            Some(AgencyStateArg::Active) => pb::AgencyState::Active,
            Some(AgencyStateArg::Suspended) => pb::AgencyState::Suspended,
        } as i32,
        page_size: 500,
        page_token: String::new(),
    };
    let views: Vec<AgencyView> = all_agencies(&admin, request)
        .await?
        .iter()
        .map(AgencyView::from_pb)
        .collect();
    if args.json {
        return write_json(out, &views);
    }
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(["agency", "name", "名称", "state", "operator"]);
    for v in &views {
        table.add_row([
            v.agency_id.clone(),
            v.display_name.clone(),
            v.display_name_zh.clone(),
            v.state.to_owned(),
            if v.operator { "yes" } else { "" }.to_owned(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} agency(ies)", views.len())?;
    Ok(())
}

async fn agency_set_state(
    args: AgencyStateArgs,
    state: pb::AgencyState,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let session = admin_session(&args.connect).await?;
    let updated = session
        .admin()
        .update_agency(UpdateAgencyRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            agency: Some(pb::Agency {
                name: format!("agencies/{}", args.agency),
                state: state as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["state".to_owned()],
            }),
        })
        .await
        .map_err(|s| RpcError::new("AdminService.UpdateAgency", s))?
        .into_inner()
        .agency
        .ok_or(CliError::Incomplete {
            method: "AdminService.UpdateAgency",
            field: "agency",
        })?;
    let view = AgencyView::from_pb(&updated);
    writeln!(out, "{} is now {}", view.agency_id, view.state)?;
    Ok(())
}

/// Every agency `request` matches, all pages (`yrd agency list`, the console).
pub(crate) async fn all_agencies(
    admin: &AdminServiceClient<Authed>,
    request: ListAgenciesRequest,
) -> Result<Vec<pb::Agency>, RpcError> {
    list_all(
        "AdminService.ListAgencies",
        request,
        |r, token| r.page_token = token,
        |r| {
            let mut admin = admin.clone();
            async move {
                let page = admin.list_agencies(r).await?.into_inner();
                Ok((page.agencies, page.next_page_token))
            }
        },
    )
    .await
}

/// An agency as `yrd agency list --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct AgencyView {
    /// The agency id, e.g. `370000-AMR`.
    pub agency_id: String,
    /// Name in English.
    pub display_name: String,
    /// Name in Chinese.
    pub display_name_zh: String,
    /// `active` or `suspended`.
    pub state: &'static str,
    /// Whether its admins run the exchange.
    pub operator: bool,
}

impl AgencyView {
    /// The view of an agency the exchange returned.
    pub fn from_pb(a: &pb::Agency) -> Self {
        AgencyView {
            agency_id: a.agency_id.clone(),
            display_name: a.display_name.clone(),
            display_name_zh: a.display_name_zh.clone(),
            state: match pb::AgencyState::try_from(a.state) {
                Ok(pb::AgencyState::Active) => "active",
                Ok(pb::AgencyState::Suspended) => "suspended",
                _ => "unknown",
            },
            operator: a.operator,
        }
    }
}
