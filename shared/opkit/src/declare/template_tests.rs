//! The templates' rule for each place a value lands ([`super::template`]), its
//! budget, and the names a template reads.

use minijinja::Value;

use super::template::*;

fn ctx(arg: &str) -> Value {
    Value::from_iter([
        ("arg".to_string(), Value::from(arg)),
        (
            "env".to_string(),
            Value::from_iter([(
                "BASE".to_string(),
                trusted("https://deploys.example.com/api"),
            )]),
        ),
    ])
}

#[test]
fn an_argument_in_a_path_is_one_segment_whatever_it_holds() {
    let url = "{{ env.BASE }}/services/{{ arg }}/version";
    assert_eq!(
        render(Role::Url, url, &ctx("../admin?x=1&y")).unwrap(),
        "https://deploys.example.com/api/services/..%2Fadmin%3Fx%3D1%26y/version"
    );
    assert_eq!(
        render(Role::Url, url, &ctx("a/b#c %2F")).unwrap(),
        "https://deploys.example.com/api/services/a%2Fb%23c%20%252F/version"
    );
    for dots in ["..", ".", ""] {
        let err = render(Role::Url, url, &ctx(dots)).unwrap_err();
        assert!(err.reason.contains("path"), "{dots}: {err:?}");
    }
}

#[test]
fn an_argument_in_a_query_cannot_add_parameters() {
    let url = "{{ env.BASE }}/search?q={{ arg }}&limit=5";
    assert_eq!(
        render(Role::Url, url, &ctx("x&limit=1000#frag")).unwrap(),
        "https://deploys.example.com/api/search?q=x%26limit%3D1000%23frag&limit=5"
    );
    assert_eq!(
        render(Role::Url, url, &ctx("a+b é")).unwrap(),
        "https://deploys.example.com/api/search?q=a%2Bb%20%C3%A9&limit=5"
    );
}

#[test]
fn an_argument_cannot_choose_the_host_or_the_scheme() {
    for url in [
        "https://{{ arg }}.example.com/x",
        "{{ arg }}://example.com/x",
        "https://example.com{{ arg }}",
        "{{ arg }}",
    ] {
        let err = render(Role::Url, url, &ctx("evil.com")).unwrap_err();
        assert!(err.reason.contains("scheme or host"), "{url}: {err:?}");
    }
}

#[test]
fn filters_cannot_make_an_argument_trusted() {
    for trick in ["{{ arg | safe }}", "{{ arg | e }}", "{{ arg | escape }}"] {
        let url = format!("{{{{ env.BASE }}}}/x/{trick}");
        assert!(render(Role::Url, &url, &ctx("../y")).is_err(), "{trick}");
    }
    // a value made from an argument is still untrusted
    assert_eq!(
        render(Role::Url, "{{ env.BASE }}/x/{{ arg | upper }}", &ctx("a/b")).unwrap(),
        "https://deploys.example.com/api/x/A%2FB"
    );
    // and the private markers cannot be smuggled in
    assert!(render(Role::Url, "{{ env.BASE }}/x/{{ arg }}", &ctx("a\u{E001}b")).is_err());
}

#[test]
fn a_header_refuses_line_breaks_and_control_characters() {
    for bad in ["x\r\nX-Admin: 1", "x\ny", "x\0", "x\u{7f}"] {
        let err = render(Role::Header, "Bearer {{ arg }}", &ctx(bad)).unwrap_err();
        assert!(err.reason.contains("control character"), "{bad:?}: {err:?}");
    }
    assert_eq!(
        render(Role::Header, "Bearer {{ arg }}", &ctx("a b:c")).unwrap(),
        "Bearer a b:c"
    );
}

#[test]
fn a_reply_cannot_close_a_code_span_and_a_function_is_not_an_argument() {
    assert_eq!(
        render(Role::Reply, "runs `{{ arg }}`", &ctx("1` <!channel>")).unwrap(),
        "runs `1ˋ <!channel>`",
        "escaping &, < and > is the reply's own step (UserText)"
    );
    assert!(render(Role::Function, "fn-{{ arg }}", &ctx("x")).is_err());
    assert_eq!(
        render(Role::Function, "{{ env.BASE }}", &ctx("x")).unwrap(),
        "https://deploys.example.com/api"
    );
}

/// A context whose setting and secret hold `value`.
fn trusted_ctx(value: &str) -> Value {
    Value::from_iter([
        ("arg".to_string(), Value::from("x")),
        (
            "env".to_string(),
            Value::from_iter([
                ("URL".to_string(), trusted("http://127.0.0.1:5056")),
                ("V".to_string(), trusted(value)),
            ]),
        ),
        (
            "secret".to_string(),
            Value::from_iter([("T".to_string(), trusted(value))]),
        ),
    ])
}

#[test]
fn a_secret_or_setting_in_a_query_is_one_value_whatever_it_holds() {
    // the defect: `tok#frag` cut the query (the rest became a fragment), and
    // `a+b&c=d` sent key="a b" and a parameter c
    let url = "{{ env.URL }}/q?key={{ secret.T }}&other=1";
    for (token, sent) in [
        ("tok#frag", "key=tok%23frag&other=1"),
        ("a+b&c=d", "key=a%2Bb%26c%3Dd&other=1"),
        ("abc\"def/x", "key=abc%22def%2Fx&other=1"),
        ("tök/x", "key=t%C3%B6k%2Fx&other=1"),
        (
            "s3cr3t TOKEN/+&=123%",
            "key=s3cr3t%20TOKEN%2F%2B%26%3D123%25&other=1",
        ),
    ] {
        let got = render(Role::Url, url, &trusted_ctx(token)).unwrap();
        assert_eq!(got, format!("http://127.0.0.1:5056/q?{sent}"), "{token}");
        let parsed = reqwest::Url::parse(&got).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [("key".into(), token.into()), ("other".into(), "1".into())],
            "{token}: the service reads the whole token as `key`"
        );
        assert_eq!(parsed.fragment(), None, "{token}");
    }
    // a setting there is a value too; in a fragment as well
    assert_eq!(
        render(
            Role::Url,
            "{{ env.URL }}/q?a={{ env.V }}#{{ env.V }}",
            &trusted_ctx("1&b=2")
        )
        .unwrap(),
        "http://127.0.0.1:5056/q?a=1%26b%3D2#1%26b%3D2"
    );
}

#[test]
fn settings_and_secrets_build_the_url_before_its_query_as_they_are() {
    // a base URL with a path, a webhook URL kept as a secret
    let ctx = trusted_ctx("https://hooks.example.com/services/T0/B0/xyz");
    assert_eq!(
        render(Role::Url, "{{ secret.T }}", &ctx).unwrap(),
        "https://hooks.example.com/services/T0/B0/xyz"
    );
    assert_eq!(
        render(
            Role::Url,
            "{{ env.URL }}/bot/{{ env.V }}?x=1",
            &trusted_ctx("a/b")
        )
        .unwrap(),
        "http://127.0.0.1:5056/bot/a/b?x=1"
    );
    // but in the path, it cannot start the query or a fragment
    assert_eq!(
        render(
            Role::Url,
            "{{ env.URL }}/t/{{ secret.T }}/x",
            &trusted_ctx("a?b#c d/é")
        )
        .unwrap(),
        "http://127.0.0.1:5056/t/a%3Fb%23c%20d/%C3%A9/x"
    );
    // and a marker in a trusted value is refused, not taken apart
    assert!(
        render(
            Role::Url,
            "{{ env.URL }}/{{ env.V }}",
            &trusted_ctx("a\u{E003}b")
        )
        .is_err()
    );
}

#[test]
fn the_forms_a_secret_is_sent_in_are_all_known() {
    use super::scrub::sent_forms;
    let secret = "s3cr3t TOKEN/+&=123";
    let forms = sent_forms(secret);
    let query = render(
        Role::Url,
        "{{ env.URL }}/q?k={{ secret.T }}",
        &trusted_ctx(secret),
    )
    .unwrap();
    let path = reqwest::Url::parse(
        &render(
            Role::Url,
            "{{ env.URL }}/{{ secret.T }}",
            &trusted_ctx(secret),
        )
        .unwrap(),
    )
    .unwrap()
    .to_string();
    for sent in [query, path] {
        assert!(
            forms.iter().any(|f| sent.contains(f.as_str())),
            "{sent} carries a form not in {forms:?}"
        );
    }
    assert!(
        forms.windows(2).all(|w| w[0].len() >= w[1].len()),
        "longest first"
    );
}

#[test]
fn a_loop_over_a_long_argument_stops_at_the_budget() {
    // the defect: this took 23 s (300 characters) to days, on the runtime
    let cube = "{% for a in arg %}{% for b in arg %}{% for c in arg %}{% endfor %}{% endfor %}{% endfor %}done";
    let err = render(Role::Reply, cube, &ctx(&"a".repeat(600))).unwrap_err();
    assert!(err.over_budget, "{err:?}");
    assert!(err.reason.contains("steps"), "{err:?}");
    // a loop over a short list is well within it
    assert_eq!(render(Role::Reply, cube, &ctx("ab")).unwrap(), "done");
    let list = "{% for c in arg %}{{ c }},{% endfor %}";
    let ok = render(Role::Reply, list, &ctx(&"x".repeat(2000))).unwrap();
    assert_eq!(ok.len(), 4000);
}

#[test]
fn the_output_is_bounded_and_no_value_grows_across_iterations() {
    let big = "{% for c in arg %}{{ arg }}{% endfor %}";
    let err = render(Role::Reply, big, &ctx(&"a".repeat(1000))).unwrap_err();
    assert!(err.over_budget && err.reason.contains("bytes"), "{err:?}");
    let grow =
        "{% set ns = namespace(x=arg) %}{% for c in arg %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}";
    let err = render(Role::Reply, grow, &ctx(&"a".repeat(64))).unwrap_err();
    assert!(err.reason.contains("namespace"), "{err:?}");
}

#[test]
fn names_lists_what_a_template_reads() {
    let found = names(Role::Url, "{{ env.A }}/{{ service }}?{{ secret.T }}").unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["env.A", "secret.T", "service"]
    );
    let err = names(Role::Reply, "line\n{{ oops").unwrap_err();
    assert_eq!(err.line, Some(2), "{err:?}");
}
