//! The integration status (§6.1) as Gradient reports it, and what each value means for the
//! operator. Gradient documents the values lower case, but a real answer may spell them
//! otherwise or carry a value nobody documented: they are read case-insensitively and an
//! unknown one is kept verbatim (shown as it came), never a parse failure (§5.2).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The integration's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrationStatus {
    /// Set up: Synthesize receives the counts.
    Active,
    /// New, or reconnected after a disconnect: nothing set up yet.
    Inactive,
    /// Keys entered; the MSP maps accounts and services. Gradient turns it `active` itself
    /// once counts arrive (§5.2, Revised 2026-12).
    Pending,
    /// Turned off in Synthesize.
    Disabled,
    /// Gradient marked it in error.
    Error,
    /// A value Gradient does not document, exactly as it was sent.
    Other(String),
}

impl IntegrationStatus {
    /// Reads a status as Gradient sent it: the five documented values in any case, anything
    /// else kept verbatim.
    pub fn parse(raw: &str) -> IntegrationStatus {
        match raw.trim().to_ascii_lowercase().as_str() {
            "active" => IntegrationStatus::Active,
            "inactive" => IntegrationStatus::Inactive,
            "pending" => IntegrationStatus::Pending,
            "disabled" => IntegrationStatus::Disabled,
            "error" => IntegrationStatus::Error,
            _ => IntegrationStatus::Other(raw.to_owned()),
        }
    }

    /// The lower-case path segment and JSON value of a documented status; an unknown one as
    /// it was sent.
    pub fn as_str(&self) -> &str {
        match self {
            IntegrationStatus::Active => "active",
            IntegrationStatus::Inactive => "inactive",
            IntegrationStatus::Pending => "pending",
            IntegrationStatus::Disabled => "disabled",
            IntegrationStatus::Error => "error",
            IntegrationStatus::Other(raw) => raw,
        }
    }

    /// What the status means for the operator, and what to do about it, in one clause.
    pub fn meaning(&self) -> String {
        match self {
            IntegrationStatus::Inactive => {
                "not set up yet, mpsync will set pending on the first push".into()
            }
            IntegrationStatus::Pending => "waiting for you to map accounts and services in \
                 Synthesize; Gradient turns it active when counts arrive"
                .into(),
            IntegrationStatus::Active => {
                "set up; Synthesize receives the counts of every mapped pair".into()
            }
            IntegrationStatus::Disabled => "turned off in Synthesize, so mpsync pushes nothing: \
                 re-enable it in Gradient Synthesize (Integrations → Mailprotector) if you want \
                 the counts there"
                .into(),
            IntegrationStatus::Error => "Gradient marked the integration in error, so mpsync \
                 pushes nothing: open it in Gradient Synthesize (Integrations → Mailprotector), \
                 reconnect it or ask Gradient support"
                .into(),
            IntegrationStatus::Other(raw) => format!(
                "a status Gradient does not document ({raw:?}); mpsync pushes without changing \
                 it: check the integration in Gradient Synthesize"
            ),
        }
    }

    /// Whether the push must not send anything in this status (the operator turned the
    /// integration off, or Gradient put it in error): it reports instead.
    pub fn blocks_push(&self) -> bool {
        matches!(self, IntegrationStatus::Disabled | IntegrationStatus::Error)
    }
}

impl std::fmt::Display for IntegrationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for IntegrationStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IntegrationStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Anything that is not text (null, a number) is kept as its JSON spelling rather
        // than failing the whole answer: the status is informational to the operator.
        let v = serde_json::Value::deserialize(d)?;
        Ok(match v {
            serde_json::Value::String(s) => IntegrationStatus::parse(&s),
            other => IntegrationStatus::Other(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_values_are_read_in_any_case_and_unknown_ones_verbatim() {
        for (raw, want) in [
            ("active", IntegrationStatus::Active),
            ("Active", IntegrationStatus::Active),
            ("PENDING", IntegrationStatus::Pending),
            (" inactive ", IntegrationStatus::Inactive),
            ("Disabled", IntegrationStatus::Disabled),
            ("error", IntegrationStatus::Error),
        ] {
            assert_eq!(IntegrationStatus::parse(raw), want, "{raw:?}");
        }
        let odd = IntegrationStatus::parse("Suspended");
        assert_eq!(odd, IntegrationStatus::Other("Suspended".into()));
        assert_eq!(odd.as_str(), "Suspended", "shown as it came");
        assert!(odd.meaning().contains("\"Suspended\""));
        let from_json: IntegrationStatus = serde_json::from_str("\"Active\"").unwrap();
        assert_eq!(from_json, IntegrationStatus::Active);
        let number: IntegrationStatus = serde_json::from_str("3").unwrap();
        assert_eq!(number.as_str(), "3");
        assert_eq!(serde_json::to_string(&IntegrationStatus::Pending).unwrap(), "\"pending\"");
    }

    #[test]
    fn each_status_tells_the_operator_what_it_means() {
        assert!(IntegrationStatus::Inactive.meaning().contains("mpsync will set pending"));
        assert!(IntegrationStatus::Pending.meaning().contains("map accounts and services"));
        assert!(IntegrationStatus::Pending.meaning().contains("turns it active"));
        assert!(IntegrationStatus::Disabled.meaning().contains("re-enable"));
        assert!(IntegrationStatus::Error.meaning().contains("reconnect"));
        assert!(
            IntegrationStatus::Disabled.blocks_push() && IntegrationStatus::Error.blocks_push()
        );
        assert!(!IntegrationStatus::Other("x".into()).blocks_push());
    }
}
