//! One test, run on both databases the platform supports.

use std::future::Future;

/// What a test run by [`on_both_databases!`](crate::on_both_databases) gets:
/// built once over SQLite and once over PostgreSQL.
pub trait DatabaseFixture: Sized {
    fn sqlite() -> impl Future<Output = Self>;
    fn postgres() -> impl Future<Output = Self>;
}

/// What a test function returns: `()`, or a `Result` whose error fails the test.
pub trait TestOutcome {
    fn check(self);
}

impl TestOutcome for () {
    fn check(self) {}
}

impl<E: std::fmt::Debug> TestOutcome for Result<(), E> {
    fn check(self) {
        if let Err(error) = self {
            panic!("{error:?}");
        }
    }
}

/// Run each named `async fn(&Fixture)` twice: on a fixture over SQLite (module
/// `sqlite`) and over PostgreSQL (module `postgres`). Use it at the top level
/// of a test module, naming a type that implements [`DatabaseFixture`]:
///
/// ```ignore
/// mno_harness::on_both_databases!(TestPlatform; my_test, my_other_test);
/// async fn my_test(platform: &TestPlatform) -> anyhow::Result<()> { ... }
/// ```
#[macro_export]
macro_rules! on_both_databases {
    ($fixture:ty; $($name:ident),* $(,)?) => {
        $crate::on_both_databases!(@on sqlite, $fixture; $($name),*);
        $crate::on_both_databases!(@on postgres, $fixture; $($name),*);
    };
    (@on $database:ident, $fixture:ty; $($name:ident),*) => {
        mod $database {
            // The fixture's type is named as the test module sees it.
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = <$fixture as $crate::DatabaseFixture>::$database().await;
                    $crate::TestOutcome::check(super::$name(&fixture).await);
                }
            )*
        }
    };
}
