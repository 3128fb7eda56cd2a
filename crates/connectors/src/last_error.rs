//! The install's `last_error`: which pass it came from, and when it is over.
//! An error stays in the status only until that pass works again: the next
//! successful pull of the entity (or whole pull) for a pull's error, the next
//! change pushed of the entity for a push's; an error of the install as a
//! whole (its credentials, its settings) ends with any success. The error so
//! cleared is kept in `recent` as `resolved`, with when.

use crate::store::Store;

/// A pass of the sync that may fail or succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass<'a> {
    /// The install itself: building it (its credentials, its settings).
    Install,
    /// A pull: of one entity, or (`None`) the whole pull of every entity.
    Pull(Option<&'a str>),
    /// A push: of one entity's change, or (`None`) the change stream itself.
    Push(Option<&'a str>),
}

impl Pass<'_> {
    /// How a failure of this pass is stored beside the error.
    pub fn scope(self) -> String {
        match self {
            Pass::Install => "install".into(),
            Pass::Pull(None) => "pull".into(),
            Pass::Pull(Some(entity)) => format!("pull {entity}"),
            Pass::Push(None) => "push".into(),
            Pass::Push(Some(entity)) => format!("push {entity}"),
        }
    }
}

/// Whether the success of `pass` ends an error stored with `scope` (`None`:
/// an error stored before scopes were kept, ended by a whole pull).
pub fn ended_by(scope: Option<&str>, pass: Pass) -> bool {
    let (kind, entity) = match scope {
        None => ("pull", None),
        Some(scope) => match scope.split_once(' ') {
            Some((kind, entity)) => (kind, Some(entity)),
            None => (scope, None),
        },
    };
    match (kind, pass) {
        ("install", Pass::Pull(None) | Pass::Push(Some(_))) => true,
        ("pull", Pass::Pull(None)) => true,
        ("pull", Pass::Pull(Some(done))) => entity == Some(done),
        ("push", Pass::Push(Some(done))) => entity.is_none_or(|e| e == done),
        _ => false,
    }
}

/// The pass succeeded: clear the install's last error if this pass ends it,
/// and say so in `recent`.
pub async fn resolve(
    store: &Store,
    org: &str,
    app: &str,
    pass: Pass<'_>,
) -> Result<(), sqlx::Error> {
    let Some((error, at, scope)) = store.last_error(org, app).await? else {
        return Ok(());
    };
    if !ended_by(scope.as_deref(), pass) || !store.clear_error(org, app, &at).await? {
        return Ok(());
    }
    let (entity, what) = match pass {
        Pass::Install | Pass::Pull(None) => ("", "the sync".to_owned()),
        Pass::Pull(Some(entity)) => (entity, format!("the pull of {entity}")),
        Pass::Push(None) => ("", "the push".to_owned()),
        Pass::Push(Some(entity)) => (entity, format!("the push of {entity}")),
    };
    let detail = format!("{what} works again; the error of {at} is over: {error}");
    store.log(org, app, entity, "resolved", "", &detail).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_ends_with_the_next_success_of_its_pass() {
        let pull_invoices = Pass::Pull(Some("invoices")).scope();
        assert!(ended_by(Some(&pull_invoices), Pass::Pull(Some("invoices"))));
        assert!(ended_by(Some(&pull_invoices), Pass::Pull(None)));
        assert!(!ended_by(Some(&pull_invoices), Pass::Pull(Some("items"))));
        assert!(!ended_by(
            Some(&pull_invoices),
            Pass::Push(Some("invoices"))
        ));

        let push_items = Pass::Push(Some("items")).scope();
        assert!(ended_by(Some(&push_items), Pass::Push(Some("items"))));
        assert!(!ended_by(Some(&push_items), Pass::Push(Some("invoices"))));
        assert!(!ended_by(Some(&push_items), Pass::Pull(None)));
        assert!(ended_by(Some("push"), Pass::Push(Some("invoices"))));

        let install = Pass::Install.scope();
        assert!(ended_by(Some(&install), Pass::Pull(None)));
        assert!(ended_by(Some(&install), Pass::Push(Some("items"))));
        assert!(!ended_by(Some(&install), Pass::Pull(Some("items"))));
        assert!(ended_by(None, Pass::Pull(None)));
        assert!(!ended_by(None, Pass::Push(Some("items"))));
    }
}
