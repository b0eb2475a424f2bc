//! The setting's format, the `in …` parser and the resolution, GIVEN / WHEN / THEN.

use super::*;
use opkit::text::tokenize;

const BOOK: &str = r#"{
    "prod": {"role_arn": "arn:aws:iam::111111111111:role/opkit", "region": "us-west-2",
             "external_id": "opkit-7f3a"},
    "staging": {"role_arn": "arn:aws:iam::222222222222:role/ops/opkit"},
    "tools": {"region": "eu-west-1"}
}"#;

fn book() -> AccountBook {
    AccountBook::parse(BOOK).expect("the example parses")
}

fn split(text: &str) -> Result<(String, InClause), String> {
    split_in(&Args::new(tokenize(text)), &book())
        .map(|(rest, clause)| (rest.rest(0), clause))
        .map_err(|e| e.to_string())
}

fn clause(account: Option<&str>, region: Option<&str>) -> InClause {
    InClause {
        account: account.map(str::to_string),
        region: region.map(str::to_string),
    }
}

#[test]
fn the_documented_setting_parses_with_ids_regions_and_the_bots_own_account() {
    let book = book();
    let prod = book.get("PROD").expect("names are read in any case");
    assert_eq!(prod.account_id(), Some("111111111111"));
    assert_eq!(prod.region.as_deref(), Some("us-west-2"));
    assert_eq!(prod.external_id.as_deref(), Some("opkit-7f3a"));
    let staging = book.get("staging").unwrap();
    assert_eq!(staging.account_id(), Some("222222222222"), "a role path");
    assert_eq!(staging.region, None);
    assert_eq!(book.own().map(|a| a.name.as_str()), Some("tools"));
    assert!(
        !format!("{prod:?}").contains("7f3a"),
        "the external id is not printed"
    );
}

#[test]
fn a_bad_setting_is_refused_naming_the_account_and_the_reason() {
    let cases = [
        ("[1]", "expected a JSON object"),
        (r#"{"prod": {"rolearn": "x"}}"#, "unknown field `rolearn`"),
        (
            r#"{"prod": {"role_arn": "arn:aws:iam::1111:role/x"}}"#,
            "`prod`: `arn:aws:iam::1111:role/x` is not an IAM role ARN",
        ),
        (
            r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:user/x"}}"#,
            "not an IAM role ARN",
        ),
        (
            r#"{"prod": {"role_arn": "arn:aws:s3:::bucket"}}"#,
            "not an IAM role ARN",
        ),
        (r#"{"Prod": {}}"#, "`Prod`: a name is 1 to 32"),
        (r#"{"none": {}}"#, "reserved"),
        (r#"{"us-west-2": {}}"#, "reserved"),
        (
            r#"{"prod": {"region": "oregon"}}"#,
            "`oregon` is not a region code",
        ),
        (
            r#"{"prod": {"external_id": "abc"}}"#,
            "external_id needs a role_arn",
        ),
        (
            r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/x", "external_id": "a b"}}"#,
            "external_id must be",
        ),
        (
            r#"{"a": {}, "b": {}}"#,
            "accounts `a` and `b` both have no role_arn",
        ),
    ];
    for (json, expected) in cases {
        let err = AccountBook::parse(json).expect_err(json);
        assert!(err.contains(expected), "{json}: {err}");
    }
}

#[test]
fn an_account_named_twice_is_refused_naming_it_not_the_last_kept() {
    // The finding (F8): JSON allows a name twice, a map keeps the last silently.
    let twice = r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/opkit"},
                    "prod": {"role_arn": "arn:aws:iam::333333333333:role/opkit"}}"#;
    let err = AccountBook::parse(twice).unwrap_err();
    assert_eq!(err, "account `prod` is named twice: name each account once");
    // AND whatever else the entries say, the name is what is refused
    let err = AccountBook::parse(
        r#"{"tools": {}, "staging": {"role_arn": "arn:aws:iam::222222222222:role/o"}, "tools": {}}"#,
    )
    .unwrap_err();
    assert!(err.starts_with("account `tools` is named twice"), "{err}");
    // AND the settings name the variable
    let err = crate::settings::Settings::from_lookup(|k| (k == SETTING).then(|| twice.to_string()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("OPKIT_ACCOUNTS is invalid: account `prod` is named twice"),
        "{err}"
    );
}

#[test]
fn an_accounts_region_aws_does_not_list_is_kept_with_a_warning_and_did_you_mean() {
    let book = AccountBook::parse(
        r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/o", "region": "us-wset-2"},
            "lab": {"role_arn": "arn:aws:iam::333333333333:role/o", "region": "xx-new-1"},
            "tools": {"region": "eu-west-1"}}"#,
    )
    .expect("an unlisted region is accepted: a region launched later must be nameable");
    let prod = book.get("prod").unwrap().unlisted_region().unwrap();
    assert_eq!(prod.nearest, Some("us-west-2"));
    assert_eq!(
        prod.note().as_str(),
        "`us-wset-2` is not a region AWS lists (did you mean `us-west-2`?)"
    );
    let lab = book.get("lab").unwrap().unlisted_region().unwrap();
    assert_eq!(lab.nearest, None);
    assert!(book.get("tools").unwrap().unlisted_region().is_none());
    assert_eq!(
        book.warnings(),
        [
            "OPKIT_ACCOUNTS: account `lab`: `xx-new-1` is not a region AWS lists (a region \
             launched after this bot was built?); it is used as written",
            "OPKIT_ACCOUNTS: account `prod`: `us-wset-2` is not a region AWS lists (did you \
             mean `us-west-2`?); it is used as written",
        ]
    );
}

#[test]
fn no_in_words_leave_the_arguments_alone() {
    assert_eq!(
        split("env=prod web").unwrap(),
        ("env=prod web".into(), InClause::default())
    );
    assert_eq!(split("").unwrap(), (String::new(), InClause::default()));
}

#[test]
fn in_takes_an_account_a_region_or_both_in_either_order_anywhere() {
    assert_eq!(
        split("in prod").unwrap(),
        (String::new(), clause(Some("prod"), None))
    );
    assert_eq!(
        split("in us-east-2").unwrap(),
        (String::new(), clause(None, Some("us-east-2")))
    );
    assert_eq!(
        split("alarm in staging us-west-2").unwrap(),
        ("alarm".into(), clause(Some("staging"), Some("us-west-2")))
    );
    assert_eq!(
        split("IN US-WEST-2 Staging").unwrap(),
        (String::new(), clause(Some("staging"), Some("us-west-2"))),
        "any case"
    );
    assert_eq!(
        split("AWS/EC2 CPUUtilization in prod last 1d").unwrap(),
        (
            "AWS/EC2 CPUUtilization last 1d".into(),
            clause(Some("prod"), None)
        ),
        "the words after the clause stay arguments"
    );
}

#[test]
fn a_quoted_in_or_a_last_in_is_an_argument() {
    assert_eq!(split("\"in\" prod").unwrap().1, InClause::default());
    assert_eq!(
        split("orders in").unwrap(),
        ("orders in".into(), InClause::default())
    );
    assert_eq!(split("in \"prod\"").unwrap().1, InClause::default());
}

#[test]
fn an_unknown_account_gets_did_you_mean_and_the_list() {
    let err = split("in prdo").unwrap_err();
    assert!(
        err.contains("I know no AWS account `prdo`. Did you mean `prod`?"),
        "{err}"
    );
    assert!(err.contains("`prod`, `staging`, `tools`"), "{err}");
    let err = split("in qa").unwrap_err();
    assert!(
        err.contains("I know no AWS account or region `qa`"),
        "{err}"
    );
    assert!(err.contains("quote it"), "{err}");
}

#[test]
fn an_unknown_region_is_refused_clearly_with_the_nearest_one() {
    let err = split("in us-wst-2").unwrap_err();
    assert!(
        err.contains("I know no AWS region `us-wst-2`. Did you mean `us-west-2`?"),
        "{err}"
    );
    let err = split("in prod us-west-9").unwrap_err();
    assert!(err.contains("I know no AWS region `us-west-9`"), "{err}");
}

#[test]
fn a_region_named_in_the_setting_is_known_though_aws_launched_it_later() {
    let book = AccountBook::parse(
        r#"{"lab": {"role_arn": "arn:aws:iam::333333333333:role/x", "region": "xx-new-1"}}"#,
    )
    .unwrap();
    let (_, clause) = split_in(&Args::new(tokenize("in xx-new-1")), &book).unwrap();
    assert_eq!(clause.region.as_deref(), Some("xx-new-1"));
}

#[test]
fn two_accounts_two_regions_or_two_clauses_are_refused() {
    assert!(
        split("in prod staging")
            .unwrap_err()
            .contains("one account and one region")
    );
    assert!(
        split("in us-east-1 us-east-2")
            .unwrap_err()
            .contains("one account and one region")
    );
    assert!(split("in prod x in staging").unwrap_err().contains("once"));
}

#[test]
fn without_named_accounts_in_takes_regions_and_says_so_for_anything_else() {
    let empty = AccountBook::empty();
    let (_, clause) = split_in(&Args::new(tokenize("in eu-west-3")), &empty).unwrap();
    assert_eq!(clause.region.as_deref(), Some("eu-west-3"));
    let err = split_in(&Args::new(tokenize("in prod")), &empty)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no accounts are configured here (`OPKIT_ACCOUNTS`)"),
        "{err}"
    );
}

#[test]
fn the_target_is_the_typed_account_else_the_channels_else_the_bots_own() {
    let book = book();
    let name = |t: &Target<'_>| t.account.map(|a| a.name.clone());
    // GIVEN nothing typed and no channel default THEN the named own account, its region
    let t = book.target(&InClause::default(), None).unwrap();
    assert_eq!(
        (name(&t), t.region.clone()),
        (Some("tools".into()), Some("eu-west-1".into()))
    );
    // GIVEN a channel default THEN it, in its region
    let t = book.target(&InClause::default(), Some("prod")).unwrap();
    assert_eq!(
        (name(&t), t.region.clone()),
        (Some("prod".into()), Some("us-west-2".into()))
    );
    // GIVEN a typed region only THEN the channel's account in that region
    let t = book
        .target(&clause(None, Some("us-east-2")), Some("prod"))
        .unwrap();
    assert_eq!(
        (name(&t), t.region.clone()),
        (Some("prod".into()), Some("us-east-2".into()))
    );
    // GIVEN a typed account THEN it wins over the channel's
    let t = book
        .target(&clause(Some("staging"), None), Some("prod"))
        .unwrap();
    assert_eq!((name(&t), t.region.clone()), (Some("staging".into()), None));
    // GIVEN a channel default no longer configured THEN a refusal, not a silent fallback
    let err = book
        .target(&InClause::default(), Some("gone"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("default AWS account is `gone`, which is no longer configured"),
        "{err}"
    );
    // GIVEN no named accounts THEN the bot's own, the deployment's region
    let empty = AccountBook::empty();
    let t = empty.target(&InClause::default(), None).unwrap();
    assert_eq!((t.account, t.region), (None, None));
}

#[test]
fn replies_name_the_account_and_the_region() {
    let book = book();
    assert_eq!(
        book.describe(book.get("prod"), "us-west-2"),
        "account prod, us-west-2"
    );
    assert_eq!(
        AccountBook::empty().describe(None, "eu-west-3"),
        "eu-west-3",
        "one account: the region says it"
    );
    let no_own =
        AccountBook::parse(r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/x"}}"#)
            .unwrap();
    assert_eq!(
        no_own.describe(None, "us-east-1"),
        "the bot's own account, us-east-1"
    );
}
