//! The generator: deterministic per seed, realistic mixes present, ground truth consistent with
//! the data, and mutations moving the ground truth the way a user would expect.

use mpsync::sim::dataset::{DomainStatus, UNKNOWN_PRODUCT};
use mpsync::sim::{Dataset, Services};

fn fingerprint(ds: &Dataset) -> String {
    let mut s = String::new();
    for c in ds.customers().values() {
        s.push_str(&format!("c{}:{}:{}:{};", c.id, c.name, c.reseller_id, c.updated_at));
    }
    for d in ds.domains().values() {
        s.push_str(&format!("d{}:{}:{}:{:?};", d.id, d.name, d.customer_id, d.parent));
    }
    for g in ds.groups().values() {
        s.push_str(&format!(
            "g{}:{}:{:?}:{}:{};",
            g.id,
            g.name,
            g.services,
            g.user_count(),
            g.alias_count()
        ));
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
