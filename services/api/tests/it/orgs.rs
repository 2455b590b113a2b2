//! A CF client's session: password grant, refresh, orgs and spaces listed page by page with
//! filters and order, created and deleted through jobs — on both engines.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

async fn follow(c: &Client, first: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(url) = next {
        let (st, page) = c.get(&url).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        names.extend(
            page["resources"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned)),
        );
        next = page["pagination"]["next"]["href"].as_str().map(str::to_owned);
    }
    names
}

#[tokio::test]
async fn a_cf_client_pages_filters_creates_and_deletes() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let http = reqwest::Client::new();
        let tokens: Value = http
            .post(format!("{}/oauth/token", p.url))
            .basic_auth("cf", Some(""))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", "admin-secret-pw"),
            ])
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let refreshed: Value = http
            .post(format!("{}/oauth/token", p.url))
            .basic_auth("cf", Some(""))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().expect("rt")),
            ])
            .send()
            .await
            .expect("refresh")
            .json()
            .await
            .expect("json");
        assert_eq!(refreshed["token_type"], "bearer");
        let c = Client::new(&p.url, refreshed["access_token"].as_str().expect("token"));
        for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
            let (st, o) = c.post("/v3/organizations", json!({"name": name})).await;
            assert_eq!(st, StatusCode::CREATED, "{o}");
        }
        let (st, e) = c.post("/v3/organizations", json!({"name": "alpha"})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["errors"][0]["detail"], "Organization 'alpha' already exists.");
        assert_eq!(
            follow(&c, "/v3/organizations?per_page=2").await,
            ["delta", "alpha", "echo", "charlie", "bravo"],
            "creation order by default"
        );
        assert_eq!(
            follow(&c, "/v3/organizations?per_page=2&order_by=name").await,
            ["alpha", "bravo", "charlie", "delta", "echo"]
        );
        assert_eq!(
            follow(&c, "/v3/organizations?order_by=-name&per_page=3").await,
            ["echo", "delta", "charlie", "bravo", "alpha"]
        );
        let (_, page) = c.get("/v3/organizations?per_page=2&page=3").await;
        assert_eq!(page["pagination"]["total_results"], 5);
        assert_eq!(page["pagination"]["total_pages"], 3);
        assert!(page["pagination"]["next"].is_null());
        assert!(page["pagination"]["previous"]["href"].as_str().expect("prev").contains("page=2"));
        let (_, two) = c.get("/v3/organizations?names=alpha,echo&order_by=name").await;
        let two: Vec<&str> = two["resources"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(two, ["alpha", "echo"]);
        let (_, alpha) = c.get("/v3/organizations?names=alpha").await;
        let alpha = alpha["resources"][0]["guid"].as_str().expect("guid").to_owned();
        for s in ["web", "jobs"] {
            let (st, _) = c.post("/v3/spaces", json!({"name": s, "relationships": {"organization": {"data": {"guid": alpha}}}})).await;
            assert_eq!(st, StatusCode::CREATED);
        }
        let (st, e) = c.post("/v3/spaces", json!({"name": "web", "relationships": {"organization": {"data": {"guid": alpha}}}})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["errors"][0]["detail"], "Name must be unique per organization");
        let (_, spaces) = c
            .get(&format!(
                "/v3/spaces?organization_guids={alpha}&order_by=name&include=organization"
            ))
            .await;
        assert_eq!(spaces["pagination"]["total_results"], 2);
        assert_eq!(spaces["resources"][0]["name"], "jobs");
        assert_eq!(spaces["included"]["organizations"][0]["name"], "alpha");
        let space = spaces["resources"][0]["guid"].as_str().expect("space").to_owned();
        for path in [format!("/v3/spaces/{space}"), format!("/v3/organizations/{alpha}")] {
            assert_eq!(c.delete_job(&path).await["state"], "COMPLETE");
            assert_eq!(c.get(&path).await.0, StatusCode::NOT_FOUND, "{path} is gone");
        }
        assert_eq!(follow(&c, "/v3/organizations").await.len(), 4);
        p.stop().await;
    }
}
