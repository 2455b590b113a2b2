use scheduler::repo::{Repo, Stored};
use testkit::Engine;
use wire::lrp::{ActualState, DesiredLrpUpdate, Presence};

use crate::fake::desired;

#[tokio::test]
async fn desired_lrps_store_and_change_only_what_may_change() {
    for engine in Engine::ALL {
        let w = crate::fake::world(engine).await;
        let repo: &Repo = &w.engine.repo;
        let d = desired("p-1", 2, 256);
        assert_eq!(repo.put_desired(&d, 1).await.expect("put"), Stored::Created, "{engine:?}");
        assert_eq!(repo.put_desired(&d, 2).await.expect("put"), Stored::Unchanged);
        let scaled = wire::lrp::DesiredLrp { instances: 5, ..d.clone() };
        assert_eq!(repo.put_desired(&scaled, 3).await.expect("put"), Stored::Updated);
        let changed = wire::lrp::DesiredLrp { start_command: "./other".into(), ..d.clone() };
        assert!(matches!(repo.put_desired(&changed, 4).await.expect("put"), Stored::Conflict(_)));
        let u = DesiredLrpUpdate {
            instances: Some(1),
            annotation: Some("x".into()),
            ..Default::default()
        };
        let after = repo.update_desired("p-1", &u, 5).await.expect("update").expect("exists");
        assert_eq!((after.instances, after.annotation.as_str()), (1, "x"));
        assert_eq!(repo.list_desired(Some("cf-apps"), Some("app-1")).await.expect("list").len(), 1);
        assert!(repo.list_desired(Some("other"), None).await.expect("list").is_empty());
        assert!(repo.delete_desired("p-1").await.expect("delete"));
        assert!(!repo.delete_desired("p-1").await.expect("delete"));
        assert!(repo.update_desired("p-1", &u, 6).await.expect("update").is_none());
    }
}

#[tokio::test]
async fn actual_lrps_round_trip() {
    for engine in Engine::ALL {
        let w = crate::fake::world(engine).await;
        let repo = &w.engine.repo;
        let mut a = wire::lrp::ActualLrp {
            process_guid: "p".into(),
            index: 3,
            domain: "cf-apps".into(),
            instance_guid: String::new(),
            cell_id: String::new(),
            state: ActualState::Unclaimed,
            presence: Presence::Ordinary,
            address: String::new(),
            instance_address: String::new(),
            ports: vec![],
            crash_count: 0,
            crash_reason: String::new(),
            placement_error: String::new(),
            since: 42,
            routable: true,
        };
        repo.insert_actual(&a).await.expect("insert");
        a.state = ActualState::Running;
        a.cell_id = "c1".into();
        a.ports = vec![wire::lrp::PortMapping { container_port: 8080, host_port: 61000 }];
        a.crash_count = 2;
        repo.save_actual(&a).await.expect("save");
        let mut suspect = a.clone();
        suspect.presence = Presence::Suspect;
        repo.insert_actual(&suspect).await.expect("suspect");
        let all = repo.list_actual(Some("p"), None).await.expect("list");
        assert_eq!(all, vec![a.clone(), suspect], "{engine:?}");
        assert_eq!(repo.list_actual(None, Some("c1")).await.expect("by cell").len(), 2);
        repo.delete_actual("p", 3, Presence::Suspect).await.expect("delete");
        assert_eq!(repo.list_actual(None, None).await.expect("list"), vec![a]);
    }
}
