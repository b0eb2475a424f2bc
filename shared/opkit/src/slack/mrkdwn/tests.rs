use super::*;
use crate::text::{canonical, tokenize};

#[test]
fn user_text_is_escaped_exactly_once() {
    // GIVEN what a user typed, decoded by the tokenizer
    let typed = "<!channel> & <https://evil.example|docs>";
    // WHEN it is quoted in a reply
    let shown = mrkdwn!("You said {}.", UserText::new(typed));
    // THEN nothing in it is markup
    assert_eq!(
        shown,
        "You said &lt;!channel&gt; &amp; &lt;https://evil.example|docs&gt;."
    );
    assert!(!shown.contains("<!"));
}

#[test]
fn a_code_span_is_on_one_line_and_cannot_be_closed() {
    let shown = mrkdwn!("{}", Code::new("a`b\n<!here>"));
    assert_eq!(shown, "`aˋb⏎&lt;!here&gt;`");
}

#[test]
fn a_line_of_user_text_cannot_start_a_line_of_its_own() {
    let shown = mrkdwn!("• {}", UserText::line("x\n• forged & <@U1>"));
    assert_eq!(shown, "• x⏎• forged &amp; &lt;@U1&gt;");
}

#[test]
fn bot_markup_and_typed_mentions_stay_markup() {
    let user = UserId::parse("U1").unwrap();
    let channel = ChannelId::parse("C9").unwrap();
    let role = Role::parse("ops").unwrap();
    let shown = mrkdwn!("*{}* for {} in {}", role, user.mention(), channel.mention());
    assert_eq!(shown, "*ops* for <@U1> in <#C9>");
}

#[test]
fn a_command_line_shows_mentions_but_no_special_mention_or_link_live() {
    let line = canonical(&tokenize(
        "roles grant <@U1|bob> ops &lt;b&gt; <!channel> <https://x.example|label>",
    ));
    let shown = mrkdwn!("Run {}?", CommandLine::new(&line));
    assert_eq!(
        shown,
        "Run `roles grant <@U1> ops &lt;b&gt; &lt;!channel&gt; &lt;https://x.example&gt;`?"
    );
}

#[test]
fn placeholders_must_be_unnamed() {
    assert!(__unnamed_placeholders("a {} b {:>4} {{literal}}"));
    assert!(!__unnamed_placeholders("a {name}"));
    assert!(!__unnamed_placeholders("a {0}"));
    assert!(!__unnamed_placeholders("dangling {"));
    assert!(!__unnamed_placeholders("<!channel> {}"));
    assert!(!__unnamed_placeholders("a & b"));
}

#[test]
fn a_literal_is_formatting_but_its_angle_brackets_are_text() {
    assert_eq!(
        Mrkdwn::from("*Usage*: `help <command>` & more"),
        "*Usage*: `help &lt;command&gt;` &amp; more"
    );
    assert_eq!(mrkdwn!("{}", "<b>"), "&lt;b&gt;");
}

#[test]
fn cutting_never_splits_an_escape_or_an_entity() {
    let text = mrkdwn!("ab{}", UserText::new("&"));
    assert_eq!(text, "ab&amp;");
    // Room for `ab&am` and the ellipsis: the escape is left out whole.
    assert_eq!(text.cut(6), "ab…");
    let mention = mrkdwn!("hi {}", UserId::parse("U12345").unwrap().mention());
    assert_eq!(mention.cut(8), "hi …");
    assert_eq!(mention.cut(100), mention);
}

#[test]
fn cutting_counts_characters_not_bytes() {
    let text = Mrkdwn::from("ééééé");
    assert_eq!(text.cut(5), "ééééé");
    assert_eq!(text.cut(4), "ééé…");
}

#[test]
fn a_short_list_is_kept_whole() {
    let items = vec![Mrkdwn::from("• a"), Mrkdwn::from("• b")];
    assert_eq!(cut_list(items, 100, &"hint".into()), "• a\n• b");
}

#[test]
fn a_long_list_is_cut_to_its_budget_with_how_many_more_and_a_hint() {
    // GIVEN 80 lines of 30 characters (2,480 with line breaks)
    let items: Vec<Mrkdwn> = (0..80)
        .map(|i| mrkdwn!("• item {} {}", i, UserText::new("x".repeat(20))))
        .collect();
    // WHEN the list must fit in 1,000 characters
    let hint = Mrkdwn::from("Narrow it with `list <name>`.");
    let cut = cut_list(items, 1_000, &hint);
    // THEN it fits, ends with how many were left out and the hint
    assert!(cut.chars() <= 1_000, "{}", cut.chars());
    let last = cut.lines().last().unwrap();
    let kept = cut.lines().count() - 1;
    assert_eq!(last, format!("…and {} more. {hint}", 80 - kept));
    // AND every line kept is whole
    assert!(cut.lines().take(kept).all(|l| l.ends_with(&"x".repeat(20))));
}

#[test]
fn an_item_longer_than_the_budget_is_cut_safely() {
    let items = vec![mrkdwn!("{}", UserText::new("<".repeat(500)))];
    let cut = cut_list(items, 100, &"hint".into());
    assert!(cut.chars() <= 100);
    let first = cut.lines().next().unwrap();
    assert!(first.ends_with("&lt;…"), "{first}");
}

#[test]
fn a_link_escapes_its_url_and_label() {
    let shown = link("https://x.example/?a=1&b=<2>", &UserText::new("a|b <c>"));
    assert_eq!(
        shown,
        "<https://x.example/?a=1&amp;b=&lt;2&gt;|a¦b &lt;c&gt;>"
    );
}

/// [`cut_point`] as it was written first, a character at a time: the reference
/// its byte-wise reading must agree with.
fn cut_point_by_chars(s: &str, max: usize) -> Option<usize> {
    let mut open = None;
    for (count, (i, c)) in s.char_indices().enumerate() {
        if count == max {
            return Some(open.unwrap_or(i));
        }
        match c {
            '<' => open = Some(i),
            '&' if open.is_none() => open = Some(i),
            '>' => open = None,
            ';' if open.is_some_and(|o| s[o..].starts_with('&')) => open = None,
            c if c.is_whitespace() && open.is_some_and(|o| s[o..].starts_with('&')) => open = None,
            _ => {}
        }
    }
    None
}

#[test]
fn cutting_byte_wise_agrees_with_cutting_character_by_character() {
    // Every string of up to 5 pieces from an alphabet of what decides a cut
    // (ASCII and not, whitespace of both kinds, escapes and entities), at every
    // length.
    let pieces = [
        "a", "é", "•", "<", ">", "&", ";", " ", "\u{a0}", "\u{2028}", "&amp;", "<@U1>", "😀", "\n",
    ];
    let mut strings = vec![String::new()];
    for _ in 0..5 {
        let longer: Vec<String> = strings
            .iter()
            .flat_map(|s| pieces.iter().map(move |p| format!("{s}{p}")))
            .collect();
        strings.extend(longer.into_iter().filter(|s| s.chars().count() <= 12));
        strings.sort();
        strings.dedup();
    }
    assert!(strings.len() > 10_000, "{}", strings.len());
    for s in &strings {
        for max in 0..=s.chars().count() + 1 {
            assert_eq!(
                cut_point(s, max),
                cut_point_by_chars(s, max),
                "{s:?} at {max}"
            );
        }
    }
}
