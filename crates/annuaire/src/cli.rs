//! Command-line arguments (the names are part of the contract, see README).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Default database: an SQLite file in ./data, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/annuaire.db";

#[derive(Debug, Parser)]
#[command(
    name = "annuaire",
    version,
    about = "Annuaire ENT : import CSV des personnels, élèves et parents"
)]
pub struct Cli {
    /// sqlite://CHEMIN (créé si absent) ou postgres://…
    #[arg(long, global = true, env = "ANNUAIRE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database: String,
    #[command(flatten)]
    pub mail: MailArgs,
    /// Dossier des fichiers résultats (mots de passe en clair) quand --result est absent ; créé lisible par vous seul
    #[arg(long, global = true, env = "ANNUAIRE_RESULTS_DIR", default_value = crate::result_file::DEFAULT_RESULTS_DIR)]
    pub results_dir: PathBuf,
    /// Format du journal sur la sortie d'erreur : text (lisible) ou json (une ligne JSON par
    /// évènement, pour un collecteur) ; le niveau se règle avec RUST_LOG (défaut : info)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ANNUAIRE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Agir en tant que cet administrateur (login du web) : ses établissements bornent ce que la commande
    /// peut faire et le journal porte son nom (import, users show, users set, users leave) ; sans elle,
    /// l'exploitant a tous les droits
    #[arg(long = "as-admin", global = true, value_name = "LOGIN", env = "ANNUAIRE_AS_ADMIN")]
    pub as_admin: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where end-of-import notices go (README, "Courriels").
#[derive(Debug, Clone, Args)]
pub struct MailArgs {
    /// Nom de l'ENT, dans les titres et l'objet des courriels ([SUCCES] Import CSV-<nom>)
    #[arg(long, global = true, default_value = "annuaire", env = "ANNUAIRE_ENT_NAME")]
    pub ent_name: String,
    /// Serveur SMTP : smtps://utilisateur:motdepasse@hote:465, smtp://hote:587?tls=required ou smtp://hote:25 (sinon : dossier --mail-outbox)
    #[arg(long, global = true, env = "ANNUAIRE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Dossier où chaque courriel est déposé en fichier .eml quand aucun serveur SMTP n'est configuré
    #[arg(long, global = true, default_value = "data/outbox", env = "ANNUAIRE_MAIL_OUTBOX")]
    pub mail_outbox: PathBuf,
    /// Expéditeur des courriels
    #[arg(
        long,
        global = true,
        default_value = "annuaire <ne-pas-repondre@annuaire.invalid>",
        env = "ANNUAIRE_MAIL_FROM"
    )]
    pub mail_from: String,
    /// Adresse du support, mise en copie des courriels [ERREUR]
    #[arg(long, global = true, env = "ANNUAIRE_SUPPORT_EMAIL")]
    pub support_email: Option<String>,
    /// Joindre le fichier résultat (mots de passe en clair) au courriel au lieu d'un lien
    #[arg(long, global = true, env = "ANNUAIRE_MAIL_ATTACH_RESULTS")]
    pub mail_attach_results: bool,
    /// Adresse publique de l'interface web, pour les liens des courriels (https://ent.exemple.fr/annuaire)
    #[arg(long, global = true, env = "ANNUAIRE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// N'envoyer aucun courriel
    #[arg(long, global = true)]
    pub no_mail: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Établissements (UAI/RNE)
    #[command(subcommand)]
    Establishment(EstablishmentCommand),
    /// Importer un fichier CSV d'utilisateurs
    Import(Box<ImportArgs>),
    /// Exporter les utilisateurs d'un établissement au format d'import
    Export(ExportArgs),
    /// La Vie Scolaire (LVS) : export des enseignants et personnels avec leur profil LVS
    #[command(subcommand)]
    Lvs(LvsCommand),
    /// Rechercher, restaurer, purger des comptes
    #[command(subcommand)]
    Users(UsersCommand),
    /// Services de l'ENT reliés par CAS (vie scolaire, manuels…) : qui s'y connecte, ce qu'ils reçoivent
    #[command(subcommand)]
    Services(ServicesCommand),
    /// Flux académique AAF (ficAlimMENESR)
    #[command(subcommand)]
    Aaf(crate::admin_commands::AafCommand),
    /// Comptes probablement en double entre import CSV et flux AAF
    Duplicates(crate::admin_commands::DuplicatesArgs),
    /// Réconcilier un compte CSV avec le compte AAF de la même personne (guide §7)
    Reconcile(crate::admin_commands::ReconcileArgs),
    /// Journal d'audit : qui a fait quoi, quand, à qui
    Audit(crate::admin_commands::AuditArgs),
    /// Suivi des imports (CLI, web, API, flux AAF)
    #[command(subcommand)]
    Imports(ImportsCommand),
    /// Courriels de fin d'import en attente
    #[command(subcommand)]
    Mail(MailCommand),
    /// Démonstration : crée l'établissement 0750654D et y importe les cinq enseignants du guide
    Demo,
    /// Serveur web : assistant d'import en cinq étapes
    Serve(ServeArgs),
    /// Comptes administrateurs du web et de l'API
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Adresse d'écoute
    #[arg(long, default_value = "127.0.0.1:8080", env = "ANNUAIRE_LISTEN")]
    pub listen: String,
    /// Démonstration : crée l'établissement 0750654D et l'administrateur « demo », affiche son mot de passe
    #[arg(long)]
    pub demo: bool,
    /// Cookies « Secure » (derrière HTTPS)
    #[arg(long)]
    pub secure_cookies: bool,
    /// Adresse où les utilisateurs se connectent, imprimée sur les fiches de connexion
    #[arg(long, default_value = "", env = "ANNUAIRE_SIGN_IN_URL")]
    pub sign_in_url: String,
    /// Jours pendant lesquels le fichier résultat (mots de passe) reste téléchargeable
    #[arg(long, default_value_t = store::service::DEFAULT_RESULT_RETENTION_DAYS)]
    pub result_retention_days: i64,
    /// Dossier où arrivent les fichiers du flux AAF (*.xml), importés à chaque échéance de --aaf-schedule
    #[arg(long, env = "ANNUAIRE_AAF_INBOX", requires = "aaf_schedule")]
    pub aaf_inbox: Option<PathBuf>,
    /// Échéances du flux AAF, au format cron, en heure de Paris (« 30 2 * * * » : chaque nuit à 2 h 30)
    #[arg(long, env = "ANNUAIRE_AAF_SCHEDULE", requires = "aaf_inbox")]
    pub aaf_schedule: Option<String>,
    /// Destinataire de l'avis de fin de chaque flux AAF planifié
    #[arg(long, env = "ANNUAIRE_AAF_NOTIFY")]
    pub aaf_notify: Option<String>,
    /// Secondes sans nouvelles après lesquelles un autre serveur reprend l'import d'un serveur arrêté net
    #[arg(long, value_name = "SECONDES", default_value_t = store::web::JOB_LEASE_SECONDS,
          value_parser = clap::value_parser!(i64).range(2..=3600), env = "ANNUAIRE_JOB_LEASE")]
    pub job_lease: i64,
    /// À l'arrêt (Ctrl+C, SIGTERM), secondes laissées à l'import en cours pour finir avant d'être remis dans la file
    #[arg(long, value_name = "SECONDES", default_value_t = 30, env = "ANNUAIRE_SHUTDOWN_GRACE")]
    pub shutdown_grace: u64,
    /// Durée de vie d'un ticket de service CAS, en secondes (10 conseillé par la spécification)
    #[arg(long, value_name = "SECONDES", default_value_t = 10,
          value_parser = clap::value_parser!(i64).range(1..=300), env = "ANNUAIRE_CAS_TICKET_SECONDS")]
    pub cas_ticket_seconds: i64,
    /// Minutes sans activité après lesquelles la session unique (CAS) d'une personne se ferme
    #[arg(long, value_name = "MINUTES", default_value_t = 120,
          value_parser = clap::value_parser!(i64).range(1..=1440), env = "ANNUAIRE_CAS_IDLE_MINUTES")]
    pub cas_idle_minutes: i64,
    /// Heures après lesquelles la session unique (CAS) se ferme dans tous les cas
    #[arg(long, value_name = "HEURES", default_value_t = 10,
          value_parser = clap::value_parser!(i64).range(1..=168), env = "ANNUAIRE_CAS_LIFETIME_HOURS")]
    pub cas_lifetime_hours: i64,
    /// Réseau d'un mandataire inverse (reverse proxy) dont l'en-tête X-Forwarded-For donne l'adresse du client (répétable : --trusted-proxy 10.0.0.0/8)
    #[arg(long = "trusted-proxy", value_name = "RÉSEAU")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// Enregistrer un service : son nom et le début de ses adresses (https://vie-scolaire.exemple.fr/)
    Add(ServiceAddArgs),
    /// Les services enregistrés
    List {
        #[arg(long)]
        json: bool,
    },
    /// Retirer un service : ses tickets ne sont plus validés
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct ServiceAddArgs {
    /// Nom court du service (vie-scolaire, manuels…)
    pub name: String,
    /// Début des adresses du service : toute adresse qui commence ainsi est ce service
    pub url_prefix: String,
    /// Établissement dont les personnes peuvent s'y connecter (répétable ; aucun : tous)
    #[arg(long = "establishment", value_name = "UAI")]
    pub establishments: Vec<String>,
    /// Attributs transmis au service, séparés par des virgules (login,lastName,firstName,displayName,birthDate,email,profile,schools,classes,ENTPersonJointure,ENTPersonProfils,ENTPersonStructRattach,ENTPersonFonctions,ENTEleveClasses,lvsProfile)
    #[arg(long)]
    pub attributes: Option<String>,
    /// Le service peut demander des tickets de proxy (portail qui appelle d'autres services)
    #[arg(long)]
    pub proxy: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Créer un administrateur (mot de passe lu sur l'entrée standard avec --password-stdin, sinon généré et affiché une fois)
    Create {
        login: String,
        /// Administrateur système : tous les établissements
        #[arg(long, conflicts_with = "establishment")]
        system: bool,
        /// Établissement(s) administré(s)
        #[arg(long = "establishment", value_name = "UAI")]
        establishment: Vec<String>,
        /// Lire le mot de passe sur l'entrée standard
        #[arg(long)]
        password_stdin: bool,
        /// Adresse où envoyer les avis de fin d'import de cet administrateur
        #[arg(long)]
        email: Option<String>,
    },
    /// Créer un jeton d'API pour un administrateur (affiché une fois)
    Token { login: String },
}

#[derive(Debug, Subcommand)]
pub enum EstablishmentCommand {
    /// Ajouter un établissement
    Add { uai: String, name: String },
    /// Renommer un établissement (inscrit au journal)
    Rename { uai: String, name: String },
    /// Lister les établissements
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Fichier CSV à importer
    pub file: PathBuf,
    /// enseignant, administratif, eleve ou parent
    #[arg(long)]
    pub profile: String,
    /// UAI de l'établissement visé
    #[arg(long)]
    pub establishment: Option<String>,
    /// Séparateur (détecté si absent) : ";", ",", "tab", "|"
    #[arg(long)]
    pub separator: Option<String>,
    /// auto, utf-8, windows-1252, iso-8859-1, macintosh
    #[arg(long, default_value = "auto")]
    pub encoding: String,
    /// Le fichier n'a pas de ligne d'en-tête (colonnes lues dans l'ordre du modèle)
    #[arg(long)]
    pub no_header: bool,
    /// Correspondance "COLONNE=champ" (nom ou numéro de colonne ; champ ou "ignorer")
    #[arg(long = "map", value_name = "COLONNE=CHAMP")]
    pub map: Vec<String>,
    /// Personnel administratif : affecter aux établissements indiqués dans le fichier (colonne RNE)
    #[arg(long)]
    pub establishments_from_file: bool,
    /// Ne pas importer les lignes en conflit
    #[arg(long)]
    pub skip_conflicts: bool,
    /// Rattacher aussi à l'établissement les comptes existant dans un autre établissement que le fichier
    /// nomme (enseignant sur deux établissements) ; sans cette option, ces lignes sont en conflit
    #[arg(long)]
    pub attach_existing: bool,
    /// Mode Complet : désactive les comptes CSV absents du fichier (dangereux, voir README)
    #[arg(long)]
    pub complet: bool,
    /// Confirme le nombre exact de désactivations au-delà du seuil
    #[arg(long, value_name = "N")]
    pub confirm_deletions: Option<usize>,
    /// Seuil de désactivations sans confirmation, en % des comptes concernés
    #[arg(long, default_value_t = domain::vocabulary::DEFAULT_DELETION_THRESHOLD_PERCENT, value_name = "POURCENT")]
    pub deletion_threshold: u32,
    /// Vérifier et afficher le plan sans rien écrire
    #[arg(long)]
    pub dry_run: bool,
    /// Où écrire le fichier résultat (clés, logins, mots de passe) : un fichier qui n'existe pas encore
    #[arg(long, value_name = "FICHIER")]
    pub result: Option<PathBuf>,
    /// Format du compte rendu
    #[arg(long, value_enum, default_value = "text")]
    pub report: ReportFormat,
    /// Modèle des logins générés : initiale-nom (ncepe) ou prenom.nom
    #[arg(long, default_value = "initiale-nom")]
    pub login_pattern: String,
    /// Longueur minimale d'un mot de passe imposé
    #[arg(long, default_value_t = domain::password::DEFAULT_MIN_LEN)]
    pub min_password_length: usize,
    /// Taille maximale du fichier, en octets
    #[arg(long, default_value_t = domain::decode::Limits::default().max_bytes)]
    pub max_file_size: usize,
    /// Nombre maximal de lignes
    #[arg(long, default_value_t = domain::decode::Limits::default().max_rows)]
    pub max_rows: usize,
    /// Adresse à qui envoyer l'avis de fin d'import ([SUCCES] / [ERREUR])
    #[arg(long, value_name = "COURRIEL")]
    pub notify: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub establishment: String,
    #[arg(long)]
    pub profile: String,
    /// Fichier de sortie (sortie standard si absent)
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LvsCommand {
    /// Les enseignants (Professeur) et personnels (profil de leur fonction) d'un établissement,
    /// pour La Vie Scolaire ; les TOS ne sont jamais exportés
    Export(LvsExportArgs),
    /// La correspondance des 60 codes de fonction avec les profils LVS (celle du guide, et vos changements)
    Profiles {
        #[arg(long)]
        json: bool,
    },
    /// Donner un autre profil LVS à un code de fonction, pour tout l'ENT (administrateur système)
    Set {
        /// Code de fonction (DIR, EDU, TOS…)
        code: String,
        /// Libellé du profil dans LVS (40 caractères au plus)
        profile: String,
    },
    /// Ne plus exporter vers LVS les personnels de ce code de fonction (administrateur système)
    Exclude { code: String },
    /// Rendre à un code de fonction le profil LVS du guide (administrateur système)
    Reset { code: String },
}

#[derive(Debug, Args)]
pub struct LvsExportArgs {
    /// UAI de l'établissement
    #[arg(long)]
    pub establishment: String,
    /// csv (pour Excel) ou json (tableau d'objets : sync_key, login, last_name, first_name, function, lvs_profile)
    #[arg(long, value_enum, default_value_t = LvsFormat::Csv)]
    pub format: LvsFormat,
    /// Fichier de sortie (sortie standard si absent)
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LvsFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Créer un compte à la main, de tout profil (administrateurs et invités compris)
    Add(Box<crate::admin_commands::UserAddArgs>),
    /// Rechercher des comptes (préfixes, sans accents ni casse), par ordre alphabétique
    Search(SearchArgs),
    /// Afficher un compte : identité, source, établissements, paramètres
    Show(UserShowArgs),
    /// Modifier les paramètres d'un compte (expiration, plages IP, protection) ou son identité
    Set(Box<UserSetArgs>),
    /// Retirer un compte d'un établissement (le seul changement permis sur un compte partagé avec un
    /// établissement que vous n'administrez pas) ; sans autre établissement actif, il est désactivé
    Leave {
        /// Clé de synchronisation du compte
        key: String,
        /// UAI de l'établissement à retirer
        #[arg(long)]
        establishment: String,
    },
    /// Désactiver un compte (il ne peut plus se connecter ; rattachements, groupes et identifiant
    /// conservés ; inscrit au journal). Pas un compte du flux AAF, ni un compte partagé
    Deactivate {
        /// Clé de synchronisation du compte
        key: String,
    },
    /// Réactiver un compte désactivé (inscrit au journal)
    Reactivate {
        /// Clé de synchronisation du compte
        key: String,
    },
    /// Donner un nouveau mot de passe tiré au hasard, affiché une seule fois, à changer à la
    /// première connexion (inscrit au journal, sans le mot de passe)
    ResetPassword {
        /// Clé de synchronisation du compte
        key: String,
    },
    /// Réactiver les comptes désactivés par un import Complet
    Restore {
        /// Numéro de l'import (affiché à la fin de l'import)
        #[arg(long)]
        import: i64,
    },
    /// Supprimer définitivement les comptes désactivés depuis plus de N jours
    Purge {
        #[arg(long, default_value_t = 90)]
        retention_days: i64,
    },
}

#[derive(Debug, Args)]
pub struct UserShowArgs {
    /// Clé de synchronisation du compte
    pub key: String,
    #[arg(long)]
    pub json: bool,
}

/// Only the options given change; the others stay as they are.
#[derive(Debug, Args)]
pub struct UserSetArgs {
    /// Clé de synchronisation du compte
    pub key: String,
    /// Dernier jour de validité (jj/mm/aaaa), ou « jamais »
    #[arg(long, value_name = "DATE")]
    pub expires: Option<String>,
    /// Plages IP autorisées, séparées par des virgules (192.168.1.0/24,10.0.0.0/8) ; "" pour toutes
    #[arg(long, value_name = "PLAGES")]
    pub allowed_ips: Option<String>,
    /// Protéger le compte : seule sa synchronisation change son identité
    #[arg(long, conflicts_with = "unprotected")]
    pub protected: bool,
    /// Retirer la protection (impossible pour un compte du flux AAF)
    #[arg(long)]
    pub unprotected: bool,
    #[arg(long)]
    pub civility: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    /// Date de naissance (jj/mm/aaaa)
    #[arg(long)]
    pub birth_date: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// Téléphone portable
    #[arg(long)]
    pub mobile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImportsCommand {
    /// Suivi des imports : le plus récent d'abord
    List(ImportsListArgs),
    /// Réécrire le fichier résultat (logins, mots de passe) d'un import, tant qu'il est conservé
    Result(ImportsResultArgs),
}

#[derive(Debug, Args)]
pub struct ImportsResultArgs {
    /// Numéro de l'import (annuaire imports list)
    pub import: i64,
    /// Fichier à créer (il ne doit pas exister) ; sinon la sortie standard
    #[arg(long, value_name = "FICHIER")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportsListArgs {
    #[arg(long, value_name = "UAI")]
    pub establishment: Option<String>,
    /// Date de début incluse (aaaa-mm-jj)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Date de fin incluse (aaaa-mm-jj)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Envoie les courriels en attente dont l'heure de nouvel essai est passée
    Send,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub login: Option<String>,
    #[arg(long)]
    pub establishment: Option<String>,
    /// Classe (ex. 3C) : ses élèves et, venant du flux AAF, ses enseignants
    #[arg(long)]
    pub class: Option<String>,
    /// Profil(s) : enseignant, administratif, eleve, parent, administrateur, administrateur-systeme, invite
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    #[arg(long, default_value_t = 0)]
    pub offset: i64,
    #[arg(long)]
    pub json: bool,
}
