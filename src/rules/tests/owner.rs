//! Who owns a cluster (`owner` and `owner_source` of its row): the first configured
//! tag on the cluster, then its resource group, its subscription, the subscription
//! map, the fallback.
use super::builder::*;

struct OwnerCase {
    name: &'static str,
    scenario: fn() -> Inv,
    owner: &'static str,
    source: &'static str,
}

fn mi() -> ClusterB {
    ClusterB::mi("a")
}

fn case(
    name: &'static str,
    scenario: fn() -> Inv,
    owner: &'static str,
    source: &'static str,
) -> OwnerCase {
    OwnerCase {
        name,
        scenario,
        owner,
        source,
    }
}

fn owner_cases() -> Vec<OwnerCase> {
    vec![
        case(
            "a cluster tag, preferred keys first, the value trimmed",
            || {
                Inv::new()
                    .cluster(mi().tag("contact", "c@x").tag("owner", " o@x "))
                    .resource_group_tag("owner", "rg@x")
            },
            "o@x",
            "cluster tag owner",
        ),
        case(
            "a tag key in another case, named as found",
            || Inv::new().cluster(mi().tag("OWNER-EMAIL", "e@x")),
            "e@x",
            "cluster tag OWNER-EMAIL",
        ),
        case(
            "a blank cluster tag falls through to the resource group",
            || {
                Inv::new()
                    .cluster(mi().tag("owner", "  "))
                    .resource_group_tag("Owner", "rg@x")
                    .subscription_tag("owner", "sub@x")
            },
            "rg@x",
            "resource group tag Owner",
        ),
        case(
            "the subscription's tag",
            || {
                Inv::new()
                    .cluster(mi())
                    .subscription_tag("contact", "sub@x")
                    .owners(&[(SUB, "map@x")], Some("fallback@x"))
            },
            "sub@x",
            "subscription tag contact",
        ),
        case(
            "the subscription map, by id in any case",
            || {
                Inv::new()
                    .cluster(mi())
                    .owners(&[("SUB1", "map@x")], Some("fallback@x"))
            },
            "map@x",
            "subscription map",
        ),
        case(
            "the subscription map, by name",
            || Inv::new().cluster(mi()).owners(&[("One", "name@x")], None),
            "name@x",
            "subscription map",
        ),
        case(
            "the fallback",
            || {
                Inv::new()
                    .cluster(mi())
                    .owners(&[("other", "map@x")], Some("fallback@x"))
            },
            "fallback@x",
            "fallback",
        ),
        case(
            "nobody",
            || Inv::new().cluster(mi().tag("team", "t@x")),
            "",
            "none",
        ),
    ]
}

#[test]
fn the_owner_is_the_first_source_that_names_one() {
    let mut failures = Vec::new();
    for c in owner_cases() {
        let r = (c.scenario)().report();
        let row = &r.clusters[0];
        if (row.owner.as_str(), row.owner_source.as_str()) != (c.owner, c.source) {
            failures.push(format!(
                "{}: {:?} from {:?}, expected {:?} from {:?}",
                c.name, row.owner, row.owner_source, c.owner, c.source
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
