//! AWS region codes: which words are regions, and which regions exist.

/// The regions AWS lists as of 2026 ("Regions and Availability Zones", AWS
/// General Reference), in the `aws`, `aws-cn`, `aws-us-gov` and
/// `aws-eusc` partitions. A region launched later is admitted by naming it as an
/// account's `region` in `OPKIT_ACCOUNTS` ([`super::AccountBook::knows_region`]).
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Whether `word` has the shape of a region code: lower-case letter groups
/// joined by `-`, ending in a number (`us-west-2`, `us-gov-east-1`,
/// `eusc-de-east-1`), at least three parts.
pub fn is_region_shaped(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    let Some((last, groups)) = parts.split_last() else {
        return false;
    };
    parts.len() >= 3
        && !last.is_empty()
        && last.len() <= 2
        && last.chars().all(|c| c.is_ascii_digit())
        && groups
            .iter()
            .all(|g| (2..=12).contains(&g.len()) && g.chars().all(|c| c.is_ascii_lowercase()))
}

/// Whether AWS lists `region` ([`KNOWN_REGIONS`]).
pub fn is_known_region(region: &str) -> bool {
    KNOWN_REGIONS.contains(&region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_region_is_region_shaped() {
        for region in KNOWN_REGIONS {
            assert!(is_region_shaped(region), "{region}");
        }
        let mut sorted = KNOWN_REGIONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, KNOWN_REGIONS, "sorted, once each");
    }

    #[test]
    fn shapes_that_are_not_regions() {
        for word in [
            "prod",
            "us-west",
            "us-west-",
            "US-WEST-2",
            "us_west_2",
            "a-b-1",
            "us-west-123",
            "-us-2",
            "",
        ] {
            assert!(!is_region_shaped(word), "{word:?}");
        }
        assert!(is_region_shaped("us-west-9"), "shaped, though unknown");
        assert!(!is_known_region("us-west-9"));
    }
}
