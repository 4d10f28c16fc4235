//! The response variants: the alternatives reference §11/§12 says the client must also
//! accept, each switched on by a `variant=NAME` fault. [`Variant::ALL`] with [`Variant::name`]
//! and [`Variant::describe`] is the one list the `--fault` parser, its error text and
//! `mpsync sim --help` are generated from, so they cannot drift.

use serde::{Deserialize, Serialize};

/// One alternative shape or behaviour (see [`Variant::describe`] for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Variant {
    /// Services as the PUT-body object `{"service_types":{"hosting":..,"addons":[..]}}`.
    ServicesObject,
    /// Services as the legacy array `[{"id":1,"name":"CloudFilter","code":"cloudfilter"}, ..]`.
    ServicesArray,
    /// Services as the SDK's single `UserGroupService` object (the group's first product).
    ServicesSdk,
    /// Console ("long") product names in the shapes that use canonical names by default.
    LongNames,
    /// Product names lowercased, in every services shape.
    LowercaseNames,
    /// `user_count` counts type User (1) only.
    UserCountUsers,
    /// `user_count` counts every user type, aliases too.
    UserCountAll,
    /// No `X-Pagination` header.
    NoPagination,
    /// `X-Pagination` with `current_page` and `total_count` instead of `page` and `total`.
    PaginationAltKeys,
    /// `X-Pagination` with numbers as strings.
    PaginationStrings,
    /// Error bodies as `{"message":"..."}`.
    MessageError,
    /// Error bodies as plain text.
    TextError,
    /// Deletes answer 200 with an empty body instead of 204.
    OkDelete,
    /// Gradient: a unit count of 0 is refused with 400 `unitCount must be greater than 0`
    /// (whether the real API takes 0 is not documented; public integrations skip it).
    RefuseZeroCounts,
}

impl Variant {
    /// Every variant, in the order help texts list them.
    pub const ALL: [Variant; 14] = [
        Variant::ServicesObject,
        Variant::ServicesArray,
        Variant::ServicesSdk,
        Variant::LongNames,
        Variant::LowercaseNames,
        Variant::UserCountUsers,
        Variant::UserCountAll,
        Variant::NoPagination,
        Variant::PaginationAltKeys,
        Variant::PaginationStrings,
        Variant::MessageError,
        Variant::TextError,
        Variant::OkDelete,
        Variant::RefuseZeroCounts,
    ];

    /// The name `variant=NAME` and the `/_sim/faults` JSON use.
    pub const fn name(self) -> &'static str {
        // Exhaustive: a new variant does not compile until it has a name (add it to ALL too;
        // a test checks that every name round-trips and ALL has no gaps in serde's view).
        match self {
            Variant::ServicesObject => "services_object",
            Variant::ServicesArray => "services_array",
            Variant::ServicesSdk => "services_sdk",
            Variant::LongNames => "long_names",
            Variant::LowercaseNames => "lowercase_names",
            Variant::UserCountUsers => "user_count_users",
            Variant::UserCountAll => "user_count_all",
            Variant::NoPagination => "no_pagination",
            Variant::PaginationAltKeys => "pagination_alt_keys",
            Variant::PaginationStrings => "pagination_strings",
            Variant::MessageError => "message_error",
            Variant::TextError => "text_error",
            Variant::OkDelete => "ok_delete",
            Variant::RefuseZeroCounts => "refuse_zero_counts",
        }
    }

    /// What the variant changes, one line, for help texts.
    pub const fn describe(self) -> &'static str {
        match self {
            Variant::ServicesObject => "services as {\"service_types\":{\"hosting\",\"addons\"}}",
            Variant::ServicesArray => "services as the legacy array [{id,name,code}]",
            Variant::ServicesSdk => "services as one SDK record (the first product)",
            Variant::LongNames => "console names in services_object and services_array",
            Variant::LowercaseNames => "product names lowercased in every services shape",
            Variant::UserCountUsers => "user_count counts type User (1) only",
            Variant::UserCountAll => "user_count counts every user type, aliases too",
            Variant::NoPagination => "no X-Pagination header",
            Variant::PaginationAltKeys => "X-Pagination keyed current_page/total_count",
            Variant::PaginationStrings => "X-Pagination numbers as strings",
            Variant::MessageError => "error bodies as {\"message\":..}",
            Variant::TextError => "error bodies as plain text",
            Variant::OkDelete => "deletes answer 200 with an empty body instead of 204",
            Variant::RefuseZeroCounts => "Gradient: a unit count of 0 answers 400",
        }
    }

    /// The variant called `name`; the error says what to use instead.
    pub fn from_name(name: &str) -> Result<Variant, String> {
        if let Some(v) = Variant::ALL.into_iter().find(|v| v.name() == name) {
            return Ok(v);
        }
        if name == "no_content_delete" {
            return Err("variant no_content_delete was removed: deletes answer 204 by default \
                 now (reference §12 #7); use variant=ok_delete for the alternative, 200 with an \
                 empty body"
                .into());
        }
        let known: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
        Err(format!("unknown variant {name:?}; known variants: {}", known.join(", ")))
    }
}

impl TryFrom<String> for Variant {
    type Error = String;

    fn try_from(name: String) -> Result<Variant, String> {
        Variant::from_name(&name)
    }
}

/// Every variant as `  name  description` lines, for `--fault` help and errors.
pub fn variant_lines() -> String {
    let width = Variant::ALL.iter().map(|v| v.name().len()).max().unwrap_or(0);
    let lines: Vec<String> =
        Variant::ALL.iter().map(|v| format!("    {:width$}  {}", v.name(), v.describe())).collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_the_parser() {
        for v in Variant::ALL {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::json!(v.name()), "{v:?}");
            assert_eq!(serde_json::from_value::<Variant>(json).unwrap(), v);
            assert_eq!(Variant::from_name(v.name()), Ok(v));
        }
        let mut names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Variant::ALL.len(), "no variant listed twice");
    }

    #[test]
    fn the_removed_and_unknown_names_say_what_to_use() {
        let e = Variant::from_name("no_content_delete").unwrap_err();
        assert!(e.contains("ok_delete") && e.contains("204"), "{e}");
        let e = serde_json::from_value::<Variant>(serde_json::json!("no_content_delete"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ok_delete"), "{e}");
        let e = Variant::from_name("sideways").unwrap_err();
        assert!(e.contains("services_object") && e.contains("ok_delete"), "{e}");
    }

    #[test]
    fn every_variant_has_a_help_line() {
        let lines = variant_lines();
        for v in Variant::ALL {
            assert!(lines.contains(v.name()) && lines.contains(v.describe()), "{v:?}");
        }
        assert_eq!(lines.lines().count(), Variant::ALL.len());
    }
}
