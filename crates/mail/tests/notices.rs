//! End-of-import notices through a real SMTP exchange on loopback, and the
//! outbox of `.eml` files: subject, recipients, body, attachment or link,
//! retries with backoff when the server is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{TimeZone, Utc};
use domain::{Establishment, Profile, Uai};
use mail::{MailSettings, Notifier, TransportConfig, RETRY_DELAYS};
use mailparse::MailHeaderMap;
use rand::SeedableRng;
use store::history::History;
use store::service::{self, FixedClock, ImportRequest, NoProgress};
use store::sqlite::SqliteDirectory;
use store::Directory;
use support::SmtpServer;

const UAI: &str = "0750654D";
const GUIDE: &[u8] = include_bytes!("../../../examples/enseignants-guide.csv");

struct Fixture {
    directory: SqliteDirectory,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let directory = SqliteDirectory::open(&format!("sqlite://{}/annuaire.db", dir.path().display()))
        .await
        .unwrap();
    directory
        .add_establishment(
            &Establishment {
                uai: Uai::parse(UAI).unwrap(),
                name: "Lycée Test".into(),
            },
            now(),
        )
        .await
        .unwrap();
    Fixture { directory, _dir: dir }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).single().unwrap()
}

fn settings(transport: TransportConfig) -> MailSettings {
    MailSettings {
        ent_name: "ENT Test".into(),
        from: "annuaire <ne-pas-repondre@ent.test>".into(),
        support: Some("support@ent.test".into()),
        attach_results: false,
        public_url: Some("https://ent.test/annuaire/".into()),
        transport,
    }
}

/// Runs an import as every door does and returns its history id.
async fn import(directory: &SqliteDirectory, bytes: &[u8], profile: Profile) -> i64 {
    let mut request = ImportRequest::new(profile, Some(Uai::parse(UAI).unwrap()));
    request.file_name = "enseignants.csv".into();
    request.notify = Some("admin@lycee.test".into());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (_, id) =
        service::run_recorded_import(directory, bytes, &request, &FixedClock(now()), &mut rng, &NoProgress).await;
    id.expect("every import has a history line")
}

fn text_and_html(m: &mailparse::ParsedMail<'_>) -> (String, String) {
    let mut text = String::new();
    let mut html = String::new();
    let mut stack = vec![m];
    while let Some(part) = stack.pop() {
        match part.ctype.mimetype.as_str() {
            "text/plain" => text = part.get_body().unwrap(),
            "text/html" => html = part.get_body().unwrap(),
            _ => {}
        }
        stack.extend(part.subparts.iter());
    }
    (text, html)
}

fn attachments(m: &mailparse::ParsedMail<'_>) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![m];
    while let Some(part) = stack.pop() {
        let disposition = part.get_content_disposition();
        if disposition.disposition == mailparse::DispositionType::Attachment {
            let name = disposition.params.get("filename").cloned().unwrap_or_default();
            found.push((name, part.get_body_raw().unwrap()));
        }
        stack.extend(part.subparts.iter());
    }
    found
}

#[tokio::test]
async fn success_notice_links_to_the_result_without_passwords() {
    let f = fixture().await;
    let smtp = SmtpServer::start(0).await;
    let notifier = Notifier::new(settings(TransportConfig::Smtp(smtp.url()))).unwrap();
    let id = import(&f.directory, GUIDE, Profile::Enseignant).await;
    notifier.import_finished(&f.directory, id, now()).await.unwrap();

    let received = smtp.messages();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m.mail_from, "ne-pas-repondre@ent.test");
    assert_eq!(m.rcpt_to, ["admin@lycee.test"], "no support copy on success");
    let parsed = m.parsed();
    assert_eq!(
        parsed.headers.get_first_value("Subject").unwrap(),
        "[SUCCES] Import CSV-ENT Test"
    );
    let (text, html) = text_and_html(&parsed);
    assert!(text.contains("s'est terminé avec succès"), "{text}");
    assert!(text.contains("Créés : 5"), "{text}");
    assert!(text.contains("Lignes du fichier : 5"), "{text}");
    assert!(
        text.contains("Établissement(s) : Lycée Test (0750654D)"),
        "names, not codes: {text}"
    );
    assert!(html.contains("Lycée Test (0750654D)"), "{html}");
    assert!(
        text.contains(&format!("https://ent.test/annuaire/suivi/{id}")),
        "{text}"
    );
    assert!(
        html.contains(&format!("href=\"https://ent.test/annuaire/suivi/{id}\"")),
        "{html}"
    );
    assert!(
        attachments(&parsed).is_empty(),
        "cleartext passwords stay out of mail by default"
    );
    let entry = f.directory.import_entry(id).await.unwrap().unwrap();
    assert_eq!(entry.mail_status.map(|s| s.id()), Some("sent"));
}

#[tokio::test]
async fn the_result_file_is_attached_when_the_setting_says_so() {
    let f = fixture().await;
    let smtp = SmtpServer::start(0).await;
    let mut s = settings(TransportConfig::Smtp(smtp.url()));
    s.attach_results = true;
    let notifier = Notifier::new(s).unwrap();
    let id = import(&f.directory, GUIDE, Profile::Enseignant).await;
    notifier.import_finished(&f.directory, id, now()).await.unwrap();

    let parsed_messages = smtp.messages();
    let parsed = parsed_messages[0].parsed();
    let files = attachments(&parsed);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, format!("resultat-import-{id}.csv"));
    let stored = f.directory.import_result(id, now()).await.unwrap().unwrap();
    assert_eq!(files[0].1, stored, "the attachment is the result file, byte for byte");
    assert!(String::from_utf8_lossy(&stored).contains("fplaton"));
    let mails = f.directory.mails_of_import(id).await.unwrap();
    assert!(
        mails[0].attachment.is_none(),
        "the queue forgets the passwords once sent"
    );
}

#[tokio::test]
async fn error_notice_copies_support_and_says_nothing_changed() {
    let f = fixture().await;
    let smtp = SmtpServer::start(0).await;
    let notifier = Notifier::new(settings(TransportConfig::Smtp(smtp.url()))).unwrap();
    // No last-name column: the mapping is refused.
    let id = import(
        &f.directory,
        "Prénom;Matière\nFrancis;Philosophie\n".as_bytes(),
        Profile::Enseignant,
    )
    .await;
    let entry = f.directory.import_entry(id).await.unwrap().unwrap();
    assert_eq!(entry.status.id(), "rejected");
    notifier.import_finished(&f.directory, id, now()).await.unwrap();

    let received = smtp.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["admin@lycee.test", "support@ent.test"]);
    let parsed = received[0].parsed();
    assert_eq!(
        parsed.headers.get_first_value("Subject").unwrap(),
        "[ERREUR] Import CSV-ENT Test"
    );
    assert_eq!(parsed.headers.get_first_value("Cc").unwrap(), "support@ent.test");
    let (text, _) = text_and_html(&parsed);
    assert!(text.contains("n'a pas été effectué"), "{text}");
    assert!(text.contains("Nom"), "says which column is missing: {text}");
    assert!(text.contains("Rien n'a été modifié dans l'annuaire"), "{text}");
    assert_eq!(f.directory.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn a_failed_send_is_retried_with_backoff_and_never_fails_the_import() {
    let f = fixture().await;
    let smtp = SmtpServer::start(1).await;
    let notifier = Notifier::new(settings(TransportConfig::Smtp(smtp.url()))).unwrap();
    let id = import(&f.directory, GUIDE, Profile::Enseignant).await;
    let t0 = now();
    notifier.import_finished(&f.directory, id, t0).await.unwrap();
    assert!(smtp.messages().is_empty());
    assert_eq!(f.directory.count_users().await.unwrap(), 5, "the import stands");
    let mails = f.directory.mails_of_import(id).await.unwrap();
    assert_eq!(mails[0].status.id(), "pending");
    assert_eq!(mails[0].attempts, 1);
    assert_eq!(mails[0].next_attempt_at, t0 + seconds(RETRY_DELAYS[0]));
    assert!(
        mails[0].last_error.as_deref().unwrap_or("").contains("421"),
        "{:?}",
        mails[0].last_error
    );
    let entry = f.directory.import_entry(id).await.unwrap().unwrap();
    assert_eq!(
        entry.mail_status.map(|s| s.id()),
        Some("pending"),
        "visible in the history"
    );

    let early = notifier
        .deliver_due(&f.directory, t0 + seconds(RETRY_DELAYS[0] - 1))
        .await
        .unwrap();
    assert_eq!(early.sent, 0, "not before the backoff delay");
    let later = notifier
        .deliver_due(&f.directory, t0 + seconds(RETRY_DELAYS[0]))
        .await
        .unwrap();
    assert_eq!(later.sent, 1);
    assert_eq!(smtp.messages().len(), 1);
    let again = notifier.deliver_due(&f.directory, t0 + seconds(100_000)).await.unwrap();
    assert_eq!(again.sent, 0, "sent once, never twice");
}

#[tokio::test]
async fn a_mail_that_never_goes_out_is_marked_failed() {
    let f = fixture().await;
    let smtp = SmtpServer::start(usize::MAX).await;
    let notifier = Notifier::new(settings(TransportConfig::Smtp(smtp.url()))).unwrap();
    let id = import(&f.directory, GUIDE, Profile::Enseignant).await;
    let mut t = now();
    notifier.import_finished(&f.directory, id, t).await.unwrap();
    for delay in RETRY_DELAYS {
        t += seconds(delay);
        notifier.deliver_due(&f.directory, t).await.unwrap();
    }
    let mails = f.directory.mails_of_import(id).await.unwrap();
    assert_eq!(mails[0].status.id(), "failed");
    assert_eq!(mails[0].attempts, RETRY_DELAYS.len() as i64 + 1);
    let entry = f.directory.import_entry(id).await.unwrap().unwrap();
    assert_eq!(entry.mail_status.map(|s| s.id()), Some("failed"));
}

#[tokio::test]
async fn the_outbox_holds_one_eml_file_per_mail() {
    let f = fixture().await;
    let outbox = tempfile::tempdir().unwrap();
    let notifier = Notifier::new(settings(TransportConfig::Outbox(outbox.path().join("outbox")))).unwrap();
    let id = import(&f.directory, GUIDE, Profile::Enseignant).await;
    notifier.import_finished(&f.directory, id, now()).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(outbox.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "eml");
    let raw = std::fs::read(&files[0]).unwrap();
    let parsed = mailparse::parse_mail(&raw).unwrap();
    assert_eq!(
        parsed.headers.get_first_value("Subject").unwrap(),
        "[SUCCES] Import CSV-ENT Test"
    );
    assert_eq!(parsed.headers.get_first_value("To").unwrap(), "admin@lycee.test");
}

#[tokio::test]
async fn no_recipient_no_mail() {
    let f = fixture().await;
    let smtp = SmtpServer::start(0).await;
    let notifier = Notifier::new(settings(TransportConfig::Smtp(smtp.url()))).unwrap();
    let mut request = ImportRequest::new(Profile::Enseignant, Some(Uai::parse(UAI).unwrap()));
    request.file_name = "enseignants.csv".into();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (_, id) =
        service::run_recorded_import(&f.directory, GUIDE, &request, &FixedClock(now()), &mut rng, &NoProgress).await;
    let queued = notifier
        .import_finished(&f.directory, id.unwrap(), now())
        .await
        .unwrap();
    assert_eq!(queued, None);
    assert!(smtp.messages().is_empty());
}

#[test]
fn bad_settings_are_refused_with_a_french_message() {
    let mut s = settings(TransportConfig::Smtp("ftp://x".into()));
    let e = Notifier::new(s.clone()).err().unwrap().to_string();
    assert!(e.contains("URL SMTP invalide"), "{e}");
    s.transport = TransportConfig::Disabled;
    s.from = "pas une adresse".into();
    let e = Notifier::new(s).err().unwrap().to_string();
    assert!(e.contains("adresse d'expéditeur invalide"), "{e}");
}

fn seconds(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}
