//! End-of-import notices (SPEC §7, guide §5.2.E): `[SUCCES]` or `[ERREUR]`
//! to the admin who ran the import, support copied on errors.
//!
//! A notice is first written to the durable queue of the directory
//! ([`store::history::History`]), then sent: sending never blocks nor fails
//! an import, and a failed send is retried with backoff ([`RETRY_DELAYS`]) by
//! whoever delivers next (the server's worker, or `annuaire mail send`).
//!
//! Transports: SMTP (lettre; `smtps://` implicit TLS, `smtp://…?tls=required`
//! STARTTLS, credentials in the URL) for production, and for the embedded
//! default an outbox directory where every mail lands as an `.eml` file that
//! any mail client opens.

use askama::Template;
use chrono::{DateTime, Utc};
use domain::vocabulary::{ImportSource, ImportStatus};
use domain::Uai;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use store::history::{AttachmentEntry, History, ImportEntry, NewMail, QueuedMail};

/// Seconds before the 2nd, 3rd… attempt; after the last one the mail is
/// marked failed (visible in the history) and never retried.
pub const RETRY_DELAYS: [i64; 6] = [60, 300, 1_800, 7_200, 21_600, 86_400];

/// How long a claimed mail is left to its sender before another may retry it.
const SEND_LEASE_SECONDS: i64 = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// Each mail as an `.eml` file in this directory (the embedded default).
    Outbox(PathBuf),
    /// An SMTP URL as lettre reads it: `smtps://user:password@host:465`,
    /// `smtp://user:password@host:587?tls=required`, `smtp://host:25`.
    Smtp(String),
    /// No notices at all.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub ent_name: String,
    pub from: String,
    /// Copied on every `[ERREUR]` notice.
    pub support: Option<String>,
    /// Attach the result file (cleartext passwords) instead of linking to it.
    pub attach_results: bool,
    /// Address of the web interface, for links (`https://ent.example/annuaire`).
    pub public_url: Option<String>,
    pub transport: TransportConfig,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            ent_name: "annuaire".into(),
            from: "annuaire <ne-pas-repondre@annuaire.invalid>".into(),
            support: None,
            attach_results: false,
            public_url: None,
            transport: TransportConfig::Outbox(PathBuf::from("data/outbox")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("adresse d'expéditeur invalide « {0} » : écrivez par exemple « annuaire <ne-pas-repondre@ent.fr> »")]
    From(String),
    #[error("adresse du support invalide « {0} »")]
    Support(String),
    #[error(
        "URL SMTP invalide : {0} (exemples : smtps://utilisateur:motdepasse@smtp.ent.fr:465, smtp://localhost:25)"
    )]
    SmtpUrl(String),
    #[error("dossier des courriels {0} impossible à créer : {1}")]
    Outbox(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("modèle de courriel : {0}")]
    Template(#[from] askama::Error),
}

/// Where mails go.
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
    Disabled,
}

impl Transport {
    pub fn new(config: &TransportConfig) -> Result<Self, MailError> {
        match config {
            TransportConfig::Outbox(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| MailError::Outbox(dir.display().to_string(), e))?;
                Ok(Transport::Outbox(AsyncFileTransport::new(dir)))
            }
            // The URL carries the password: the error never repeats it.
            TransportConfig::Smtp(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|b| Transport::Smtp(b.build()))
                .map_err(|e| MailError::SmtpUrl(e.to_string().replace(url.as_str(), "…"))),
            TransportConfig::Disabled => Ok(Transport::Disabled),
        }
    }

    async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Outbox(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Disabled => Ok(()),
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    /// Failed this time, to be retried later.
    pub retried: usize,
    /// Failed for good.
    pub failed: usize,
}

/// The settings and the transport, checked once at start.
pub struct Notifier {
    settings: MailSettings,
    from: Mailbox,
    transport: Transport,
}

impl Notifier {
    pub fn new(settings: MailSettings) -> Result<Self, MailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| MailError::From(settings.from.clone()))?;
        if let Some(support) = &settings.support {
            support
                .parse::<Mailbox>()
                .map_err(|_| MailError::Support(support.clone()))?;
        }
        let transport = Transport::new(&settings.transport)?;
        Ok(Notifier {
            settings,
            from,
            transport,
        })
    }

    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    pub fn enabled(&self) -> bool {
        !matches!(self.transport, Transport::Disabled)
    }

    /// Queues the notice of a finished import (if it has a recipient), then
    /// tries to send what is due. Returns the queued mail's id.
    pub async fn import_finished<H: History>(
        &self,
        history: &H,
        import_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, MailError> {
        if !self.enabled() {
            return Ok(None);
        }
        let Some(entry) = history.import_entry(import_id).await? else {
            return Ok(None);
        };
        for mail in self.attachment_notices(history, import_id).await? {
            history.enqueue_mail(&mail, now).await?;
        }
        let attachment = if self.settings.attach_results && entry.status == ImportStatus::Succeeded {
            history.import_result(import_id, now).await?
        } else {
            None
        };
        let named = history.establishments_named(&entry.establishments).await?;
        let Some(mail) = compose(&entry, &named, &self.settings, attachment)? else {
            self.deliver_due(history, now).await?;
            return Ok(None);
        };
        let id = history.enqueue_mail(&mail, now).await?;
        self.deliver_due(history, now).await?;
        Ok(Some(id))
    }

    /// Queues the "mot de passe oublié" mail with its single-use link, then
    /// tries to send what is due. The link's secret stays in the queue's copy
    /// of the mail: harmless once used or after its few minutes of life.
    pub async fn password_reset<H: History>(
        &self,
        history: &H,
        to: &str,
        link: &str,
        minutes: i64,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        if !self.enabled() {
            return Ok(());
        }
        let ent = self.settings.ent_name.as_str();
        let reset = ResetLink { ent, link, minutes };
        let (text, html) = (ResetText { r: &reset }.render()?, ResetHtml { r: &reset }.render()?);
        let mail = NewMail {
            import_id: None,
            recipients: vec![to.to_string()],
            cc: Vec::new(),
            subject: format!("Mot de passe oublié — {ent}"),
            body_text: text,
            body_html: html,
            attachment: None,
        };
        history.enqueue_mail(&mail, now).await?;
        self.deliver_due(history, now).await?;
        Ok(())
    }

    /// One notice per establishment that already had accounts this import
    /// attached elsewhere, to its admins who gave an address.
    async fn attachment_notices<H: History>(&self, history: &H, import_id: i64) -> Result<Vec<NewMail>, MailError> {
        let mut by_other: std::collections::BTreeMap<Uai, Vec<AttachmentEntry>> = std::collections::BTreeMap::new();
        for a in history.attachments_of_import(import_id).await? {
            by_other.entry(a.other_uai.clone()).or_default().push(a);
        }
        let mut mails = Vec::new();
        for (uai, list) in by_other {
            let recipients = history.admin_emails_of(&uai).await?;
            if recipients.is_empty() {
                continue;
            }
            let other = list.first().map_or_else(|| uai.to_string(), |a| a.other().to_string());
            let notice = AttachmentNotice {
                ent_name: &self.settings.ent_name,
                other,
                sentences: list.iter().map(app::labels::attachment).collect(),
                link: self
                    .settings
                    .public_url
                    .as_ref()
                    .map(|base| format!("{}/suivi", base.trim_end_matches('/'))),
            };
            mails.push(NewMail {
                import_id: Some(import_id),
                recipients,
                cc: Vec::new(),
                subject: format!(
                    "[INFO] Comptes de {uai} rattachés à un autre établissement — {}",
                    self.settings.ent_name
                ),
                body_text: AttachmentsText { n: &notice }.render()?,
                body_html: AttachmentsHtml { n: &notice }.render()?,
                attachment: None,
            });
        }
        Ok(mails)
    }

    /// Sends every mail that is due; failures are rescheduled, never raised.
    pub async fn deliver_due<H: History>(&self, history: &H, now: DateTime<Utc>) -> Result<Delivery, MailError> {
        let mut delivery = Delivery::default();
        if !self.enabled() {
            return Ok(delivery);
        }
        loop {
            let batch = history.claim_due_mails(now, SEND_LEASE_SECONDS, 50).await?;
            if batch.is_empty() {
                return Ok(delivery);
            }
            for mail in batch {
                let sent = match message(&mail, &self.from) {
                    Ok(m) => self.transport.send(m).await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(()) => {
                        history.mail_sent(mail.id, now).await?;
                        delivery.sent += 1;
                    }
                    Err(error) => {
                        let retry_at = retry_at(mail.attempts, now);
                        history.mail_failed(mail.id, &error, retry_at).await?;
                        if retry_at.is_some() {
                            delivery.retried += 1;
                        } else {
                            delivery.failed += 1;
                        }
                    }
                }
            }
        }
    }
}

/// When to try again after the `attempts`-th failed attempt (`None`: give up).
pub fn retry_at(attempts: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let index = usize::try_from(attempts.max(1) - 1).ok()?;
    RETRY_DELAYS
        .get(index)
        .map(|delay| now + chrono::Duration::seconds(*delay))
}

struct AttachmentNotice<'a> {
    ent_name: &'a str,
    /// "Lycée Henri-IV (0750653C)".
    other: String,
    sentences: Vec<String>,
    link: Option<String>,
}

#[derive(Template)]
#[template(path = "attachments.txt")]
struct AttachmentsText<'a> {
    n: &'a AttachmentNotice<'a>,
}

#[derive(Template)]
#[template(path = "attachments.html")]
struct AttachmentsHtml<'a> {
    n: &'a AttachmentNotice<'a>,
}

#[derive(Template)]
#[template(path = "notice.txt")]
struct NoticeText<'a> {
    n: &'a Notice<'a>,
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticeHtml<'a> {
    n: &'a Notice<'a>,
}

/// What both templates show.
struct Notice<'a> {
    e: &'a ImportEntry,
    ent_name: &'a str,
    succeeded: bool,
    kind: &'static str,
    establishments: String,
    started: String,
    duration: String,
    link: Option<String>,
    attached: bool,
    expires: Option<String>,
    profile: String,
}

fn utc_time(at: DateTime<Utc>) -> String {
    domain::time::in_words(at)
}

/// The notice of one import, or `None` when nobody is to be told.
pub fn compose(
    entry: &ImportEntry,
    named: &[domain::Establishment],
    settings: &MailSettings,
    attachment: Option<Vec<u8>>,
) -> Result<Option<NewMail>, MailError> {
    let Some(recipient) = entry.notify.clone().filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let succeeded = entry.status == ImportStatus::Succeeded;
    let kind = match entry.source {
        ImportSource::Aaf => "AAF",
        ImportSource::Csv => "CSV",
    };
    let subject = format!(
        "[{}] Import {kind}-{}",
        if succeeded { "SUCCES" } else { "ERREUR" },
        settings.ent_name
    );
    let link = settings
        .public_url
        .as_ref()
        .map(|base| format!("{}/suivi/{}", base.trim_end_matches('/'), entry.id));
    let attached = succeeded && attachment.is_some();
    let profile = app::labels::import_profile(entry);
    let notice = Notice {
        e: entry,
        ent_name: &settings.ent_name,
        succeeded,
        kind,
        // "Collège Jean Moulin (0750654D)", the bare UAI when it is unknown.
        establishments: entry
            .establishments
            .iter()
            .map(|u| match named.iter().find(|e| &e.uai == u) {
                Some(e) => e.to_string(),
                None => u.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        started: utc_time(entry.started_at),
        duration: entry
            .duration_seconds()
            .map(|s| format!("{s} s"))
            .unwrap_or_else(|| "—".into()),
        link,
        attached,
        expires: entry.result_expires_at.map(utc_time),
        profile,
    };
    let body_text = NoticeText { n: &notice }.render()?;
    let body_html = NoticeHtml { n: &notice }.render()?;
    let cc = if succeeded {
        Vec::new()
    } else {
        settings.support.iter().cloned().collect()
    };
    Ok(Some(NewMail {
        import_id: Some(entry.id),
        recipients: vec![recipient],
        cc,
        subject,
        body_text,
        body_html,
        attachment: attachment
            .filter(|_| attached)
            .map(|content| (format!("resultat-import-{}.csv", entry.id), content)),
    }))
}

/// The MIME message of a queued mail: text and HTML alternatives, and the
/// result file as a CSV attachment when there is one.
pub fn message(mail: &QueuedMail, from: &Mailbox) -> Result<Message, String> {
    let mut builder = Message::builder().from(from.clone()).subject(mail.subject.clone());
    for to in &mail.recipients {
        builder = builder.to(to.parse().map_err(|_| format!("destinataire invalide « {to} »"))?);
    }
    for cc in &mail.cc {
        builder = builder.cc(cc.parse().map_err(|_| format!("copie invalide « {cc} »"))?);
    }
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(mail.body_text.clone()))
        .singlepart(SinglePart::html(mail.body_html.clone()));
    let body = match &mail.attachment {
        None => alternative,
        Some((name, content)) => {
            let csv = ContentType::parse("text/csv; charset=utf-8").map_err(|e| e.to_string())?;
            MultiPart::mixed()
                .multipart(alternative)
                .singlepart(Attachment::new(name.clone()).body(content.clone(), csv))
        }
    };
    builder.multipart(body).map_err(|e| e.to_string())
}

/// What the "mot de passe oublié" mail says.
struct ResetLink<'a> {
    ent: &'a str,
    link: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "password_reset.txt")]
struct ResetText<'a> {
    r: &'a ResetLink<'a>,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetHtml<'a> {
    r: &'a ResetLink<'a>,
}
