//! The parts of the platform a process runs: `mno up` runs every role in one
//! process; `mno serve --role edge,...` runs some, and many processes on one
//! JetStream cluster and one PostgreSQL act as one platform.
//!
//! Every role may run in any number of processes. Edges are stateless; the
//! work that must happen in one place at a time runs under leases on the bus
//! (see `mno_events::lease`): each projection folds in one process, each
//! app's webhooks are sent from one process, the Hub's jobs run in one.

use std::fmt;

use anyhow::{bail, Result};

/// One role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The HTTP edge: the Hub's, Connec!'s and Impac!'s APIs, SSE, the portal, the operator API.
    Edge,
    /// The projections: Connec!'s record store, Impac!'s reports, KPI alerts.
    Projections,
    /// Webhook delivery of record changes to apps.
    Delivery,
    /// The Hub's background jobs: the outbox relay, account webhooks,
    /// back-channel logouts, scheduled billing, the IDM and directory on NATS.
    HubJobs,
    /// The connectors runtime: syncs outside apps through their APIs. It
    /// reaches the record API over loopback, so it runs beside an edge, and in
    /// one process of the platform (one sync per install is a lock in it).
    Connectors,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Edge,
        Role::Projections,
        Role::Delivery,
        Role::HubJobs,
        Role::Connectors,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Edge => "edge",
            Role::Projections => "projections",
            Role::Delivery => "delivery",
            Role::HubJobs => "hub-jobs",
            Role::Connectors => "connectors",
        }
    }
}

/// The roles of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub edge: bool,
    pub projections: bool,
    pub delivery: bool,
    pub hub_jobs: bool,
    pub connectors: bool,
}

impl Roles {
    /// Every role: `mno up`, and `--role all`.
    pub fn all() -> Roles {
        Roles {
            edge: true,
            projections: true,
            delivery: true,
            hub_jobs: true,
            connectors: true,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        match role {
            Role::Edge => self.edge,
            Role::Projections => self.projections,
            Role::Delivery => self.delivery,
            Role::HubJobs => self.hub_jobs,
            Role::Connectors => self.connectors,
        }
    }

    /// `edge,delivery`, `all`, or `workers` (everything but the edge).
    pub fn parse(list: &str) -> Result<Roles> {
        let mut roles = Roles {
            edge: false,
            projections: false,
            delivery: false,
            hub_jobs: false,
            connectors: false,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => roles = Roles::all(),
                "workers" => {
                    roles.projections = true;
                    roles.delivery = true;
                    roles.hub_jobs = true;
                }
                "edge" => roles.edge = true,
                "projections" => roles.projections = true,
                "delivery" => roles.delivery = true,
                "hub-jobs" => roles.hub_jobs = true,
                "connectors" => roles.connectors = true,
                other => bail!(
                    "--role {other:?} is not a role; use a comma-separated list of edge, projections, delivery, \
                     hub-jobs, connectors, or all, or workers (projections, delivery, hub-jobs)"
                ),
            }
        }
        if roles
            == (Roles {
                edge: false,
                projections: false,
                delivery: false,
                hub_jobs: false,
                connectors: false,
            })
        {
            bail!("--role is empty; name at least one of edge, projections, delivery, hub-jobs, connectors (or all)");
        }
        if roles.connectors && !roles.edge {
            bail!(
                "--role connectors needs edge in the same process (the runtime reaches the record API over \
                 loopback): use --role edge,connectors, in one process of the platform"
            );
        }
        Ok(roles)
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| self.has(*r))
            .map(Role::name)
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_roles_parse_and_print_back() {
        let roles = Roles::parse("edge, delivery").unwrap();
        assert!(roles.edge && roles.delivery && !roles.projections && !roles.hub_jobs);
        assert_eq!(roles.to_string(), "edge,delivery");
        assert_eq!(Roles::parse("all").unwrap(), Roles::all());
        assert!(Roles::parse("edge,connectors").unwrap().connectors);
        let e = Roles::parse("workers,connectors").unwrap_err().to_string();
        assert!(e.contains("--role edge,connectors"), "{e}");
        assert_eq!(
            Roles::parse("workers").unwrap().to_string(),
            "projections,delivery,hub-jobs"
        );
    }

    #[test]
    fn an_unknown_or_empty_role_is_refused_with_the_names_to_use() {
        let e = Roles::parse("edge,folding").unwrap_err().to_string();
        assert!(
            e.contains("\"folding\"") && e.contains("projections"),
            "{e}"
        );
        assert!(Roles::parse(" , ").is_err());
    }
}
