//! Roles and the permission table (docs/api/hub.md shows the same table).
//!
//! | permission                                   | member | power_user | admin | super_admin |
//! |----------------------------------------------|:------:|:----------:|:-----:|:-----------:|
//! | read the org, its members and installs       |   ✓    |     ✓      |   ✓   |      ✓      |
//! | read records and reports (IDM `read`)        |   ✓    |     ✓      |   ✓   |      ✓      |
//! | write records (IDM `write`)                  |        |     ✓      |   ✓   |      ✓      |
//! | update the org (`PATCH /orgs/{org}`)          |        |            |   ✓   |      ✓      |
//! | add, change, remove members up to admin      |        |            |   ✓   |      ✓      |
//! | grant, change or remove super_admin          |        |            |       |      ✓      |
//! | install, uninstall apps, switch data sharing |        |            |   ✓   |      ✓      |
//! | read the org's invoices                      |        |            |   ✓   |      ✓      |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    PowerUser,
    Admin,
    SuperAdmin,
}

pub const ROLE_NAMES: &str = "member, power_user, admin, super_admin";

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::PowerUser => "power_user",
            Role::Admin => "admin",
            Role::SuperAdmin => "super_admin",
        }
    }

    /// Every member reads the org's records and reports.
    pub fn can_read_records(self) -> bool {
        true
    }

    pub fn can_write_records(self) -> bool {
        self >= Role::PowerUser
    }

    pub fn can_update_org(self) -> bool {
        self >= Role::Admin
    }

    pub fn can_manage_installs(self) -> bool {
        self >= Role::Admin
    }

    /// Invoices show what the org spends on every app: admins and above.
    pub fn can_read_invoices(self) -> bool {
        self >= Role::Admin
    }

    /// Whether this role may give `target` to someone, or change or remove
    /// someone who has `target`: admins manage up to admin, super_admins all.
    pub fn can_manage_member_with(self, target: Role) -> bool {
        match self {
            Role::SuperAdmin => true,
            Role::Admin => target <= Role::Admin,
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(Role::Member),
            "power_user" => Ok(Role::PowerUser),
            "admin" => Ok(Role::Admin),
            "super_admin" => Ok(Role::SuperAdmin),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_table() {
        use Role::*;
        let write: Vec<bool> = [Member, PowerUser, Admin, SuperAdmin]
            .iter()
            .map(|r| r.can_write_records())
            .collect();
        assert_eq!(write, [false, true, true, true]);
        assert!(!PowerUser.can_manage_installs() && Admin.can_manage_installs());
        assert!(Admin.can_manage_member_with(Admin));
        assert!(!Admin.can_manage_member_with(SuperAdmin));
        assert!(SuperAdmin.can_manage_member_with(SuperAdmin));
        assert!(!PowerUser.can_manage_member_with(Member));
        assert_eq!("power_user".parse::<Role>(), Ok(PowerUser));
        assert!("owner".parse::<Role>().is_err());
    }
}
