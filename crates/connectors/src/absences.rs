//! Deletions inferred from a full listing (an API without change times): a
//! record synced before and missing from the listing was deleted outside.
//! An API that answers short or empty by mistake would so delete records in
//! Connec!, so a listing that would delete every known record of an entity,
//! or more than half of them (beyond a handful), is not trusted: the
//! deletions are withheld and reported instead.

use std::collections::HashSet;

/// Up to this many absences are applied even when they are more than half.
const HANDFUL: usize = 5;

/// What to do with the records missing from a full listing.
#[derive(Debug, PartialEq, Eq)]
pub struct Absences {
    /// Outside ids to delete in Connec!.
    pub apply: Vec<String>,
    /// Why nothing was deleted although records were missing.
    pub withheld: Option<String>,
}

/// Judge the records of `entity` known from earlier syncs against a full listing.
pub fn judge(entity: &str, known: Vec<String>, listed: &HashSet<&str>) -> Absences {
    let total = known.len();
    let missing: Vec<String> = known
        .into_iter()
        .filter(|id| !listed.contains(id.as_str()))
        .collect();
    let n = missing.len();
    let suspicious = n > 0 && (n == total || (n > HANDFUL && n * 2 > total));
    if !suspicious {
        return Absences {
            apply: missing,
            withheld: None,
        };
    }
    Absences {
        apply: Vec::new(),
        withheld: Some(format!(
            "{entity}: the outside API's full listing lacks {n} of the {total} records synced before \
             ({listed} listed); that many deletions at once looks like a short or failed answer, so \
             none was applied. They are judged again at the next sync; if they really were deleted \
             outside, delete them in Connec!",
            listed = listed.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| i.to_string()).collect()
    }

    #[test]
    fn a_few_absences_are_applied_a_wipe_is_withheld() {
        let listed: HashSet<&str> = ["1", "2", "3"].into();
        // One missing of four: a deletion outside.
        let judged = judge("items", ids(4), &listed);
        assert_eq!(
            (judged.apply, judged.withheld),
            (vec!["4".to_owned()], None)
        );
        // Every known record missing (an empty answer): withheld.
        let judged = judge("items", ids(2), &HashSet::new());
        assert!(judged.apply.is_empty());
        let why = judged.withheld.unwrap();
        assert!(why.contains("lacks 2 of the 2"), "{why}");
        // Seven of ten missing: more than half and more than a handful.
        let judged = judge("items", ids(10), &listed);
        assert!(judged.apply.is_empty() && judged.withheld.is_some());
        // Five of eight missing: more than half, but only a handful.
        let judged = judge("items", ids(8), &listed);
        assert_eq!(judged.apply.len(), 5);
        assert_eq!(judged.withheld, None);
        // Nothing known yet: nothing to judge.
        assert_eq!(
            judge("items", Vec::new(), &HashSet::new()),
            Absences {
                apply: Vec::new(),
                withheld: None
            }
        );
    }
}
