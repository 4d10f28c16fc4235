//! The generator: deterministic per seed, realistic mixes present (all four user types),
//! ground truth consistent with the data under any counting rule, and mutations moving the
//! ground truth the way a user would expect.

use std::collections::BTreeMap;

use mpsync_sim::dataset::{DomainStatus, FIXTURE_GROUP, UNKNOWN_PRODUCT, UserGroup};
use mpsync_sim::{Dataset, Services, SimError, UserKind};

/// Customer → product → users of `types`, summed from the groups themselves (not through the
/// truth functions under test): the per-user counting rule, for the listed customers.
fn truth_by_hand(ds: &Dataset, types: &[u64]) -> BTreeMap<u64, BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for c in ds.main_customers() {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let groups: Vec<&UserGroup> = ds
            .domains_of_customer(c)
            .into_iter()
            .filter(|d| ds.domains()[d].parent.is_none())
            .flat_map(|d| ds.groups_of_domain(d))
            .map(|g| &ds.groups()[&g])
            .collect();
        for g in groups {
            let n: u64 = UserKind::ALL
                .iter()
                .filter(|k| types.contains(&k.id()))
                .map(|k| g.count_kind(*k))
                .sum();
            for p in g.services.products() {
                if n > 0 {
                    *counts.entry(p.to_owned()).or_insert(0) += n;
                }
            }
        }
        out.insert(c, counts);
    }
    out
}

fn fingerprint(ds: &Dataset) -> String {
    let mut s = String::new();
    for c in ds.customers().values() {
        s.push_str(&format!("c{}:{}:{}:{};", c.id, c.name, c.reseller_id, c.updated_at));
    }
    for d in ds.domains().values() {
        s.push_str(&format!("d{}:{}:{}:{:?};", d.id, d.name, d.customer_id, d.parent));
    }
    for g in ds.groups().values() {
        let by_kind: Vec<u64> = UserKind::ALL.iter().map(|k| g.count_kind(*k)).collect();
        s.push_str(&format!("g{}:{}:{:?}:{by_kind:?};", g.id, g.name, g.services));
    }
    s.push_str(ds.reseller_key());
    s
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let a = Dataset::generate(42, 200);
    let b = Dataset::generate(42, 200);
    let c = Dataset::generate(43, 200);
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_eq!(a.expected_counts(), b.expected_counts());
    assert_eq!(a.expected_counts_for(&[1, 3, 11]), b.expected_counts_for(&[1, 3, 11]));
    assert_ne!(fingerprint(&a), fingerprint(&c));
    assert_ne!(a.reseller_key(), c.reseller_key());
}

#[test]
fn the_mix_has_every_edge_case_the_client_must_handle() {
    let ds = Dataset::generate(9, 120);
    let main = ds.main_customers();
    assert_eq!(main.len(), 120);
    assert_eq!(&main[..2], &[329, 7114]);
    assert_eq!(ds.reseller_id(), 188);
    let truth = ds.expected_counts();
    assert_eq!(truth.len(), 120, "every customer present, even without usage");
    assert!(truth.values().any(|c| c.is_empty()), "empty customers");
    assert!(
        ds.customers()
            .values()
            .any(|c| c.former_name.is_some() && c.updated_at > c.created_at + 86_400_000 * 300)
    );
    let aliases: Vec<_> = ds.domains().values().filter(|d| d.parent.is_some()).collect();
    assert!(!aliases.is_empty());
    assert!(
        aliases.iter().all(|d| d.status == DomainStatus::Pending && d.verification_token.is_some())
    );
    assert!(ds.groups().values().any(|g| g.services.addons.iter().any(|a| a == UNKNOWN_PRODUCT)));
    assert!(ds.groups().values().any(|g| g.user_count() == 0));
    for p in [
        "CloudFilter",
        "CloudMail",
        "SafeSend",
        "Bracket",
        "XtraMail",
        "SecureStore",
        "ContinuityBundle",
        "BracketBundle",
    ] {
        assert!(truth.values().any(|c| c.contains_key(p)), "{p} appears");
    }
    assert!(ds.customers_in_reseller(4501).len() >= 10, "a sub-reseller owns some customers");
    assert!(
        ds.customers_in_reseller(4502).iter().all(|c| !truth.contains_key(c)),
        "other reseller outside"
    );
    // A combined definition counts each group once.
    let any = ds.expected_count_any_of(&["CloudMail", "bracket"]);
    assert_eq!(any[&329], 56, "group 109 has CloudMail and Bracket but counts once");
}

#[test]
fn mutations_move_the_ground_truth() {
    let mut ds = Dataset::generate(1, 20);
    let before = ds.expected_counts();
    assert_eq!(before[&329]["CloudMail"], 56);
    ds.add_users(109, 4).unwrap();
    assert_eq!(ds.expected_counts()[&329]["Bracket"], 60);
    ds.remove_users(109, 10).unwrap();
    assert_eq!(ds.expected_counts()[&329]["CloudMail"], 50);
    ds.set_services(109, Services::new(Some("CloudFilter"), &["XtraMail"])).unwrap();
    let now = ds.expected_counts();
    assert!(!now[&329].contains_key("CloudMail"));
    assert_eq!(now[&329]["XtraMail"], 50);
    let cloudfilter_329 = now[&329]["CloudFilter"];
    ds.move_domain(102, 7114).unwrap();
    let moved = ds.expected_counts();
    assert!(moved[&329].is_empty());
    assert!(moved[&7114]["CloudFilter"] >= cloudfilter_329);
    assert!(ds.aliases_of_domain(102).iter().all(|a| ds.domains()[a].customer_id == 7114));
    ds.rename_customer(329, "Renamed Co").unwrap();
    assert_eq!(ds.customer_name(329), Some("Renamed Co"));
    let c = ds.add_customer(188, "Brand New LLC").unwrap();
    let d = ds.add_domain(c, "brandnew.example", None).unwrap();
    ds.add_group(d, "Default", Services::new(None, &["SafeSend"]), 9).unwrap();
    assert_eq!(ds.expected_counts()[&c]["SafeSend"], 9);
    assert!(ds.customer_key(c).is_some());
    assert!(ds.add_group(ds.aliases_of_domain(102)[0], "x", Services::default(), 1).is_err());
    assert!(ds.add_users(999_999, 1).is_err());
}

#[test]
fn small_datasets_hold_every_user_type_and_group_109_only_users() {
    for seed in [1, 2, 3, 7, 42] {
        for customers in [3, 20, 60] {
            let ds = Dataset::generate(seed, customers);
            let what = format!("seed {seed}, {customers} customers");
            let g109 = &ds.groups()[&FIXTURE_GROUP];
            assert_eq!((g109.user_count(), g109.count_of(&[1])), (56, 56), "{what}");
            assert_eq!(g109.count_of(&[3, 11]), 0, "{what}: 109 holds Users only");
            let main: Vec<u64> = ds.main_customers();
            let listed_groups: Vec<&UserGroup> = ds
                .groups()
                .values()
                .filter(|g| ds.customer_of_group(g.id).is_some_and(|c| main.contains(&c)))
                .collect();
            for kind in UserKind::ALL {
                assert!(listed_groups.iter().any(|g| g.count_kind(kind) > 0), "{what}: {kind:?}");
            }
            // Mailing lists and unlicensed users only join groups that have Users, and their
            // ids come after every User and alias id (they never shift the older data).
            let (mut newest_older, mut oldest_typed) = (0, u64::MAX);
            for g in ds.groups().values() {
                if g.count_of(&[3, 11]) > 0 {
                    assert!(g.count_of(&[1]) > 0, "{what}: group {} has extras only", g.id);
                }
                assert_eq!(g.user_count(), g.count_of(&[1, 3, 11]), "{what}");
                let users = ds.users_of_group(g.id);
                assert_eq!(users.len() as u64, g.listed_count(), "{what}");
                for u in users {
                    match u.kind {
                        UserKind::User | UserKind::Alias => newest_older = newest_older.max(u.id),
                        _ => oldest_typed = oldest_typed.min(u.id),
                    }
                }
            }
            assert!(newest_older < oldest_typed, "{what}: {newest_older} < {oldest_typed}");
            let t = ds.user_totals();
            assert!(t.mailing_lists > 0 && t.unlicensed_users > 0, "{what}: {t:?}");
        }
    }
}

#[test]
fn about_a_quarter_of_groups_with_users_get_lists_or_unlicensed_users() {
    let ds = Dataset::generate(11, 400);
    let with_users: Vec<&UserGroup> =
        ds.groups().values().filter(|g| g.count_of(&[1]) > 0).collect();
    let with_extras = with_users.iter().filter(|g| g.count_of(&[3, 11]) > 0).count();
    let share = with_extras as f64 / with_users.len() as f64;
    assert!((0.17..=0.33).contains(&share), "{with_extras} of {} groups", with_users.len());
    for g in &with_users {
        assert!(g.count_kind(UserKind::MailingList) <= 3, "group {}", g.id);
        assert!(g.count_kind(UserKind::UnlicensedUser) <= 5, "group {}", g.id);
    }
    let both = with_users
        .iter()
        .filter(|g| g.count_kind(UserKind::MailingList) > 0)
        .filter(|g| g.count_kind(UserKind::UnlicensedUser) > 0)
        .count();
    assert!(both > 0 && both < with_extras, "some groups get both, some one type");
}

#[test]
fn materialised_users_carry_their_type_and_a_fitting_name() {
    let ds = Dataset::generate(3, 20);
    let g = ds.groups().values().find(|g| g.count_of(&[2]) > 0 && g.count_of(&[3]) > 0);
    let g = g.or_else(|| ds.groups().values().find(|g| g.count_of(&[3]) > 0)).unwrap();
    let users = ds.users_of_group(g.id);
    let ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "ascending ids across types");
    for u in &users {
        assert_eq!(ds.find_user(u.id).as_ref(), Some(u), "find_user agrees with the listing");
        match u.kind {
            UserKind::MailingList => {
                assert!(u.name.contains('-') && !u.name.contains('.'), "list-like: {}", u.name);
                assert_eq!((u.first_name.as_str(), u.last_name.as_str()), ("", ""));
            }
            UserKind::User | UserKind::UnlicensedUser => {
                assert!(u.name.contains('.'), "person-like: {}", u.name);
                assert!(!u.first_name.is_empty() && !u.last_name.is_empty());
            }
            UserKind::Alias => assert!(u.parent.is_some()),
        }
    }
    let t = ds.user_totals();
    let every = |k: UserKind| ds.groups().values().map(|g| g.count_kind(k)).sum::<u64>();
    assert_eq!(
        (t.users, t.aliases, t.mailing_lists, t.unlicensed_users),
        (
            every(UserKind::User),
            every(UserKind::Alias),
            every(UserKind::MailingList),
            every(UserKind::UnlicensedUser)
        )
    );
}

#[test]
fn the_truth_follows_the_counting_rule() {
    let ds = Dataset::generate(42, 200);
    assert_eq!(ds.expected_counts(), truth_by_hand(&ds, &[1]), "default: User only");
    assert_eq!(ds.expected_counts_for(&[1]), ds.expected_counts());
    let wide = ds.expected_counts_for(&[1, 3, 11]);
    assert_eq!(wide, truth_by_hand(&ds, &[1, 3, 11]));
    assert_eq!(ds.expected_counts_for(&[11, 1, 3, 3]), wide, "order and repeats do not matter");
    assert_ne!(wide, ds.expected_counts(), "mailing lists and unlicensed users are counted");
    assert_eq!(ds.expected_counts_for(&[1, 2, 3, 11]), truth_by_hand(&ds, &[1, 2, 3, 11]));
    let lists_only = ds.expected_counts_for(&[3]);
    assert!(lists_only.values().any(|c| !c.is_empty()) && lists_only.len() == wide.len());
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for counts in wide.values() {
        for (p, n) in counts {
            *totals.entry(p.clone()).or_insert(0) += n;
        }
    }
    assert_eq!(ds.expected_totals_for(&[1, 3, 11]), totals);
    let any = ds.expected_count_any_of_for(&["cloudfilter"], &[1, 3, 11]);
    for (c, counts) in &wide {
        assert_eq!(any.get(c).copied(), counts.get("CloudFilter").copied(), "customer {c}");
    }
}

#[test]
fn typed_users_and_hidden_customers_move_only_their_truths() {
    let mut ds = Dataset::generate(1, 20);
    let users_only = ds.expected_counts();
    let wide = ds.expected_counts_for(&[1, 3, 11]);
    let lists = ds.add_mailing_lists(109, 2).unwrap();
    let unlicensed = ds.add_unlicensed_users(109, 3).unwrap();
    assert_eq!((lists.len(), unlicensed.len()), (2, 3));
    assert!(lists[1] < unlicensed[0], "new ids ascend");
    assert_eq!(ds.expected_counts(), users_only, "the default rule counts Users only");
    let now = ds.expected_counts_for(&[1, 3, 11]);
    assert_eq!(now[&329]["CloudMail"], wide[&329]["CloudMail"] + 5);
    assert_eq!(ds.groups()[&109].user_count(), 61);
    assert_eq!(ds.find_user(lists[0]).unwrap().kind, UserKind::MailingList);
    assert_eq!(ds.find_user(unlicensed[2]).unwrap().kind, UserKind::UnlicensedUser);
    ds.remove_users(109, 56).unwrap();
    let g = &ds.groups()[&109];
    assert_eq!((g.count_of(&[1, 2]), g.count_of(&[3]), g.count_of(&[11])), (0, 2, 3));
    assert!(!ds.expected_counts()[&329].contains_key("CloudMail"), "no Users left to count");
    assert_eq!(
        ds.add_mailing_lists(999_999, 1),
        Err(SimError::NotFound { kind: "user group", id: 999_999 })
    );

    let c = 7114;
    assert!(ds.expected_counts().contains_key(&c));
    ds.hide_customer(c).unwrap();
    assert!(ds.is_hidden(c) && ds.hidden_customers() == vec![c]);
    assert!(!ds.main_customers().contains(&c), "not listed");
    assert!(ds.customers_in_reseller(188).contains(&c), "still in the subtree");
    assert!(!ds.expected_counts().contains_key(&c), "not listed, so not counted");
    assert!(!ds.expected_counts_for(&[1, 3, 11]).contains_key(&c));
    ds.unhide_customer(c).unwrap();
    assert!(ds.expected_counts().contains_key(&c) && ds.hidden_customers().is_empty());
    assert_eq!(ds.hide_customer(1), Err(SimError::NotFound { kind: "customer", id: 1 }));
    ds.hide_customer(c).unwrap();
    ds.remove_customer(c).unwrap();
    assert!(ds.hidden_customers().is_empty(), "a removed customer is no longer hidden");
}
