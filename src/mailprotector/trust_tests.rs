//! The reliance rule: user_count stands in only after an agreeing comparison for exactly the
//! counted types, only while it is fresh, and only where the user-group walk is cheaper.

use chrono::TimeZone;

use super::*;

fn at(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + chrono::TimeDelta::hours(h)
}

fn users() -> CountedTypes {
    CountedTypes::default()
}

/// Every known type present on the account.
fn all_types() -> BTreeSet<u64> {
    BTreeSet::from([1, 2, 3, 11])
}

/// Sizes where the user-group walk (20 calls) is cheaper than the listing (50 pages).
fn groups_cheaper(check: Option<UserCountCheck>) -> WalkStats {
    WalkStats { users_listed: 5_000, user_count: check, ..WalkStats::default() }
}

fn agreed_at(h: i64) -> UserCountCheck {
    UserCountCheck {
        types: vec![1],
        agrees: true,
        checked_at: at(h),
        groups_compared: 3,
        groups_differing: 0,
        inconclusive: false,
        example: None,
    }
}

#[test]
fn nothing_is_relied_on_before_a_comparison() {
    assert_eq!(choose_walk(&WalkStats::default(), &users(), 20, at(0)), Walk::Users);
    assert_eq!(choose_walk(&groups_cheaper(None), &users(), 20, at(0)), Walk::Users);
    assert!(should_compare(&groups_cheaper(None), &users(), 20, at(0)));
    assert!(
        !should_compare(&groups_cheaper(None), &users(), 500, at(0)),
        "no comparison where the user listing is cheaper anyway"
    );
    assert!(!should_compare(&WalkStats::default(), &users(), 20, at(0)), "size unknown");
}

#[test]
fn an_agreeing_comparison_is_relied_on_for_a_day() {
    let stats = groups_cheaper(Some(agreed_at(0)));
    assert_eq!(choose_walk(&stats, &users(), 20, at(1)), Walk::UserGroups);
    assert!(!should_compare(&stats, &users(), 20, at(1)));
    assert_eq!(choose_walk(&stats, &users(), 20, at(23)), Walk::UserGroups);
    assert_eq!(choose_walk(&stats, &users(), 20, at(24)), Walk::Users, "due after 24 hours");
    assert!(should_compare(&stats, &users(), 20, at(24)));
    assert_eq!(choose_walk(&stats, &users(), 20, at(-1)), Walk::Users, "the clock went back");
    assert_eq!(
        choose_walk(&stats, &users(), 500, at(1)),
        Walk::Users,
        "the cheaper walk is the listing"
    );
}

#[test]
fn a_comparison_holds_only_for_the_types_it_was_made_for() {
    let stats = groups_cheaper(Some(agreed_at(0)));
    let wider = CountedTypes::new([1, 3]).unwrap();
    assert_eq!(choose_walk(&stats, &wider, 20, at(1)), Walk::Users);
    assert!(should_compare(&stats, &wider, 20, at(1)));
}

#[test]
fn a_difference_stops_the_reliance_until_a_later_comparison() {
    let mut differs = agreed_at(0);
    differs.agrees = false;
    let stats = groups_cheaper(Some(differs));
    assert_eq!(choose_walk(&stats, &users(), 20, at(1)), Walk::Users);
    assert!(!should_compare(&stats, &users(), 20, at(1)), "not compared again at once");
    assert!(should_compare(&stats, &users(), 20, at(25)), "compared again a day later");
}

#[test]
fn comparison_finds_every_difference() {
    let listed = [
        ListedGroup { group: 10, customer: 1, user_count: Ok(3) },
        ListedGroup { group: 11, customer: 1, user_count: Ok(0) },
        ListedGroup { group: 12, customer: 2, user_count: Ok(5) },
    ];
    let equal = HashMap::from([(10, 3), (12, 5)]);
    let c = compare(&listed, &equal, &all_types(), &users(), at(0));
    assert!(c.agrees);
    assert_eq!((c.groups_compared, c.groups_differing), (3, 0));
    assert_eq!(c.example, None);

    // One User, one Mailing List and one Unlicensed User: user_count 3, one counted.
    let listed = [ListedGroup { group: 10, customer: 1, user_count: Ok(3) }];
    let c = compare(&listed, &HashMap::from([(10, 1)]), &all_types(), &users(), at(0));
    assert!(!c.agrees);
    assert_eq!(c.groups_differing, 1);
    assert_eq!(
        c.example.as_deref(),
        Some("user group 10 of customer 1: user_count 3, 1 user(s) of type User (1)")
    );

    // Users in a group no listing showed.
    let c = compare(&listed, &HashMap::from([(10, 3), (99, 2)]), &all_types(), &users(), at(0));
    assert!(!c.agrees);
    assert_eq!((c.groups_compared, c.groups_differing), (2, 1));
    assert!(c.example.unwrap().contains("user group 99 has 2 counted user(s)"));

    // An unreadable user_count is a difference, never a zero.
    let listed = [ListedGroup {
        group: 10,
        customer: 1,
        user_count: Err("user group 10 has no user_count".into()),
    }];
    let c = compare(&listed, &HashMap::from([(10, 0)]), &all_types(), &users(), at(0));
    assert!(!c.agrees);
    assert_eq!(c.example.as_deref(), Some("user group 10 has no user_count"));
}

#[test]
fn equality_without_users_of_an_uncounted_type_proves_nothing() {
    let listed = [ListedGroup { group: 10, customer: 1, user_count: Ok(3) }];
    let no_lists = BTreeSet::from([1, 2, 11]);
    let c = compare(&listed, &HashMap::from([(10, 3)]), &no_lists, &users(), at(0));
    assert!(!c.agrees && c.inconclusive);
    assert_eq!(c.groups_differing, 0);
    assert_eq!(
        c.example.as_deref(),
        Some(
            "the account has no users of type Mailing List (3), so whether user_count counts them is unknown"
        )
    );
    let stats = groups_cheaper(Some(c.clone()));
    assert_eq!(choose_walk(&stats, &users(), 20, at(1)), Walk::Users);
    let n = note(Walk::Users, Some(&c), true, &users());
    assert_eq!(n.state, UserCountState::Inconclusive);
    assert!(n.detail.contains("no users of type Mailing List (3)"), "{}", n.detail);
    // Counting mailing lists too, their absence no longer matters.
    let wider = CountedTypes::new([1, 3]).unwrap();
    let c = compare(&listed, &HashMap::from([(10, 3)]), &no_lists, &wider, at(0));
    assert!(c.agrees && !c.inconclusive);
}

#[test]
fn the_note_says_what_happened() {
    let n = note(Walk::Users, None, false, &users());
    assert!(!n.relied_on);
    assert_eq!(n.state, UserCountState::Unchecked);
    assert!(n.detail.contains("not been compared"), "{}", n.detail);

    let ok = agreed_at(0);
    let n = note(Walk::UserGroups, Some(&ok), false, &users());
    assert!(n.relied_on);
    assert_eq!(n.state, UserCountState::Agrees);
    assert!(n.detail.contains("stood in for the per-user count"), "{}", n.detail);
    assert_eq!(n.checked_at, Some(at(0)));

    let mut bad = agreed_at(0);
    bad.agrees = false;
    bad.groups_differing = 2;
    bad.example =
        Some("user group 10 of customer 1: user_count 3, 1 user(s) of type User (1)".into());
    let n = note(Walk::Users, Some(&bad), true, &users());
    assert!(!n.relied_on);
    assert_eq!(n.state, UserCountState::Differs);
    assert!(n.checked_this_run);
    assert!(
        n.detail.contains("differs from the per-user count of User (1) on 2 of 3"),
        "{}",
        n.detail
    );
    assert!(n.detail.contains("user group 10 of customer 1"), "{}", n.detail);
}
