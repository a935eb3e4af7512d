//! The scheduled AAF run: the inbox is read, imported with the history and
//! the notice of any feed, and filed away (`traites/`, `refuses/`); the server
//! really runs it at the times of its schedule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;
use store::history::{History, HistoryFilter};
use support::*;
use web::schedule::{run_inbox, AafSchedule, InboxRun};

fn feed(jointure: &str, last_name: &str) -> Vec<u8> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<ficAlimMENESR><addRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>PersEducNat</value></attr></operationalAttributes>\
         <identifier><id>{jointure}</id></identifier><attributes>\
         <attr name=\"ENTPersonJointure\"><value>{jointure}</value></attr>\
         <attr name=\"sn\"><value>{last_name}</value></attr><attr name=\"givenName\"><value>Hélène</value></attr>\
         <attr name=\"ENTPersonFonctions\"><value>{UAI_A}$ENS$ENSEIGNEMENT$L0422$ANGLAIS</value></attr>\
         </attributes></addRequest></ficAlimMENESR>\n"
    );
    encoding_rs::ISO_8859_15.encode(&xml).0.into_owned()
}

fn name(kind: &str) -> String {
    format!("ENT_{UAI_A}_Delta_20261125_{kind}_0000.xml")
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_is_imported_recorded_notified_and_filed_away() {
    let app = start().await;
    let schedule = AafSchedule::new(app.inbox.clone(), "0 3 * * *", Some(ADMIN_A_EMAIL.into())).unwrap();
    assert_eq!(run_inbox(&app.state, &schedule).await, InboxRun::Empty);

    std::fs::write(app.inbox.join(name("PersEducNat")), feed("4100001", "DURAND")).unwrap();
    std::fs::write(app.inbox.join("lisezmoi.txt"), b"pas du XML").unwrap();
    let run = run_inbox(&app.state, &schedule).await;
    let InboxRun::Imported {
        import_id: Some(id),
        moved_to,
    } = run
    else {
        panic!("{run:?}")
    };
    assert!(moved_to.starts_with(app.inbox.join("traites")), "{moved_to:?}");
    assert!(moved_to.join(name("PersEducNat")).is_file());
    assert_eq!(
        files_in(&app.inbox)
            .iter()
            .filter(|f| !f.starts_with("traites"))
            .collect::<Vec<_>>(),
        ["lisezmoi.txt"],
        "only the feed's files leave the inbox"
    );
    let entry = app.state.directory.import_entry(id).await.unwrap().unwrap();
    assert_eq!(
        (
            entry.source.id(),
            entry.channel.id(),
            entry.actor.as_str(),
            entry.status.id()
        ),
        ("aaf", "schedule", "planificateur", "succeeded")
    );
    assert_eq!(entry.created, 1);
    // A second run finds nothing new.
    assert_eq!(run_inbox(&app.state, &schedule).await, InboxRun::Empty);

    // A broken file: refused, in the history with its reason, filed under refuses/.
    std::fs::write(
        app.inbox.join(name("PersEducNat")),
        b"<?xml version=\"1.0\"?><ficAlimMENESR><addRequest>",
    )
    .unwrap();
    let run = run_inbox(&app.state, &schedule).await;
    let InboxRun::Refused {
        import_id: Some(refused),
        reason,
        moved_to,
    } = run
    else {
        panic!("{run:?}")
    };
    assert!(reason.contains("PersEducNat"), "{reason}");
    assert!(moved_to.starts_with(app.inbox.join("refuses")));
    let history = app
        .state
        .directory
        .list_imports(&HistoryFilter::everything())
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|e| e.status.id()).collect::<Vec<_>>(),
        ["rejected", "succeeded"]
    );
    assert_eq!(history[0].channel.id(), "schedule");

    let mails = app.mails();
    assert!(
        mails.iter().any(|m| m.contains("[SUCCES] Import AAF-ENT Test")),
        "{mails:?}"
    );
    assert!(
        mails.iter().any(|m| m.contains("[ERREUR] Import AAF-ENT Test")),
        "the refused feed is notified too: {mails:?}"
    );
    assert!(mails.iter().all(|m| m.contains(ADMIN_A_EMAIL)));
    assert_eq!(history[0].id, refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_the_inbox_at_the_times_of_its_schedule() {
    // Every second (six fields: seconds first).
    let app = start_with_schedule(Some("* * * * * *")).await;
    let dropped = app.inbox.join(name("PersEducNat"));
    // Dropped whole, as the README asks: a run every second would otherwise
    // catch the file half written.
    let partial = app.inbox.join("PersEducNat.xml.part");
    std::fs::write(&partial, feed("4100002", "MARTIN")).unwrap();
    std::fs::rename(&partial, &dropped).unwrap();
    let imports = || async {
        app.state
            .directory
            .list_imports(&HistoryFilter::everything())
            .await
            .unwrap()
    };
    // The history line is committed before the file is filed away: wait for both.
    let mut waited = 0;
    while imports().await.is_empty() || dropped.exists() {
        waited += 1;
        assert!(waited < 100, "the scheduled run did not happen within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let history = imports().await;
    assert_eq!(
        (history[0].channel.id(), history[0].status.id()),
        ("schedule", "succeeded")
    );
    let filed: Vec<_> = std::fs::read_dir(app.inbox.join("traites")).unwrap().collect();
    assert_eq!(filed.len(), 1, "filed under traites/");
    // The next ticks find an empty inbox.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(imports().await.len(), 1, "imported once");
}
