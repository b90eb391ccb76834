//! The suite both backends must pass. Each test takes a fresh store and a backdoor: raw
//! SQL as the database's owner, for what the application itself must not be able to do.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use tamga_store::{
    event_hash, stage, verify_store, AuditEvent, ProblemKind, Recorded, ResultRow, Store,
    StoreError, StoredEvent, APPEND_ONCE_STAGE, GENESIS_HASH,
};

/// Raw access to the database, as its owner.
#[async_trait::async_trait]
pub trait Backdoor: Send + Sync {
    /// Runs `sql`; the error is `"<code or kind>: <message>"`.
    async fn exec(&self, sql: &str) -> Result<(), String>;
    /// Turns the append-only triggers off (as an attacker with owner rights would).
    async fn disable_guards(&self);
    /// Turns them back on.
    async fn enable_guards(&self);
    /// The backend's "empty the table" statement.
    fn truncate_sql(&self) -> &'static str;
    /// Makes inserts of audit events for `declaration_id` fail.
    async fn poison(&self, declaration_id: &str);
    /// Undoes `poison`.
    async fn unpoison(&self);
}

pub fn event(declaration_id: &str, stage: &str) -> AuditEvent {
    AuditEvent {
        at_ms: 1_760_000_000_000,
        stage: stage.into(),
        worker: "test-worker".into(),
        declaration_id: declaration_id.into(),
        origin: "KZ".into(),
        destination: "AZ".into(),
        outcome: "TOTAL_PASSED".into(),
        sub_indication: None,
        reason: None,
        digest: "0f".repeat(32),
        detail: Some("{\"n\":1}".into()),
    }
}

async fn all_events(store: &dyn Store) -> Vec<StoredEvent> {
    store.events(None, 100_000).await.unwrap()
}

pub async fn record_inserts_once(store: Arc<dyn Store>, _door: &dyn Backdoor) {
    let ev = event("d1", stage::VERIFIED);
    assert_eq!(
        store.stage_result("d1", stage::VERIFIED).await.unwrap(),
        None
    );
    let first = store
        .record("w1", "d1", stage::VERIFIED, b"first", &ev)
        .await
        .unwrap();
    assert_eq!(first, Recorded::Inserted);
    assert_eq!(
        store.stage_result("d1", stage::VERIFIED).await.unwrap(),
        Some(b"first".to_vec())
    );
    // a redelivery (maybe to another worker) gets the stored bytes, appends nothing
    let again = store
        .record("w2", "d1", stage::VERIFIED, b"second", &ev)
        .await
        .unwrap();
    assert_eq!(again, Recorded::AlreadyPresent(b"first".to_vec()));
    // another stage of the same declaration is its own result
    let cs = store
        .record(
            "w1",
            "d1",
            stage::COUNTERSIGNED,
            &[0, 255, 1],
            &event("d1", stage::COUNTERSIGNED),
        )
        .await
        .unwrap();
    assert_eq!(cs, Recorded::Inserted);
    assert_eq!(
        store
            .stage_result("d1", stage::COUNTERSIGNED)
            .await
            .unwrap(),
        Some(vec![0, 255, 1])
    );
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(events.iter().all(|e| e.chain == "w1"));
    assert_eq!(events[0].event, ev);
    assert_eq!(events[1].event.stage, stage::COUNTERSIGNED);
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 2);
}

/// The fused stage's write: a claim, a secondary row whose conflict is not an error, and
/// several events, all or nothing, in one chain without gaps.
pub async fn record_all_is_one_claim(store: Arc<dyn Store>, door: &dyn Backdoor) {
    let events = [
        event("f1", stage::RECEIVED),
        event("f1", stage::VERIFIED),
        event("f1", stage::COUNTERSIGNED),
    ];
    let claim = |result: &'static [u8]| ResultRow {
        declaration_id: "f1",
        stage: "decide",
        result,
    };
    let seen = ResultRow {
        declaration_id: "digest-1",
        stage: "received",
        result: b"f1",
    };
    // Nothing is written when an event cannot be: the claim is not taken either.
    door.poison("f1").await;
    store
        .record_all("fw", claim(b"first"), &[seen], &events)
        .await
        .unwrap_err();
    door.unpoison().await;
    assert_eq!(
        store
            .stage_results(&[("f1", "decide"), ("digest-1", "received")])
            .await
            .unwrap(),
        vec![None, None]
    );
    let first = store
        .record_all("fw", claim(b"first"), &[seen], &events)
        .await
        .unwrap();
    assert_eq!(first, Recorded::Inserted);
    // A redelivery gets the stored bytes and appends nothing.
    let again = store
        .record_all("fw2", claim(b"second"), &[seen], &events)
        .await
        .unwrap();
    assert_eq!(again, Recorded::AlreadyPresent(b"first".to_vec()));
    // The same bytes under another id: the secondary row keeps its first value, and its
    // conflict does not fail the transaction.
    let other = store
        .record_all(
            "fw",
            ResultRow {
                declaration_id: "f2",
                stage: "decide",
                result: b"other",
            },
            &[ResultRow {
                declaration_id: "digest-1",
                stage: "received",
                result: b"f2",
            }],
            &[event("f2", stage::RECEIVED)],
        )
        .await
        .unwrap();
    assert_eq!(other, Recorded::Inserted);
    assert_eq!(
        store
            .stage_results(&[
                ("digest-1", "received"),
                ("f1", "decide"),
                ("nope", "decide")
            ])
            .await
            .unwrap(),
        vec![Some(b"f1".to_vec()), Some(b"first".to_vec()), None]
    );
    let stored = all_events(&*store).await;
    assert_eq!(stored.len(), 4, "{stored:#?}");
    assert!(stored.iter().all(|e| e.chain == "fw"));
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    for w in stored.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    assert_eq!(stored[2].event, events[2]);
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
}

pub async fn record_race_has_one_winner(store: Arc<dyn Store>, _door: &dyn Backdoor) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let result = format!("result-{i}").into_bytes();
            let r = store
                .record(
                    &format!("racer-{i}"),
                    "d-race",
                    stage::VERIFIED,
                    &result,
                    &event("d-race", stage::VERIFIED),
                )
                .await
                .unwrap();
            (result, r)
        }));
    }
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (mine, Recorded::Inserted) => winners.push(mine),
            (_, Recorded::AlreadyPresent(stored)) => seen.push(stored),
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one record() inserts");
    assert!(seen.iter().all(|s| *s == winners[0]));
    assert_eq!(
        store.stage_result("d-race", stage::VERIFIED).await.unwrap(),
        Some(winners[0].clone())
    );
    assert_eq!(all_events(&*store).await.len(), 1);
}

pub async fn events_chain_correctly(store: Arc<dyn Store>, _door: &dyn Backdoor) {
    let mut appended: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
    for i in 0..8 {
        let chain = if i % 3 == 1 { "b" } else { "a" };
        let e = store
            .append(chain, &event(&format!("{chain}-{i}"), stage::RECEIVED))
            .await
            .unwrap();
        appended.entry(chain.into()).or_default().push(e);
    }
    for (chain, events) in &appended {
        let mut prev = GENESIS_HASH.to_owned();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(&e.chain, chain);
            assert_eq!(e.seq, i as i64 + 1);
            assert_eq!(e.prev_hash, prev);
            assert_eq!(e.hash, event_hash(chain, e.seq, &e.prev_hash, &e.event));
            prev = e.hash.clone();
        }
    }
    let ordered: Vec<StoredEvent> = appended.values().flatten().cloned().collect();
    assert_eq!(all_events(&*store).await, ordered);
    // paging is exclusive of `after` and ordered by (chain, seq)
    let page = store.events(Some(("a".into(), 3)), 2).await.unwrap();
    assert_eq!(
        page.iter()
            .map(|e| (e.chain.as_str(), e.seq))
            .collect::<Vec<_>>(),
        [("a", 4), ("a", 5)]
    );
    let page = store.events(Some(("a".into(), 5)), 10).await.unwrap();
    assert_eq!(
        page.iter()
            .map(|e| (e.chain.as_str(), e.seq))
            .collect::<Vec<_>>(),
        [("b", 1), ("b", 2), ("b", 3)]
    );
    assert!(store
        .events(Some(("b".into(), 3)), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.events(None, 0).await.unwrap().is_empty());

    let report = store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 8);
    let heads: Vec<(String, i64, String)> = report
        .chains
        .iter()
        .map(|h| (h.chain.clone(), h.seq, h.hash.clone()))
        .collect();
    assert_eq!(
        heads,
        [
            ("a".into(), 5, appended["a"][4].hash.clone()),
            ("b".into(), 3, appended["b"][2].hash.clone())
        ]
    );
    // small pages give the same report
    assert_eq!(verify_store(&*store, 3).await.unwrap(), report);
    assert_eq!(verify_store(&*store, 1).await.unwrap(), report);
}

pub async fn concurrent_appends_have_no_gaps(store: Arc<dyn Store>, _door: &dyn Backdoor) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let chain = format!("verifier-1/{}", t % 4);
            let mut seqs = Vec::new();
            for i in 0..50 {
                let e = store
                    .append(&chain, &event(&format!("t{t}-{i}"), stage::RECEIVED))
                    .await
                    .unwrap();
                seqs.push((chain.clone(), e.seq));
            }
            seqs
        }));
    }
    let mut per_chain: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for t in tasks {
        for (chain, seq) in t.await.unwrap() {
            per_chain.entry(chain).or_default().push(seq);
        }
    }
    assert_eq!(per_chain.len(), 4);
    for seqs in per_chain.values_mut() {
        seqs.sort_unstable();
        assert_eq!(*seqs, (1..=100).collect::<Vec<_>>());
    }
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 400);
    assert_eq!(report.chains.len(), 4);
    assert!(report.chains.iter().all(|h| h.seq == 100));
}

pub async fn append_once_is_idempotent(store: Arc<dyn Store>, _door: &dyn Backdoor) {
    let ev = event("d9", stage::FORWARDED);
    assert!(store
        .append_once("fwd-1", "forwarded:d9", &ev)
        .await
        .unwrap());
    assert!(!store
        .append_once("fwd-2", "forwarded:d9", &ev)
        .await
        .unwrap());
    assert!(store
        .append_once(
            "fwd-1",
            "dead_lettered:d9",
            &event("d9", stage::DEAD_LETTERED)
        )
        .await
        .unwrap());
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.chain == "fwd-1"));
    assert_eq!(
        store
            .stage_result("forwarded:d9", APPEND_ONCE_STAGE)
            .await
            .unwrap(),
        Some(Vec::new())
    );
}

pub async fn changes_are_refused(store: Arc<dyn Store>, door: &dyn Backdoor) {
    for i in 1..=3 {
        store
            .append("g", &event(&format!("g-{i}"), stage::RECEIVED))
            .await
            .unwrap();
    }
    let before = all_events(&*store).await;
    for sql in [
        "UPDATE audit_events SET outcome = 'TOTAL_FAILED' WHERE chain = 'g' AND seq = 2",
        "DELETE FROM audit_events WHERE chain = 'g' AND seq = 3",
        door.truncate_sql(),
    ] {
        let err = door.exec(sql).await.expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(all_events(&*store).await, before);
    assert!(store.verify_chain().await.unwrap().is_intact());
}

pub async fn tampering_is_detected(store: Arc<dyn Store>, door: &dyn Backdoor) {
    for i in 1..=3 {
        store
            .append("s", &event(&format!("s-{i}"), stage::RECEIVED))
            .await
            .unwrap();
    }
    for i in 1..=10 {
        store
            .append("t", &event(&format!("t-{i}"), stage::VERIFIED))
            .await
            .unwrap();
    }
    store
        .append("u", &event("u-1", stage::RECEIVED))
        .await
        .unwrap();
    assert!(store.verify_chain().await.unwrap().is_intact());
    door.disable_guards().await;

    let problem = |r: tamga_store::ChainReport| {
        let p = r.problem.expect("a problem");
        (p.chain, p.seq, p.declaration_id, p.kind)
    };
    // swap seq 8 and 9
    for sql in [
        "UPDATE audit_events SET seq = 1000 WHERE chain = 't' AND seq = 8",
        "UPDATE audit_events SET seq = 8 WHERE chain = 't' AND seq = 9",
        "UPDATE audit_events SET seq = 9 WHERE chain = 't' AND seq = 1000",
    ] {
        door.exec(sql).await.unwrap();
    }
    let report = store.verify_chain().await.unwrap();
    assert_eq!(report.events, 14);
    assert_eq!(
        problem(report),
        ("t".into(), 8, Some("t-9".into()), ProblemKind::Reordered)
    );
    // remove seq 5: now the first problem
    door.exec("DELETE FROM audit_events WHERE chain = 't' AND seq = 5")
        .await
        .unwrap();
    let report = store.verify_chain().await.unwrap();
    assert_eq!(report.events, 13);
    assert_eq!(problem(report), ("t".into(), 5, None, ProblemKind::Removed));
    // alter seq 2's outcome: now the first problem
    door.exec("UPDATE audit_events SET outcome = 'TOTAL_FAILED' WHERE chain = 't' AND seq = 2")
        .await
        .unwrap();
    let report = store.verify_chain().await.unwrap();
    // heads are still reported for every chain
    assert_eq!(
        report
            .chains
            .iter()
            .map(|h| (h.chain.as_str(), h.seq))
            .collect::<Vec<_>>(),
        [("s", 3), ("t", 10), ("u", 1)]
    );
    let detail = report.problem.as_ref().unwrap().detail.clone();
    assert!(detail.contains("t-2"), "{detail}");
    assert_eq!(
        problem(report),
        ("t".into(), 2, Some("t-2".into()), ProblemKind::Altered)
    );
    // the same with small pages
    let paged = verify_store(&*store, 2).await.unwrap();
    assert_eq!(
        problem(paged),
        ("t".into(), 2, Some("t-2".into()), ProblemKind::Altered)
    );

    door.enable_guards().await;
    let err = door
        .exec("UPDATE audit_events SET outcome = 'x' WHERE chain = 'u'")
        .await
        .unwrap_err();
    assert!(err.contains("append-only"), "{err}");
}

pub async fn failed_record_leaves_nothing(store: Arc<dyn Store>, door: &dyn Backdoor) {
    for i in 1..=2 {
        store
            .append("p", &event(&format!("p-{i}"), stage::RECEIVED))
            .await
            .unwrap();
    }
    door.poison("poison").await;
    let err = store
        .record(
            "p",
            "poison",
            stage::VERIFIED,
            b"x",
            &event("poison", stage::VERIFIED),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Integrity(_)), "{err:?}");
    assert!(!err.is_transient());
    // the stage result was rolled back with the event
    assert_eq!(
        store.stage_result("poison", stage::VERIFIED).await.unwrap(),
        None
    );
    let third = store
        .append("p", &event("p-3", stage::RECEIVED))
        .await
        .unwrap();
    assert_eq!(third.seq, 3, "no gap after a rolled-back append");
    door.unpoison().await;
    let r = store
        .record(
            "p",
            "poison",
            stage::VERIFIED,
            b"x",
            &event("poison", stage::VERIFIED),
        )
        .await
        .unwrap();
    assert_eq!(r, Recorded::Inserted);
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.chains[0].seq, 4);
}

pub async fn counts_per_stage(store: Arc<dyn Store>, _door: &dyn Backdoor) {
    assert!(store.counts().await.unwrap().is_empty());
    for (i, s) in [
        stage::RECEIVED,
        stage::RECEIVED,
        stage::VERIFIED,
        stage::REJECTED,
        stage::RECEIVED,
    ]
    .iter()
    .enumerate()
    {
        store
            .append("c", &event(&format!("c-{i}"), s))
            .await
            .unwrap();
    }
    let counts = store.counts().await.unwrap();
    let expected: BTreeMap<String, u64> = [("received", 3), ("rejected", 1), ("verified", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(counts, expected);
}

pub async fn empty_chain_name_is_refused(store: Arc<dyn Store>, _door: &dyn Backdoor) {
    let err = store
        .append("", &event("x", stage::RECEIVED))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(store.verify_chain().await.unwrap().chains.is_empty());
}

fn checkpoint_row(
    tree_size: u64,
    heads: Vec<tamga_store::ChainHead>,
) -> tamga_store::CheckpointRow {
    tamga_store::CheckpointRow {
        tree_size,
        root: "ab".repeat(32),
        at_ms: 1_760_000_000_000 + tree_size as i64,
        heads,
        frontier: vec!["cd".repeat(32)],
        signed: format!("<Checkpoint size=\"{tree_size}\"/>").into_bytes(),
    }
}

/// Checkpoint rows go in only on top of the latest one, come back as they went in, and
/// cannot be changed; chain heads are every chain's newest event, in byte order.
pub async fn checkpoints_are_append_only(store: Arc<dyn Store>, door: &dyn Backdoor) {
    let cps = store
        .checkpoint_store()
        .expect("both backends keep checkpoints");
    assert_eq!(cps.latest_checkpoint().await.unwrap(), None);
    assert!(cps.chain_heads().await.unwrap().is_empty());
    for (chain, id) in [("b", "b-1"), ("a", "a-1"), ("a", "a-2"), ("B", "B-1")] {
        store
            .append(chain, &event(id, stage::RECEIVED))
            .await
            .unwrap();
    }
    let heads = cps.chain_heads().await.unwrap();
    let names: Vec<(&str, i64)> = heads.iter().map(|h| (h.chain.as_str(), h.seq)).collect();
    assert_eq!(names, [("B", 1), ("a", 2), ("b", 1)]);
    let all = all_events(&*store).await;
    assert_eq!(
        heads[1].hash,
        all.iter()
            .find(|e| e.chain == "a" && e.seq == 2)
            .unwrap()
            .hash
    );

    let first = checkpoint_row(4, heads.clone());
    assert!(cps.insert_checkpoint(None, &first).await.unwrap());
    // Another checkpointer that started from the same (empty) state lost the race.
    assert!(!cps
        .insert_checkpoint(None, &checkpoint_row(3, heads.clone()))
        .await
        .unwrap());
    let second = checkpoint_row(9, heads.clone());
    assert!(!cps.insert_checkpoint(Some(3), &second).await.unwrap());
    assert!(cps.insert_checkpoint(Some(4), &second).await.unwrap());
    assert_eq!(cps.latest_checkpoint().await.unwrap(), Some(second.clone()));
    assert_eq!(
        cps.checkpoints().await.unwrap(),
        vec![first.clone(), second.clone()]
    );

    for sql in [
        "UPDATE audit_checkpoints SET root = '00' WHERE tree_size = 4",
        "DELETE FROM audit_checkpoints WHERE tree_size = 9",
        &door
            .truncate_sql()
            .replace("audit_events", "audit_checkpoints"),
    ] {
        let err = door.exec(sql).await.expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(cps.checkpoints().await.unwrap(), vec![first, second]);
}

/// Instantiates every suite test for a backend whose `setup()` returns
/// `(Arc<dyn Store>, Box<dyn Backdoor>, guard)`.
#[macro_export]
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, door, _guard) = setup().await;
                common::$name(store, &*door).await;
            }
        )*
    };
}

#[macro_export]
macro_rules! whole_suite {
    () => {
        $crate::store_suite!(
            record_inserts_once,
            record_all_is_one_claim,
            record_race_has_one_winner,
            events_chain_correctly,
            concurrent_appends_have_no_gaps,
            append_once_is_idempotent,
            changes_are_refused,
            tampering_is_detected,
            failed_record_leaves_nothing,
            counts_per_stage,
            empty_chain_name_is_refused,
            checkpoints_are_append_only,
        );
    };
}

/// The gateway notifier's sweep (`unsettled_after`): published submissions only (a claim
/// left by a 503 has no marker), none notified in a final status, in `(created_at_ms,
/// id)` order, paged strictly after the cursor.
pub async fn unsettled_sweep(store: &dyn tamga_store::GatewayStore) {
    use tamga_store::{submitted_key, Submission, SubmissionClaim};
    let claim = |id: &str, at: i64| Submission {
        broker: "b".into(),
        idempotency_key: format!("k-{id}"),
        id: id.into(),
        body_sha256: "0f".repeat(32),
        origin: "KZ".into(),
        destination: "AZ".into(),
        lrn: None,
        created_at_ms: at,
    };
    // (id, created, published, final status notified)
    let rows = [
        ("a", 1_000, true, None),
        ("c", 2_000, true, None),
        ("b", 2_000, true, Some("received")),
        ("d", 2_000, true, Some("forwarded")),
        ("e", 3_000, false, None),
        ("f", 4_000, true, Some("rejected")),
        ("g", 5_000, true, Some("dead_lettered")),
        ("h", 6_000, true, None),
    ];
    for (id, at, published, status) in rows {
        assert_eq!(
            store.claim_submission(&claim(id, at)).await.unwrap(),
            SubmissionClaim::New
        );
        if published {
            store
                .append_once("gw", &submitted_key(id), &event(id, "submitted"))
                .await
                .unwrap();
        }
        if let Some(s) = status {
            assert!(store.notify("b", id, s, at + 1).await.unwrap());
        }
    }
    let ids = |v: Vec<Submission>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all = ids(store.unsettled_after((i64::MIN, ""), 100).await.unwrap());
    assert_eq!(all, ["a", "b", "c", "h"]);
    assert_eq!(
        ids(store.unsettled_after((i64::MIN, ""), 2).await.unwrap()),
        ["a", "b"]
    );
    // From a floor, and after a cursor inside one millisecond.
    assert_eq!(
        ids(store.unsettled_after((2_000, ""), 100).await.unwrap()),
        ["b", "c", "h"]
    );
    assert_eq!(
        ids(store.unsettled_after((2_000, "b"), 1).await.unwrap()),
        ["c"]
    );
    assert!(store
        .unsettled_after((6_000, "h"), 100)
        .await
        .unwrap()
        .is_empty());
}
