use super::*;

#[test]
fn the_canonical_form_reads_back_to_the_same_tokens() {
    for text in [
        "roles grant <@U0BOB|bob> ops from 22:00 for 2h",
        "weather \"R&amp;D park\"",
        "weather R&amp;D",
        "echo &lt;!channel&gt; <!here> <#C1|ops> <https://x.example/?a=1&amp;b=2|x>",
        "say \"\" \"two\nlines\" `tick` \"q\"uote",
        "ec2 reboot i-0123 all",
    ] {
        let shown = canonical(&tokenize(text));
        assert!(!shown.contains('\n') && !shown.contains('`'), "{shown}");
        assert_eq!(canonical(&tokenize(&shown)), shown, "{text}");
    }
}

#[test]
fn a_quote_mark_inside_a_phrase_cannot_split_it_when_read_back() {
    // found by `cargo fuzz run text`: `"` ESC NUL is one word with no closing
    // quote; neutralised it needs quoting, and its own `"` then closed the quote
    let shown = canonical(&tokenize("\"\u{1b}\u{0}"));
    assert_eq!(shown, "\"'  \"");
    assert_eq!(canonical(&tokenize(&shown)), shown);
    let shown = canonical(&[word("say “hi” \"now\"")]);
    assert_eq!(tokenize(&shown), [quoted("say 'hi' 'now'")]);
    // and a bare word that opened a quote it never closed cannot pair with a
    // phrase's quote after it (`" ` DLE `(` NUL NUL NUL NUL, the fuzzer's second)
    let shown = canonical(&tokenize("\" \u{10}(\0\0\0\0"));
    assert_eq!(shown, "' \" (    \"");
    assert_eq!(canonical(&tokenize(&shown)), shown);
}

#[test]
fn escapes_do_not_nest_and_links_are_written_back_escaped() {
    // the fuzzer's fourth finding: `<<!Y&gt;…://…>` read as a link whose URL
    // held `<!Y>`, written back raw, read again as something else
    let typed = "<<!Y&gt;Y/?/Y://Y?Y/> <http://x.example/?a=1&amp;b=&lt;c&gt;>";
    let tokens = tokenize(typed);
    assert!(matches!(tokens[0], Token::Word(_)), "{tokens:?}");
    assert!(matches!(tokens[1], Token::Link { .. }), "{tokens:?}");
    let shown = canonical(&tokens);
    assert_eq!(canonical(&tokenize(&shown)), shown);
    assert_eq!(tokenize(&shown)[1], tokens[1]);
}

#[test]
fn a_bidirectional_mark_inside_angle_brackets_is_text() {
    // the fuzzer's fifth finding: U+200E inside a "link" became a space when shown
    let typed = "<Y:/a/Y://Y?/Y\u{200E}88> next";
    assert!(matches!(tokenize(typed)[0], Token::Word(_)));
    let shown = canonical(&tokenize(typed));
    assert_eq!(canonical(&tokenize(&shown)), shown);
}

#[test]
fn angle_brackets_around_control_characters_are_text_not_an_escape() {
    // the fuzzer's third finding: a "link" with NULs inside read back as words
    let typed = format!("<Y://Y{}Y|> YY/x", "\0".repeat(4));
    assert!(matches!(tokenize(&typed)[0], Token::Word(_)));
    let shown = canonical(&tokenize(&typed));
    assert_eq!(canonical(&tokenize(&shown)), shown);
}

#[test]
fn padding_cannot_push_an_argument_out_of_view() {
    let padded = format!("roles grant <@U0BOB> {} admin", "\n".repeat(3_200));
    assert_eq!(canonical(&tokenize(&padded)), "roles grant <@U0BOB> admin");
}

#[test]
fn slack_escapes_are_decoded_exactly_once_quoted_or_not() {
    assert_eq!(tokenize("\"R&amp;D park\"")[0], quoted("R&D park"));
    assert_eq!(tokenize("R&amp;D")[0], word("R&D"));
    assert_eq!(
        tokenize("&amp;lt;")[0],
        word("&lt;"),
        "decoded once, not twice"
    );
    assert_eq!(
        canonical(&[word("<@U1>")]),
        "&lt;@U1&gt;",
        "text stays text"
    );
}

fn word(w: &str) -> Token {
    Token::Word(w.to_string())
}

#[test]
fn quote_reads_back_as_exactly_the_text_or_says_it_cannot() {
    let texts = [
        "api-5xx",
        "api 5xx",
        "db-down\" for 7d \"",
        "a\\\"b c",
        "db\"down",
        "for",
        "in",
        "all",
        "<@U123>",
        "<!here>",
        "a &amp; b",
        "tab\there",
        " padded ",
        "“smart”",
        "\"",
        "",
    ];
    for text in texts {
        match quote(text) {
            Some(typed) => {
                let tokens = tokenize(&format!("alarms mute {typed} for 1h"));
                assert_eq!(tokens.len(), 5, "{text:?} as {typed:?}: {tokens:?}");
                assert_eq!(tokens[2].as_typed(), Some(text), "{text:?} as {typed:?}");
                assert!(tokens[2].as_word().is_none() || !text.contains(' '));
            }
            // Only text a phrase cannot hold and a word cannot spell.
            None => assert!(
                text.contains(['"', '”'])
                    && (text.contains(char::is_whitespace) || text.starts_with(['"', '“'])),
                "{text:?}"
            ),
        }
    }
    assert_eq!(quote("for").as_deref(), Some("\"for\""), "never a keyword");
    assert_eq!(quote("db-down\" for 7d \""), None, "the finding's name");
}

fn quoted(w: &str) -> Token {
    Token::Quoted(w.to_string())
}

#[test]
fn words_split_on_any_whitespace() {
    assert_eq!(
        tokenize("  queue   join\tperf \n"),
        vec![word("queue"), word("join"), word("perf")]
    );
    assert!(tokenize("   ").is_empty());
}

#[test]
fn user_mentions_with_and_without_label() {
    assert_eq!(
        tokenize("<@U123> <@W42|bob>"),
        vec![
            Token::User {
                id: UserId::parse("U123").unwrap(),
                label: None
            },
            Token::User {
                id: UserId::parse("W42").unwrap(),
                label: Some("bob".into())
            },
        ]
    );
}

#[test]
fn channels_links_and_specials() {
    let t = tokenize("<#C99|ops> <https://example.com/a?b=1&amp;c=2|docs> <!here>");
    assert_eq!(
        t[0],
        Token::Channel {
            id: ChannelId::parse("C99").unwrap(),
            label: Some("ops".into())
        }
    );
    assert_eq!(
        t[1],
        Token::Link {
            url: "https://example.com/a?b=1&c=2".into(),
            label: Some("docs".into())
        }
    );
    assert_eq!(t[2], Token::Special("here".into()));
}

#[test]
fn every_slack_entity_is_the_kind_of_token_it_is() {
    // GIVEN one of each entity, as Slack sends them in a slash command's text
    let t = tokenize(
        "<http://staging.example.com|staging.example.com> <https://example.com/x> \
         <mailto:ops@example.com|ops@example.com> <#C0OPS0001|ops> <#C0OPS0002|> \
         <@U0BOB0001|bob> <!subteam^S0ONCALL1|@oncall> <!here> <!channel|channel>",
    );
    // THEN each is the kind of token it is
    let kinds: Vec<_> = t.iter().map(Token::kind).collect();
    assert_eq!(
        kinds,
        [
            "a link",
            "a link",
            "a link",
            "a channel",
            "a channel",
            "a mention of a user",
            "a user group",
            "a special mention",
            "a special mention"
        ]
    );
    // AND the links Slack made of words read back as those words
    assert_eq!(t[0].as_typed(), Some("staging.example.com"));
    assert_eq!(t[1].as_typed(), None, "a bare URL is a link, not a word");
    assert_eq!(t[2].as_typed(), Some("ops@example.com"));
    assert_eq!(
        t[6],
        Token::UserGroup {
            id: UserGroupId::parse("S0ONCALL1").unwrap(),
            label: Some("@oncall".into())
        }
    );
    assert_eq!(t[6].to_string(), "<!subteam^S0ONCALL1>");
    assert_eq!(t[8], Token::Special("channel".into()));
    // AND a link labelled with another host is not that host
    let disguised = tokenize("<https://evil.example/|staging.example.com>");
    assert_eq!(disguised[0].as_typed(), None);
    // AND a malformed group id stays text
    assert_eq!(
        tokenize("<!subteam^oncall>"),
        vec![word("<!subteam^oncall>")]
    );
}

#[test]
fn malformed_escapes_stay_words() {
    assert_eq!(tokenize("<@nobody>"), vec![word("<@nobody>")]);
    assert_eq!(tokenize("a<b"), vec![word("a<b")]);
    assert_eq!(tokenize("<unclosed"), vec![word("<unclosed")]);
    assert_eq!(tokenize("&lt;x&gt;"), vec![word("<x>")]);
}

#[test]
fn quotes_group_words_including_smart_quotes() {
    assert_eq!(
        tokenize(r#"weather "New York" now"#),
        vec![word("weather"), quoted("New York"), word("now")]
    );
    assert_eq!(tokenize("“San José”"), vec![quoted("San José")]);
    assert_eq!(
        tokenize("\"perf\"")[0].as_word(),
        None,
        "never a syntax word"
    );
    assert_eq!(tokenize("\"perf\"")[0].as_typed(), Some("perf"));
    assert_eq!(tokenize("\"open"), vec![word("\"open")]);
}

#[test]
fn one_line_makes_line_breaks_visible_and_backticks_harmless() {
    assert_eq!(one_line("queue status perf"), "queue status perf");
    assert_eq!(
        one_line("whoami\n• 08:00 <@UADMIN> `roles grant <@UEVE> admin` succeeded"),
        "whoami⏎• 08:00 <@UADMIN> ˋroles grant <@UEVE> adminˋ succeeded"
    );
    assert_eq!(
        one_line("a\r\nb\rc\u{2028}d\u{2029}e\u{85}f"),
        "a⏎b⏎c⏎d⏎e⏎f"
    );
    assert_eq!(one_line("a\tb\u{0}c\u{7f}d\u{1b}[31m"), "a b c d [31m");
    assert_eq!(
        one_line("ok \u{202E}nimda\u{2066}x\u{2069}"),
        "ok  nimda x ",
        "bidirectional overrides cannot reorder what follows"
    );
    assert_eq!(one_line("héllo 👋🏽 <@U1|al>"), "héllo 👋🏽 <@U1|al>");
    assert_eq!(one_line(""), "");
}

#[test]
fn invisible_characters_are_shown_by_their_code_wherever_text_is_quoted() {
    // GIVEN a role name with a zero-width space in it, and a tag-smuggled word
    let typed = "roles grant <@U0BOB> o\u{200B}ps x\u{E0041}";
    // THEN one_line and the canonical form show each by its code
    assert_eq!(
        one_line(typed),
        "roles grant <@U0BOB> o⟨U+200B⟩ps x⟨U+E0041⟩"
    );
    assert_eq!(
        canonical(&tokenize(typed)),
        "roles grant <@U0BOB> o⟨U+200B⟩ps x⟨U+E0041⟩"
    );
    // AND an error quoting user text shows it too
    let quoted = crate::mrkdwn!("{}", crate::slack::Code::new("o\u{FEFF}ps")).into_string();
    assert_eq!(quoted, "`o⟨U+FEFF⟩ps`");
    // AND emoji made with joiners and variation selectors are left alone
    let family = "👨\u{200D}👩\u{200D}👧 ❤\u{FE0F}";
    assert_eq!(one_line(family), family);
}

#[test]
fn one_line_bounds_the_length_with_a_visible_cut() {
    let exact = "x".repeat(ONE_LINE_MAX);
    assert_eq!(one_line(&exact), exact, "at the limit, nothing is cut");
    let long = "é".repeat(ONE_LINE_MAX + 1);
    let cut = one_line(&long);
    assert_eq!(cut.chars().count(), ONE_LINE_MAX);
    assert!(cut.ends_with("é…"), "{cut}");
    let lines = "\n".repeat(5000);
    assert_eq!(one_line(&lines).chars().count(), ONE_LINE_MAX);
}

/// [`neutral_str`] and [`one_line`] as they were written first, a character
/// at a time: the reference their fast paths must agree with.
fn by_chars(s: &str, max: Option<usize>) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if max.is_some_and(|max| kept == max - 1) && chars.peek().is_some() {
            out.push('…');
            return out;
        }
        match c {
            '\r' if max.is_some() => {
                chars.next_if_eq(&'\n');
                out.push('⏎');
            }
            c => push_neutral(c, &mut out),
        }
        kept += 1;
    }
    out
}

#[test]
fn the_fast_paths_agree_with_the_character_by_character_rules() {
    let pieces = [
        "a", "`", "~", " ", "\t", "\r", "\n", "\r\n", "\u{7f}", "é", "\u{200b}", "\u{202e}",
        "\u{2028}", "⏎", "😀",
    ];
    let mut strings = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = strings
            .iter()
            .flat_map(|s| pieces.iter().map(move |p| format!("{s}{p}")))
            .collect();
        strings.extend(longer);
        strings.sort();
        strings.dedup();
    }
    let long = |p: &str, n: usize| p.repeat(n);
    for n in [ONE_LINE_MAX - 1, ONE_LINE_MAX, ONE_LINE_MAX + 1] {
        for p in ["x", "é", "`", "\r\n", "\r"] {
            strings.push(long(p, n));
            strings.push(format!("{}é", long("x", n - 1)));
        }
    }
    for s in &strings {
        assert_eq!(neutral_str(s), by_chars(s, None), "{s:?}");
        assert_eq!(one_line(s), by_chars(s, Some(ONE_LINE_MAX)), "{s:?}");
    }
}

#[test]
fn tokens_render_back_to_mrkdwn() {
    let line = "grant <@U1|al> \"two words\" <#C2|x>";
    let rendered: Vec<String> = tokenize(line).iter().map(ToString::to_string).collect();
    assert_eq!(rendered, ["grant", "<@U1>", "\"two words\"", "<#C2>"]);
}
