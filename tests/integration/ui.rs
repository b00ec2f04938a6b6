//! The action-log page at `/ui/`: its headers, cache names, page weight and `[ui] enabled`
//! over plain HTTP, then the page itself in a headless Chromium driven through WebDriver
//! (`webdriver.rs`) against a seeded service. The browser test says it is skipped when
//! Chromium or chromedriver is absent (`.ci/run` installs Debian's `chromium` and
//! `chromium-driver`).

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::backend::say;
use crate::common::{Response, TestServer};
use crate::webdriver::{self, Driver, Element, Session};

const OWNER: &str = "user-a:proj-a";
const ADMIN: &str = "admin:admin";
const WEB: &str = "c1000000-0000-4000-8000-000000000001";
const BIG: &str = "c2000000-0000-4000-8000-000000000001";
const DUP_1: &str = "c3000000-0000-4000-8000-000000000001";
const DUP_2: &str = "c3000000-0000-4000-8000-000000000002";
const CREATE: &str = "req-c1000000-0000-4000-8000-000000000001";
const REBOOT: &str = "req-c1000000-0000-4000-8000-000000000002";
const RESIZE: &str = "req-c1000000-0000-4000-8000-000000000003";
const BIG_ACTIONS: usize = 1200;

/// What a page must never interpret: markup, entities, quotes and non-ASCII in API values.
const HOSTILE_TRACEBACK: &str = "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nValueError: <script>alert('x')</script> & \"quotes\" &amp; — ünïcødé ✓ <img src=x onerror=alert(1)>\n";
const HOSTILE_DETAILS: &str = "<b>disk & \"quota\"</b> ünïcødé";

fn get(server: &TestServer, path: &str) -> Response {
    server.send("GET", path, &[], b"")
}

/// `app.<16 hex>.<ext>` as the index names it under `assets/`.
fn asset_name(index: &str, ext: &str) -> String {
    let name = index
        .split("assets/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|n| n.ends_with(&format!(".{ext}")))
        .unwrap_or_else(|| panic!("no .{ext} asset in {index}"));
    let hash = name
        .strip_prefix("app.")
        .and_then(|n| n.strip_suffix(&format!(".{ext}")))
        .unwrap();
    assert!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name} is named by a content hash"
    );
    name.to_string()
}

fn assert_security_headers(r: &Response, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    for wanted in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(wanted), "{what}: CSP lacks {wanted}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

/// The router's 404 for a route the service does not have (`DELETE /healthcheck` gets it too).
fn route_miss(server: &TestServer) -> Response {
    let r = server.send("DELETE", "/healthcheck", &[], b"");
    assert_eq!(r.status, 404);
    r
}

fn assert_route_miss(r: &Response, miss: &Response, what: &str) {
    assert_eq!(r.status, 404, "{what}: {}", r.text());
    assert_eq!(r.body, miss.body, "{what}: the same body as any route miss");
    assert_eq!(
        r.header("content-type"),
        miss.header("content-type"),
        "{what}"
    );
}

#[test]
fn the_page_is_public_hashed_cached_and_locked_down() {
    let server = TestServer::start();
    // No token: the page is public, the data is not.
    let index = get(&server, "/ui/");
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert_security_headers(&index, "index");
    let html = index.text();
    assert!(html.contains(&format!(
        r#"<meta name="compute-version" content="{}">"#,
        nova_actions::api::version::MAX.text()
    )));
    // Nothing inline for the CSP to refuse: scripts by src, no style attributes or handlers.
    assert!(
        !html.contains("<script>") && !html.contains("<style"),
        "{html}"
    );
    assert!(
        !html.contains(" style=") && !html.contains(" onclick="),
        "{html}"
    );

    let js_name = asset_name(&html, "js");
    let css_name = asset_name(&html, "css");
    let mut total = index.body.len();
    for (name, ty) in [
        (&js_name, "text/javascript; charset=utf-8"),
        (&css_name, "text/css; charset=utf-8"),
    ] {
        let r = get(&server, &format!("/ui/assets/{name}"));
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-type"), Some(ty), "{name}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{name}"
        );
        assert_security_headers(&r, name);
        total += r.body.len();
    }
    say(&format!(
        "the action-log page's first load: {total} bytes (index, css, js)"
    ));
    assert!(total <= 100 * 1024, "first load {total} bytes > 100 KB");
    assert_eq!(total, nova_actions::ui::first_load_bytes());

    let js = get(&server, &format!("/ui/assets/{js_name}")).text();
    for never in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "eval(",
        "new Function",
        "document.write",
    ] {
        assert!(!js.contains(never), "app.js uses {never}");
    }
    assert!(
        !js.contains("localStorage"),
        "the token lives in sessionStorage only"
    );

    // /ui redirects, relatively (a proxy's prefix survives).
    let r = get(&server, "/ui");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("ui/"));

    // Anything else under /ui is the service's own 404.
    let miss = route_miss(&server);
    for path in [
        "/ui/assets/app.0000000000000000.js",
        "/ui/assets/",
        "/ui/index.html",
        "/ui/assets/app.js",
        &format!("/ui/assets/{js_name}x"),
    ] {
        assert_route_miss(&get(&server, path), &miss, path);
    }
    let post = server.send("POST", "/ui/", &[], b"");
    assert_route_miss(&post, &miss, "POST /ui/");
    let head = server.send("HEAD", "/ui/", &[], b"");
    assert_eq!(head.status, 200);
}

#[test]
fn the_page_is_a_404_when_turned_off() {
    let server = TestServer::with_config(|c| c.ui.enabled = false);
    let miss = route_miss(&server);
    for path in ["/ui/", "/ui", "/ui/assets/app.0000000000000000.js"] {
        assert_route_miss(&get(&server, path), &miss, path);
    }
    let on = TestServer::start();
    let js_name = asset_name(&get(&on, "/ui/").text(), "js");
    assert_route_miss(
        &get(&server, &format!("/ui/assets/{js_name}")),
        &miss,
        "a real asset",
    );
}

// ------------------------------------------------------------------ the browser

fn time(minutes: usize) -> String {
    let (d, rest) = (minutes / 1440, minutes % 1440);
    format!(
        "2024-01-{:02}T{:02}:{:02}:00.000000",
        d + 1,
        rest / 60,
        rest % 60
    )
}

fn server_line(uuid: &str, name: &str, project: &str, actions: Vec<Value>) -> String {
    json!({
        "uuid": uuid, "project_id": project, "user_id": "user-a", "name": name,
        "status": "ACTIVE", "host": "compute-1", "deleted": false,
        "created_at": "2024-01-01T00:00:00.000000", "updated_at": "2024-01-01T00:00:00.000000",
        "actions": actions,
    })
    .to_string()
}

fn event(name: &str, start: &str, finish: Option<&str>, result: Option<&str>) -> Value {
    json!({"event": name, "start_time": start, "finish_time": finish, "result": result,
           "traceback": null, "host": "compute-1", "details": null})
}

fn seed(server: &TestServer) {
    let mut failed = event(
        "compute_reboot_instance",
        "2024-03-02T09:00:01.000000",
        Some("2024-03-02T09:00:07.000000"),
        Some("Error"),
    );
    failed["traceback"] = json!(HOSTILE_TRACEBACK);
    failed["details"] = json!(HOSTILE_DETAILS);
    let action =
        |rid: &str, name: &str, start: &str, updated: &str, message: Value, events: Vec<Value>| {
            json!({"request_id": rid, "action": name, "user_id": "user-a", "project_id": "proj-a",
               "start_time": start, "updated_at": updated, "finish_time": null,
               "message": message, "events": events})
        };
    let web = vec![
        action(
            CREATE,
            "create",
            "2024-03-01T10:00:00.000000",
            "2024-03-01T10:00:20.000000",
            Value::Null,
            vec![event(
                "compute__do_build_and_run_instance",
                "2024-03-01T10:00:01.000000",
                Some("2024-03-01T10:00:20.000000"),
                Some("Success"),
            )],
        ),
        action(
            REBOOT,
            "reboot",
            "2024-03-02T09:00:00.000000",
            "2024-03-02T09:00:07.000000",
            json!("Error"),
            vec![failed],
        ),
        action(
            RESIZE,
            "resize",
            "2024-03-03T08:00:00.000000",
            "2024-03-03T08:00:04.000000",
            Value::Null,
            vec![
                event(
                    "compute_prep_resize",
                    "2024-03-03T08:00:01.000000",
                    Some("2024-03-03T08:00:03.000000"),
                    Some("Success"),
                ),
                event(
                    "compute_resize_instance",
                    "2024-03-03T08:00:04.000000",
                    None,
                    None,
                ),
            ],
        ),
    ];
    let names = ["reboot", "stop", "start"];
    let big = (0..BIG_ACTIONS)
        .map(|i| {
            action(
                &big_rid(i),
                names[i % 3],
                &time(i),
                &time(i),
                Value::Null,
                vec![event(
                    "compute_x",
                    &time(i),
                    Some(&time(i)),
                    Some("Success"),
                )],
            )
        })
        .collect();
    let lines = [
        server_line(WEB, "web-1", "proj-a", web),
        server_line(BIG, "big-1", "proj-a", big),
        server_line(DUP_1, "dup", "proj-a", vec![]),
        server_line(DUP_2, "dup", "proj-a", vec![]),
    ];
    let r = server.import(format!("{}\n", lines.join("\n")).as_bytes());
    assert!(r.status < 300, "import: {} {}", r.status, r.text());
}

fn big_rid(i: usize) -> String {
    format!("req-c2000000-0000-4000-8000-{i:012}")
}

const TOKEN_KEY: &str = "nova-actions.token";

fn sign_in(b: &Session<'_>, token: &str) {
    let input = b.find("#token");
    b.type_into(&input, token);
    b.click(&b.find("form.signin button[type=submit]"));
    b.wait_for("signed in", || {
        b.js("return document.querySelector('#token') === null && document.querySelector('#sign-out').hidden === false;", json!([]))
            .as_bool()
            .filter(|ok| *ok)
    });
}

fn sign_out(b: &Session<'_>) {
    b.click(&b.find("#sign-out"));
    b.find("#token");
    let stored = b.js(
        "return sessionStorage.getItem(arguments[0]);",
        json!([TOKEN_KEY]),
    );
    assert_eq!(stored, Value::Null, "signing out forgets the token");
}

fn row_ids(b: &Session<'_>) -> Vec<String> {
    b.js(
        "return [...document.querySelectorAll('ol.actions > li.action')].map(li => li.dataset.requestId);",
        json!([]),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap().to_string())
    .collect()
}

fn wait_rows(b: &Session<'_>, at_least: usize) -> Vec<String> {
    b.wait_for(&format!("{at_least} rows"), || {
        let ids = row_ids(b);
        (ids.len() >= at_least).then_some(ids)
    })
}

fn cell(b: &Session<'_>, rid: &str, column: &str) -> String {
    b.js(
        "const li = document.querySelector(`li.action[data-request-id=\"${arguments[0]}\"]`); return li.querySelector('.c-' + arguments[1]).textContent;",
        json!([rid, column]),
    )
    .as_str()
    .unwrap()
    .to_string()
}

fn wait_cell(b: &Session<'_>, rid: &str, column: &str, wanted: &str) {
    b.wait_for(&format!("{column} of {rid} to be {wanted}"), || {
        (cell(b, rid, column) == wanted).then_some(())
    });
}

fn expand(b: &Session<'_>, rid: &str) -> Element {
    let button = b.find(&format!(
        "li.action[data-request-id=\"{rid}\"] button.expand"
    ));
    b.click(&button);
    b.find(&format!(
        "li.action[data-request-id=\"{rid}\"] .detail .timeline"
    ))
}

fn text_of(b: &Session<'_>, css: &str) -> Option<String> {
    b.js(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        json!([css]),
    )
    .as_str()
    .map(str::to_string)
}

fn severe(entries: &[Value]) -> Vec<&Value> {
    entries.iter().filter(|e| e["level"] == "SEVERE").collect()
}

fn screenshots_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NOVA_ACTIONS_UI_SCREENSHOTS") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("ui-screenshots")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
fn the_page_in_a_real_browser() {
    if let Some(why) = webdriver::missing() {
        say(&format!(
            "SKIPPED the_page_in_a_real_browser: {why}; `apt-get install chromium chromium-driver` \
             installs them, as .ci/run does"
        ));
        return;
    }
    // Fault injection: a 401 for one token, as an expired Keystone token gets.
    let server = TestServer::with_config(|c| c.testing.fault_injection = true);
    seed(&server);
    let base = format!("http://{}/ui/", server.host());
    let driver = Driver::start();
    let b = driver.session();

    // ---- the owner: find by name, rows newest first, results from events, no tracebacks
    b.goto(&base);
    sign_in(&b, OWNER);
    let stored = b.js(
        "return sessionStorage.getItem(arguments[0]);",
        json!([TOKEN_KEY]),
    );
    assert_eq!(stored, json!(OWNER));
    b.type_into(&b.find("#server-query"), "web-1");
    b.click(&b.find("form.search button[type=submit]"));
    assert_eq!(wait_rows(&b, 3), [RESIZE, REBOOT, CREATE], "newest first");
    let url = b
        .js("return location.href;", json!([]))
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.ends_with(&format!("#/servers/{WEB}")), "{url}");
    assert!(
        !url.contains("user-a"),
        "the token is never in a URL: {url}"
    );
    let title = b.find("section.server h1");
    assert_eq!(b.text(&title), format!("web-1 {WEB}"));
    assert_eq!(cell(&b, REBOOT, "action"), "reboot");
    assert_eq!(cell(&b, REBOOT, "rid"), format!("{REBOOT}Copy"));
    assert_eq!(cell(&b, REBOOT, "user"), "user-a");
    assert_eq!(cell(&b, REBOOT, "project"), "proj-a");
    assert_eq!(cell(&b, REBOOT, "message"), "Error");
    assert_eq!(cell(&b, CREATE, "message"), "—");
    // Results come from the events, read lazily for the rows on screen.
    wait_cell(&b, REBOOT, "result", "failed");
    wait_cell(&b, RESIZE, "result", "running");
    wait_cell(&b, CREATE, "result", "succeeded");
    wait_cell(&b, CREATE, "duration", "20 s");
    wait_cell(&b, RESIZE, "finish", "—");
    let start_title = b.js(
        "return document.querySelector(`li.action[data-request-id=\"${arguments[0]}\"] .c-start time`).title;",
        json!([CREATE]),
    );
    assert_eq!(start_title, json!("2024-03-01 10:00:00.000 UTC"));

    expand(&b, REBOOT);
    let detail = format!("li.action[data-request-id=\"{REBOOT}\"] .detail");
    assert_eq!(
        text_of(&b, &format!("{detail} .event-name")).as_deref(),
        Some("compute_reboot_instance")
    );
    let labels = b.js(
        "return [...document.querySelectorAll(arguments[0] + ' .event dt')].map(d => d.textContent);",
        json!([detail]),
    );
    assert_eq!(
        labels,
        json!(["hostId"]),
        "the owner sees hostId, not host or details"
    );
    assert_eq!(
        text_of(&b, &format!("{detail} .traceback")),
        None,
        "no traceback for the owner"
    );
    let expanded = b.js(
        "return document.querySelector(arguments[0] + ' button.expand').getAttribute('aria-expanded');",
        json!([format!("li.action[data-request-id=\"{REBOOT}\"]")]),
    );
    assert_eq!(expanded, json!("true"));

    // Keyboard: Enter on a focused row's button expands it.
    b.js(
        "document.querySelector(`li.action[data-request-id=\"${arguments[0]}\"] button.expand`).focus();",
        json!([RESIZE]),
    );
    let focused = b.active();
    b.type_into(&focused, "\u{E007}");
    b.find(&format!(
        "li.action[data-request-id=\"{RESIZE}\"] .detail .timeline"
    ));
    let open_bar = b.js(
        "return document.querySelectorAll(`li.action[data-request-id=\"${arguments[0]}\"] .track .bar.open`).length;",
        json!([RESIZE]),
    );
    assert_eq!(
        open_bar,
        json!(1),
        "the unfinished event's bar is open-ended"
    );

    // Several servers of one name: the user chooses.
    b.goto(&format!("{base}#/"));
    b.type_into(&b.find("#server-query"), "dup");
    b.click(&b.find("form.search button[type=submit]"));
    b.find(".chooser a.choice");
    let choices = b.js(
        "return [...document.querySelectorAll('.chooser a.choice')].map(a => a.getAttribute('href')).sort();",
        json!([]),
    );
    assert_eq!(
        choices,
        json!([format!("#/servers/{DUP_1}"), format!("#/servers/{DUP_2}")])
    );
    b.click(&b.find(&format!(".chooser a[href=\"#/servers/{DUP_1}\"]")));
    b.find(".list-status .empty");
    assert_eq!(
        text_of(&b, ".list-status .empty").as_deref(),
        Some("No actions recorded for this server.")
    );

    // ---- 1,200 actions: pages of 50 as the user scrolls, never the whole history
    b.goto(&format!("{base}#/"));
    b.type_into(&b.find("#server-query"), BIG);
    b.click(&b.find("form.search button[type=submit]"));
    let first = wait_rows(&b, 50);
    assert_eq!(first[0], big_rid(BIG_ACTIONS - 1));
    assert_eq!(first[49], big_rid(BIG_ACTIONS - 50));
    for pages in 2..=8 {
        b.js("window.scrollTo(0, document.body.scrollHeight);", json!([]));
        wait_rows(&b, pages * 50);
    }
    let ids = row_ids(&b);
    assert!(
        ids.len() < BIG_ACTIONS,
        "only what was scrolled to is loaded: {}",
        ids.len()
    );
    let expected: Vec<String> = (0..ids.len())
        .map(|i| big_rid(BIG_ACTIONS - 1 - i))
        .collect();
    assert_eq!(
        ids, expected,
        "pages follow one another, newest first, nothing twice"
    );
    // While filtering by name only the button pages (scrolling would read on and on in search
    // of a rare name), and keyboard users page with it.
    b.wait_for("the page being loaded to arrive", || {
        b.js(
            "return !document.querySelector('button.more').hidden;",
            json!([]),
        )
        .as_bool()
        .filter(|shown| *shown)
    });
    b.type_into(&b.find("#action-filter"), "reboot");
    let before = row_ids(&b).len();
    b.js("window.scrollTo(0, document.body.scrollHeight);", json!([]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        row_ids(&b).len(),
        before,
        "no paging on scroll while filtering"
    );
    b.js("document.querySelector('button.more').focus();", json!([]));
    b.type_into(&b.active(), "\u{E007}");
    wait_rows(&b, before + 50);
    b.js(
        "const f = document.querySelector('#action-filter'); f.value = ''; f.dispatchEvent(new Event('input'));",
        json!([]),
    );
    let timings = b.js(
        "return window.__uiTimings.pages.filter(p => p.rows === 50).map(p => p.ms);",
        json!([]),
    );
    let timings: Vec<f64> = timings
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let med = median(timings.clone());
    say(&format!(
        "rendering a page of 50 actions in headless Chromium: median {med:.1} ms over {} pages ({timings:.1?})",
        timings.len()
    ));
    assert!(
        med <= 100.0,
        "a page of 50 actions took {med} ms (median) to render"
    );

    // A time window re-queries: changed since 19:00 on the first day is the last 60 actions.
    b.js(
        "const d = new Date(Date.UTC(2024, 0, 1, 19, 0, 0)); const p = n => String(n).padStart(2, '0');
         document.querySelector('#since').value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:00`;
         document.querySelector('form.filters button[type=submit]').click();",
        json!([]),
    );
    b.wait_for("the windowed history to end", || {
        b.js("window.scrollTo(0, document.body.scrollHeight);", json!([]));
        let end = text_of(&b, ".list-status .end")?;
        (end == "End of history · 60 actions").then_some(())
    });
    assert_eq!(row_ids(&b).len(), 60);
    // The name filter works on the loaded rows.
    b.type_into(&b.find("#action-filter"), "stop");
    let shown = b.js(
        "return [...document.querySelectorAll('ol.actions > li.action')].filter(li => !li.hidden).length;",
        json!([]),
    );
    assert_eq!(shown, json!(20));
    sign_out(&b);

    // ---- the admin, by deep link: the traceback, host and details, literally
    b.goto(&format!("{base}#/servers/{WEB}/actions/{REBOOT}"));
    sign_in(&b, ADMIN);
    b.find(".linked .traceback");
    assert_eq!(
        text_of(&b, ".linked .traceback").as_deref(),
        Some(HOSTILE_TRACEBACK)
    );
    let labels = b.js(
        "return [...document.querySelectorAll('.linked .event dt')].map(d => d.textContent);",
        json!([]),
    );
    assert_eq!(labels, json!(["hostId", "Host", "Details"]));
    let values = b.js(
        "return [...document.querySelectorAll('.linked .event dd')].map(d => d.textContent);",
        json!([]),
    );
    assert_eq!(values[1], json!("compute-1"));
    assert_eq!(values[2], json!(HOSTILE_DETAILS));
    let injected = b.js(
        "return document.querySelectorAll('main script, main img, main b').length;",
        json!([]),
    );
    assert_eq!(injected, json!(0), "nothing the API returned became markup");
    assert_eq!(wait_rows(&b, 3), [RESIZE, REBOOT, CREATE]);
    expand(&b, REBOOT);
    b.find(&format!(
        "li.action[data-request-id=\"{REBOOT}\"] .traceback"
    ));

    // ---- screenshots at 1440 and 360 px, where CI keeps them
    let dir = screenshots_dir();
    b.viewport(1440, 900);
    b.js("window.scrollTo(0, 0);", json!([]));
    wait_cell(&b, RESIZE, "result", "running");
    b.screenshot(&dir.join("actions-1440.png"));
    // The list itself on a phone.
    b.goto(&format!("{base}#/servers/{WEB}"));
    b.viewport(360, 780);
    wait_rows(&b, 3);
    wait_cell(&b, RESIZE, "result", "running");
    let width = b.js(
        "const d = document.documentElement; return [window.innerWidth, d.scrollWidth <= d.clientWidth];",
        json!([]),
    );
    assert_eq!(
        width,
        json!([360, true]),
        "nothing wider than a 360 px screen"
    );
    b.screenshot(&dir.join("actions-360.png"));
    say(&format!("screenshots in {}", dir.display()));

    let console = b.console();
    assert!(severe(&console).is_empty(), "console errors: {console:#?}");

    // ---- errors carry Nova's message (and are the only console errors: the failed request)
    b.goto(&format!("{base}#/servers/{WEB}/actions/req-missing"));
    b.find(".linked .error");
    let fault = text_of(&b, ".linked .error .fault").unwrap();
    assert_eq!(fault, "Action req-missing not found");
    assert_eq!(
        text_of(&b, ".linked .error strong").as_deref(),
        Some("Not found (404)")
    );
    let console = b.console();
    assert!(
        severe(&console)
            .iter()
            .all(|e| e["message"].as_str().unwrap_or("").contains("404")),
        "{console:#?}"
    );
    sign_out(&b);

    // ---- 503 and 403 show Nova's message; "Try again" reads the page again
    for (status, title, message) in [
        (503, "Service unavailable (503)", "Service Unavailable"),
        (
            403,
            "Not allowed (403)",
            "Policy doesn't allow os_compute_api:os-instance-actions:list to be performed.",
        ),
    ] {
        let rule = server.write(
            "POST",
            "testing/faults",
            ADMIN,
            &json!({"path": "/os-instance-actions$", "token": "user-c:proj-a",
                    "answer": {"status": status}, "times": 1})
            .to_string(),
        );
        assert!(rule.status < 300, "{}", rule.text());
        b.goto(&format!("{base}#/servers/{WEB}"));
        sign_in(&b, "user-c:proj-a");
        b.find(".list-status .error");
        assert_eq!(
            text_of(&b, ".list-status .error strong").as_deref(),
            Some(title)
        );
        assert_eq!(
            text_of(&b, ".list-status .error .fault").as_deref(),
            Some(message)
        );
        b.click(&b.find(".list-status .error button"));
        assert_eq!(wait_rows(&b, 3), [RESIZE, REBOOT, CREATE]);
        sign_out(&b);
    }

    // ---- a refused token sends the user back to sign-in, with the reason, token forgotten
    let rule = server.write(
        "POST",
        "testing/faults",
        ADMIN,
        r#"{"path": "/os-instance-actions$", "token": "user-b:proj-b", "answer": {"status": 401}}"#,
    );
    assert!(rule.status < 300, "{}", rule.text());
    b.goto(&format!("{base}#/servers/{WEB}"));
    b.type_into(&b.find("#token"), "user-b:proj-b");
    b.click(&b.find("form.signin button[type=submit]"));
    b.find(".signin .reason.error");
    assert_eq!(
        text_of(&b, ".signin .reason").as_deref(),
        Some("Your token was refused (401): The request you have made requires authentication.")
    );
    let stored = b.js(
        "return sessionStorage.getItem(arguments[0]);",
        json!([TOKEN_KEY]),
    );
    assert_eq!(stored, Value::Null);
    let url = b.js("return location.hash;", json!([]));
    assert_eq!(
        url,
        json!(format!("#/servers/{WEB}")),
        "signing in again returns there"
    );
}
