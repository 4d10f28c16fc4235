use super::*;

fn manifest() -> Manifest {
    Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        mpsync_version: "0.1.0".into(),
        captured_at: "2026-12-01T10:00:00Z".parse().unwrap(),
        pseudonymized: true,
        upstreams: vec![UpstreamEntry {
            name: Upstream::Mailprotector,
            base_path: "/api/v1".into(),
            file: "mailprotector.json".into(),
            requests: 1,
            outcome: "complete".into(),
            reseller_id: Some(188),
        }],
        contains: vec![],
        never_contains: vec![],
    }
}

fn exchange(path: &str, body: Body) -> Exchange {
    Exchange {
        request: Request {
            method: "GET".into(),
            path: path.into(),
            query: [("page".to_owned(), "1".to_owned())].into(),
        },
        response: Answer {
            status: 200,
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
            body,
        },
    }
}

#[test]
fn a_written_bundle_loads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Bundle {
        manifest: manifest(),
        files: vec![ExchangeFile {
            upstream: Upstream::Mailprotector,
            exchanges: vec![
                exchange("/a", Body::Json(serde_json::json!([{"id": 1}]))),
                exchange("/b", Body::Text("{cut".into())),
                exchange("/c", Body::Bytes(vec![0xff, 0])),
                exchange("/d", Body::Empty),
                exchange("/e", Body::Json(serde_json::Value::Null)),
            ],
        }],
    };
    let target = dir.path().join("new");
    write_files(&target, &bundle.render().unwrap()).unwrap();
    assert_eq!(Bundle::load(&target).unwrap(), bundle);
    let err = write_files(&target, &bundle.render().unwrap()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "never into a non-empty dir");
}

#[test]
fn problems_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Bundle {
        manifest: manifest(),
        files: vec![ExchangeFile {
            upstream: Upstream::Mailprotector,
            exchanges: vec![exchange("/a", Body::Empty)],
        }],
    };
    write_files(dir.path(), &bundle.render().unwrap()).unwrap();
    let file = dir.path().join("mailprotector.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("\"status\": 200", "\"status\": 42")).unwrap();
    let e = Bundle::load(dir.path()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("status 42 is not an HTTP status") && msg.contains("line 18"), "{msg}");
    assert_eq!(e.exit(), Exit::DataErr);

    std::fs::write(&file, text.replace("\"path\": \"/a\"", "\"path\": \"a?b=1\"")).unwrap();
    let msg = Bundle::load(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("must be empty or start with /") && msg.contains("line 11"), "{msg}");

    let dup = text.replace("\"exchanges\": [", "\"exchanges\": [{\"request\":{\"method\":\"GET\",\"path\":\"/a\",\"query\":{\"page\":\"1\"}},\"response\":{\"status\":204}},");
    std::fs::write(&file, dup).unwrap();
    let msg = Bundle::load(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("exchange 2 repeats the request GET /a?page=1"), "{msg}");

    std::fs::remove_file(&file).unwrap();
    let msg = Bundle::load(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("cannot read the capture bundle file") && msg.contains("mailprotector.json"),
        "{msg}"
    );
}
