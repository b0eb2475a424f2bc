//! An alias is seen through: what keeps its target off a schedule keeps the
//! alias off too, and `can` names the gate its target will ask for (tester F8,
//! F9: `schedule add … reboot-web` was accepted for an alias of a confirmed
//! command and of `confirm <id>`, and `can` said a plain yes).

use super::tests::{bot, load};
use crate::engine::Resolution;
use crate::text::tokenize;

const FILE: &str = r#"
[[command]]
name = "roll-web"
command = "roles revoke <@UBOB> ops"

[[command]]
name = "yes-please"
command = "confirm 1234abcd"

[[command]]
name = "me"
command = "whoami"
"#;

#[tokio::test]
async fn an_alias_is_kept_off_a_schedule_as_its_target_is() {
    let t = bot(&load(FILE, &[]).unwrap());
    let unattended = |text: &str| match t.bot.registry().resolve(&tokenize(text)) {
        Resolution::Matched { command, .. } => command.unattended().map_err(|m| m.to_string()),
        _ => panic!("{text} is not a command"),
    };
    let gated = unattended("roll-web").unwrap_err();
    assert!(
        gated.contains("runs roles revoke") && gated.contains("asks for a confirmation"),
        "{gated}"
    );
    let decision = unattended("yes-please").unwrap_err();
    assert!(
        decision.contains("runs confirm 1234abcd, which decides a request"),
        "{decision}"
    );
    assert_eq!(unattended("me"), Ok(()));
}

#[tokio::test]
async fn can_names_the_gate_an_aliases_target_asks_for() {
    let t = bot(&load(FILE, &[]).unwrap());
    let answer = t.text("UADMIN", "can <@UADMIN> roll-web").await;
    assert!(answer.starts_with("Yes"), "{answer}");
    assert!(
        answer.contains("It asks for a confirmation first"),
        "{answer}"
    );
    let plain = t.text("UADMIN", "can <@UADMIN> me").await;
    assert!(!plain.contains("confirmation"), "{plain}");
}

#[tokio::test]
async fn a_role_is_read_in_any_case_admin_too() {
    // tester F20: `access = [["Admin"]]` loaded, said "you need admin", and
    // refused every admin
    let file = r#"
[[command]]
name = "me too"
access = [["Admin"]]
command = "whoami"
"#;
    let t = bot(&load(file, &[]).unwrap());
    let answer = t.text("UADMIN", "me too").await;
    assert!(answer.contains("<@UADMIN>"), "{answer}");
    let refused = t.text("UCAROL", "me too").await;
    assert!(refused.contains("you need admin"), "{refused}");
}
