//! The careful write: re-read the line just before writing and change it only if it still
//! holds the quantity the plan read. With no version field to compare on, this is how a
//! write-back avoids overwriting an edit made in the PSA since the plan (ConnectWise §3.4).
//! A line that already holds the new quantity is left alone, so running the same change again
//! (after a crash, or a lost answer) sends nothing.

use super::{LineState, LineWriter, WriteError, same_quantity};
use crate::model::LineRef;

/// What [`write_if_unchanged`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Guarded {
    /// The line held the expected quantity and now holds the new one.
    Written {
        /// The line as read just before the write.
        before: LineState,
        /// The line as the PSA answered the write.
        after: LineState,
    },
    /// The line already holds the new quantity: nothing was sent.
    AlreadySet {
        /// The line as read.
        found: LineState,
    },
    /// The line holds neither the expected nor the new quantity (someone changed it since
    /// the plan): nothing was sent.
    Changed {
        /// The line as read.
        found: LineState,
    },
    /// The read says the line must not be written ([`LineState::locked`]): nothing was sent.
    Locked {
        /// The line as read.
        found: LineState,
        /// Why.
        why: String,
    },
}

/// Which call of a guarded write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The re-read before the write: nothing was sent that changes anything.
    Read,
    /// The write itself.
    Write,
}

/// A guarded write that failed, and at which step.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {error}", match .step { Step::Read => "re-reading the line failed", Step::Write => "writing the line failed" })]
pub struct GuardError {
    /// Where it failed.
    pub step: Step,
    /// Why.
    #[source]
    pub error: WriteError,
}

impl GuardError {
    /// Whether the PSA may hold the new quantity despite the failure: the write was sent and
    /// timed out, lost its answer (a 5xx or a transport failure after any retries), answered
    /// with an unreadable body or with another quantity. A refusal (401, 403, 404, 4xx, a 429
    /// on every attempt) applied nothing. A later re-read tells; a repeat of the same change
    /// then finds [`Guarded::AlreadySet`].
    pub fn may_have_applied(&self) -> bool {
        use crate::upstream::UpstreamError as U;
        self.step == Step::Write
            && matches!(
                &self.error,
                WriteError::Upstream(
                    U::Timeout { .. } | U::Unavailable { .. } | U::BadResponse { .. }
                ) | WriteError::Unconfirmed { .. }
            )
    }
}

/// Sets `line` to `new` only if the PSA still holds `expected` (what the plan read): re-reads
/// it, leaves it alone when it already holds `new`, when the read says it must not be
/// written ([`LineState::locked`]) or when it holds something else; writes otherwise.
pub async fn write_if_unchanged(
    writer: &dyn LineWriter,
    line: &LineRef,
    expected: f64,
    new: f64,
) -> Result<Guarded, GuardError> {
    let found =
        writer.read_line(line).await.map_err(|error| GuardError { step: Step::Read, error })?;
    if same_quantity(found.quantity, new) {
        return Ok(Guarded::AlreadySet { found });
    }
    if let Some(why) = found.locked.clone() {
        return Ok(Guarded::Locked { found, why });
    }
    if !same_quantity(found.quantity, expected) {
        return Ok(Guarded::Changed { found });
    }
    let after = writer
        .set_quantity(line, new)
        .await
        .map_err(|error| GuardError { step: Step::Write, error })?;
    Ok(Guarded::Written { before: found, after })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::billing::write::PlannedRequest;
    use crate::upstream::{StatsSnapshot, UpstreamError};

    /// One line in memory: its quantity (`None`: deleted), the writes it received, and an
    /// error every write fails with, if set.
    struct Fake {
        quantity: Mutex<Option<f64>>,
        writes: Mutex<Vec<f64>>,
        fail: Option<WriteError>,
    }

    const LINE: LineRef = LineRef::Connectwise { agreement: 1, addition: 2 };

    impl Fake {
        fn holding(q: f64) -> Fake {
            Fake { quantity: Mutex::new(Some(q)), writes: Mutex::new(Vec::new()), fail: None }
        }

        fn state(&self) -> Result<LineState, WriteError> {
            match *self.quantity.lock().unwrap() {
                Some(quantity) => Ok(LineState {
                    line: LINE,
                    quantity,
                    unit_price: None,
                    product_id: None,
                    inactive: None,
                    locked: None,
                }),
                None => Err(WriteError::Gone {
                    psa: "fake",
                    line: LINE,
                    endpoint: "GET /line".into(),
                    message: "not found".into(),
                }),
            }
        }
    }

    impl LineWriter for Fake {
        fn psa(&self) -> &'static str {
            "fake"
        }

        fn read_line<'a>(&'a self, _: &'a LineRef) -> BoxFuture<'a, Result<LineState, WriteError>> {
            Box::pin(async move { self.state() })
        }

        fn set_quantity<'a>(
            &'a self,
            _: &'a LineRef,
            q: f64,
        ) -> BoxFuture<'a, Result<LineState, WriteError>> {
            Box::pin(async move {
                self.writes.lock().unwrap().push(q);
                if let Some(e) = &self.fail {
                    return Err(e.clone());
                }
                *self.quantity.lock().unwrap() = Some(q);
                self.state()
            })
        }

        fn describe(&self, _: &LineRef, _: f64, _: f64) -> Result<PlannedRequest, WriteError> {
            unreachable!("not used by the guard")
        }

        fn stats(&self) -> StatsSnapshot {
            StatsSnapshot::default()
        }
    }

    #[tokio::test]
    async fn writes_only_when_the_line_still_holds_the_planned_quantity() {
        let fake = Fake::holding(10.0);
        let g = write_if_unchanged(&fake, &LINE, 10.0, 12.0).await.unwrap();
        assert!(
            matches!(&g, Guarded::Written { before, after } if before.quantity == 10.0 && after.quantity == 12.0),
            "{g:?}"
        );
        // The same change again (a crash, a lost answer): nothing is sent.
        let g = write_if_unchanged(&fake, &LINE, 10.0, 12.0).await.unwrap();
        assert!(matches!(&g, Guarded::AlreadySet { found } if found.quantity == 12.0), "{g:?}");
        // Changed in the PSA since the plan: left alone.
        let g = write_if_unchanged(&fake, &LINE, 10.0, 15.0).await.unwrap();
        assert!(matches!(&g, Guarded::Changed { found } if found.quantity == 12.0), "{g:?}");
        assert_eq!(*fake.writes.lock().unwrap(), vec![12.0]);
    }

    #[tokio::test]
    async fn failures_say_where_and_whether_the_change_may_be_in() {
        let gone = Fake { quantity: Mutex::new(None), ..Fake::holding(0.0) };
        let e = write_if_unchanged(&gone, &LINE, 1.0, 2.0).await.unwrap_err();
        assert_eq!((e.step, e.error.kind(), e.may_have_applied()), (Step::Read, "gone", false));
        assert!(gone.writes.lock().unwrap().is_empty());

        let timeout = UpstreamError::Timeout {
            upstream: "fake".into(),
            endpoint: "PATCH /line".into(),
            attempts: 3,
        };
        let lost = Fake { fail: Some(timeout.into()), ..Fake::holding(1.0) };
        let e = write_if_unchanged(&lost, &LINE, 1.0, 2.0).await.unwrap_err();
        assert_eq!((e.step, e.may_have_applied()), (Step::Write, true));
        assert!(e.to_string().starts_with("writing the line failed: "), "{e}");

        let forbidden = UpstreamError::Forbidden {
            upstream: "fake".into(),
            endpoint: "PATCH /line".into(),
            credential: "keys".into(),
            message: "no Edit".into(),
        };
        let refused = Fake { fail: Some(forbidden.into()), ..Fake::holding(1.0) };
        let e = write_if_unchanged(&refused, &LINE, 1.0, 2.0).await.unwrap_err();
        assert_eq!(
            (e.step, e.error.kind(), e.may_have_applied()),
            (Step::Write, "forbidden", false)
        );
    }
}
