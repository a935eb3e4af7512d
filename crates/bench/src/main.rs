//! `annuaire-bench`: throughput of the import engine next to the raw cost of
//! the same work (a bare CSV read, a bulk insert), all measured in one run so
//! that the ratios hold on a noisy shared machine. A benchmark, not a test: it
//! prints figures and asserts nothing about them.
//!
//! Progress goes to stderr; stdout carries only the table.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Parser};
use domain::keys::SyncKey;
use domain::password::{self, SecretOrigin};
use domain::person::GroupRef;
use domain::pipeline::Status;
use domain::plan::Plan;
use domain::{Establishment, Profile, Uai};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use store::postgres::PgDirectory;
use store::service::{self, ImportRequest, Operation, Progress, Stage, SystemClock};
use store::sqlite::SqliteDirectory;
use store::Directory;

mod academy;
mod cas;
mod end_to_end;
mod scale;

/// Same seed every run: the same file, so runs can be compared.
const SEED: u64 = 0x616e_6e75_6169_7265;
/// The guide's demo establishment, valid check letter included.
const BENCH_UAI: &str = "0750654D";
/// Share of lines repeating an earlier teacher with another subject (merged).
const DUPLICATE_SHARE: f64 = 0.01;
/// Rows per COPY message: bounds memory whatever `--rows`.
const COPY_CHUNK: usize = 10_000;
const CSV_BASELINE: &str = "csv ByteRecord read";

/// mimalloc, as in the `annuaire` binary whose engine is measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Mesures de débit d'annuaire : plan, écriture, hachage, grand annuaire, bout en bout
#[derive(Debug, Parser)]
#[command(name = "annuaire-bench", version)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Lignes du fichier généré
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Mots de passe à hacher pour la mesure de hachage
    #[arg(long, default_value_t = 200)]
    hashes: usize,
    /// Base PostgreSQL à mesurer aussi (une base jetable est créée dedans)
    #[arg(long, env = "ANNUAIRE_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Fichier JSON où écrire les mesures
    #[arg(long)]
    json: Option<PathBuf>,
    /// Comptes du grand annuaire où mesurer un import de 500 lignes et la recherche
    /// (indépendance à la taille ; 1000000 ou 5000000 pour la mesure de référence)
    #[arg(long, default_value_t = 20_000)]
    directory_users: usize,
    /// Lignes de l'import de bout en bout (vraie commande « annuaire import »,
    /// SQLite, mots de passe générés et hachés) ; 0 pour l'omettre
    #[arg(long, default_value_t = 1_000)]
    end_to_end_rows: usize,
    /// Établissements du flux AAF académique généré (400 élèves, 600 parents et
    /// 60 personnels chacun ; 1000 pour la mesure de référence) ; 0 pour l'omettre
    #[arg(long, default_value_t = 1)]
    academy_establishments: usize,
    /// Connexions CAS mesurées (débit des connexions et des validations de tickets) ; 0 pour les omettre
    #[arg(long, default_value_t = 64)]
    cas_people: usize,
    /// Personnes du « lundi 8 h » : chacune se connecte et ouvre deux services, par deux serveurs
    /// (5000 pour la mesure de référence) ; 0 pour l'omettre
    #[arg(long, default_value_t = 64)]
    monday_people: usize,
    /// Le programme « annuaire » à lancer pour la mesure de bout en bout
    /// (par défaut, celui construit à côté de ce programme, même profil)
    #[arg(long)]
    annuaire: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("erreur : {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &BenchArgs) -> Result<()> {
    if args.rows == 0 {
        bail!("--rows doit être au moins 1");
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut table = Table::new(cores);

    eprintln!("génération de {} lignes…", args.rows);
    let bytes = generate_csv(args.rows)?;
    eprintln!("fichier : {:.1} Mo", bytes.len() as f64 / 1e6);
    let bench = Bench::new(&bytes, args.rows)?;

    eprintln!("lecture csv brute…");
    let csv_rate = table.push(csv_baseline(&bytes)?);
    bench.warm_up()?;

    eprintln!("sqlite…");
    let raw_data = measure_sqlite(&bench, &mut table, csv_rate).await?;
    eprintln!(
        "annuaire de {} comptes : imports de {} lignes et recherche…",
        args.directory_users,
        scale::IMPORT_ROWS
    );
    let scale_input = scale::ScaleInput::new(args.directory_users)?;
    scale::measure_sqlite(&scale_input, &bench.secret_hash, &mut table).await?;

    if let Some(url) = &args.postgres {
        eprintln!("postgresql…");
        measure_postgres(url, &bench, &raw_data, &scale_input, &mut table, csv_rate).await?;
    }
    drop(raw_data);
    drop(scale_input);

    eprintln!("hachage…");
    let hashes = args.hashes.max(1);
    let hash_figures = tokio::task::spawn_blocking(move || measure_hashing(hashes, cores))
        .await
        .context("mesure du hachage interrompue")??;
    for f in hash_figures {
        table.push(f);
    }

    if args.cas_people > 0 || args.monday_people > 0 {
        eprintln!(
            "CAS : {} connexions, puis lundi 8 h de {} personnes par deux serveurs…",
            args.cas_people, args.monday_people
        );
        for f in cas_measures(args, cores).await? {
            table.push(f);
        }
    }

    if args.end_to_end_rows > 0 {
        eprintln!("de bout en bout : annuaire import de {} lignes…", args.end_to_end_rows);
        table.push(
            end_to_end::measure(
                &end_to_end::annuaire_program(args.annuaire.as_deref())?,
                args.end_to_end_rows,
            )
            .await?,
        );
    }

    if args.academy_establishments > 0 {
        eprintln!(
            "flux AAF académique de {} établissement(s) : premier import, même flux, delta de 1 %…",
            args.academy_establishments
        );
        let program = end_to_end::annuaire_program(args.annuaire.as_deref())?;
        for f in academy_measures(&program, args.academy_establishments, args.postgres.as_deref()).await? {
            table.push(f);
        }
    }

    table.print();
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&table.figures).context("sérialisation des mesures")?;
        std::fs::write(path, json).with_context(|| format!("écriture de {}", path.display()))?;
        eprintln!("mesures écrites dans {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Figures and the table

/// One line of the table (and one object of `--json`).
#[derive(Debug, Clone, Serialize)]
struct Figure {
    measure: String,
    backend: String,
    /// File lines, users written or hashes computed, as the measure says.
    rows: usize,
    seconds: f64,
    rows_per_s: f64,
    /// `rows_per_s` divided by the reference's: below 1 means slower.
    ratio: Option<f64>,
    /// The reference of `ratio`.
    against: Option<String>,
    cores: usize,
    /// What the ratio means when it is not a plain rate ratio, or how the
    /// figure was obtained (limits raised, median of n runs…).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// The query plan of the statement measured, as the database prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    query_plan: Option<String>,
}

impl Figure {
    fn new(measure: impl Into<String>, backend: impl Into<String>, rows: usize, elapsed: Duration) -> Figure {
        let seconds = elapsed.as_secs_f64();
        Figure {
            measure: measure.into(),
            backend: backend.into(),
            rows,
            seconds,
            rows_per_s: if seconds > 0.0 {
                rows as f64 / seconds
            } else {
                f64::INFINITY
            },
            ratio: None,
            against: None,
            cores: 0,
            note: None,
            query_plan: None,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = Some(note.into());
        self
    }

    fn query_plan(mut self, plan: String) -> Figure {
        self.query_plan = Some(plan);
        self
    }

    fn against(mut self, reference: &str, reference_rate: f64) -> Figure {
        if reference_rate > 0.0 && reference_rate.is_finite() {
            self.ratio = Some(self.rows_per_s / reference_rate);
            self.against = Some(reference.to_string());
        }
        self
    }
}

struct Table {
    cores: usize,
    figures: Vec<Figure>,
}

impl Table {
    fn new(cores: usize) -> Table {
        Table {
            cores,
            figures: Vec::new(),
        }
    }

    /// Adds a figure and returns its rate, the reference of later ones.
    fn push(&mut self, mut figure: Figure) -> f64 {
        figure.cores = self.cores;
        let rate = figure.rows_per_s;
        self.figures.push(figure);
        rate
    }

    fn print(&self) {
        println!("annuaire-bench: {} core(s) available", self.cores);
        let header = [
            "measure", "backend", "rows", "seconds", "rows/s", "ratio", "against", "note",
        ];
        let lines: Vec<[String; 8]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.measure.clone(),
                    f.backend.clone(),
                    f.rows.to_string(),
                    format!("{:.3}", f.seconds),
                    group_thousands(f.rows_per_s),
                    f.ratio.map(|r| format!("{r:.3}")).unwrap_or_default(),
                    f.against.clone().unwrap_or_default(),
                    f.note.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        // Text columns left-aligned, numbers right-aligned.
        let row = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pad = " ".repeat(widths[i] - c.chars().count());
                    if matches!(i, 0 | 1 | 6 | 7) {
                        format!("{c}{pad}")
                    } else {
                        format!("{pad}{c}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_string()
        };
        println!("{}", row(&header.map(String::from)));
        println!(
            "{}",
            widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-|-")
        );
        for line in &lines {
            println!("{}", row(line));
        }
        for f in &self.figures {
            if let Some(plan) = &f.query_plan {
                println!();
                println!("query plan, {} ({}):", f.measure, f.backend);
                for line in plan.lines() {
                    println!("    {line}");
                }
            }
        }
    }
}

/// `1234567.8` → `1 234 568`: rates are read at a glance.
fn group_thousands(value: f64) -> String {
    if !value.is_finite() {
        return "∞".to_string();
    }
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// The generated file

/// First names, `true` for a man (Monsieur); compound ones as the guide's
/// examples write them.
#[rustfmt::skip]
const FIRST_NAMES: &[(&str, bool)] = &[
    ("Jean", true), ("Pierre", true), ("Michel", true), ("Philippe", true), ("Alain", true),
    ("Nicolas", true), ("Christophe", true), ("Patrick", true), ("Laurent", true), ("Frédéric", true),
    ("Stéphane", true), ("Éric", true), ("Sébastien", true), ("Julien", true), ("David", true),
    ("Olivier", true), ("Thierry", true), ("François", true), ("Jérôme", true), ("Benoît", true),
    ("Rachid", true), ("Karim", true), ("Mehdi", true), ("Mamadou", true), ("Thomas", true),
    ("Antoine", true), ("Hugo", true), ("Lucas", true), ("Gaël", true), ("Loïc", true),
    ("Noël", true), ("Hervé", true), ("Yannick", true), ("Mathieu", true), ("Cédric", true),
    ("Grégory", true), ("Raphaël", true), ("Joël", true), ("Youssef", true), ("Kévin", true),
    ("Jean-Pierre", true), ("Jean-François", true), ("Jean-Luc", true), ("Jean-Marc", true),
    ("Pierre-Yves", true), ("Marc-Antoine", true), ("Jean-Noël", true), ("Paul-Émile", true),
    ("Marie", false), ("Nathalie", false), ("Isabelle", false), ("Sylvie", false), ("Catherine", false),
    ("Françoise", false), ("Christine", false), ("Sandrine", false), ("Valérie", false), ("Céline", false),
    ("Sophie", false), ("Stéphanie", false), ("Émilie", false), ("Aurélie", false), ("Camille", false),
    ("Léa", false), ("Chloé", false), ("Manon", false), ("Inès", false), ("Fatima", false),
    ("Aïcha", false), ("Nadia", false), ("Leïla", false), ("Hélène", false), ("Agnès", false),
    ("Anaïs", false), ("Maëlle", false), ("Zoé", false), ("Bérénice", false), ("Geneviève", false),
    ("Élodie", false), ("Mélanie", false), ("Noémie", false), ("Cécile", false), ("Laëtitia", false),
    ("Marie-Hélène", false), ("Marie-Claire", false), ("Anne-Sophie", false), ("Marie-Christine", false),
    ("Anne-Laure", false), ("Marie-Noëlle", false), ("Marie-Thérèse", false), ("Marie-Ève", false),
];

/// Last names in the order of their frequency in France, plus the spellings
/// that trip parsers: accents, apostrophes, particles, spaces.
#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU", "LAURENT",
    "SIMON", "MICHEL", "LEFÈVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL", "FOURNIER", "GIRARD",
    "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT", "MÜLLER", "LEFEBVRE", "FAURE", "ANDRÉ",
    "MERCIER", "BLANC", "GUÉRIN", "BOYER", "GARNIER", "CHEVALIER", "FRANÇOIS", "LEGRAND", "GAUTHIER", "GARCIA",
    "PERRIN", "ROBIN", "CLÉMENT", "MORIN", "NICOLAS", "HENRY", "ROUSSEL", "MATHIEU", "GAUTIER", "MASSON",
    "MARCHAND", "DUVAL", "DENIS", "DUMONT", "MARIE", "LEMAIRE", "NOËL", "MEYER", "DUFOUR", "MEUNIER",
    "BRUN", "BLANCHARD", "GIRAUD", "JOLY", "RIVIÈRE", "LUCAS", "BRUNET", "GAILLARD", "BARBIER", "ARNAUD",
    "MARTÍNEZ", "GÉRARD", "ROCHE", "RENARD", "SCHMITT", "ROY", "LEROUX", "COLIN", "VIDAL", "CARON",
    "PICARD", "ROGER", "FABRE", "AUBERT", "LEMOINE", "RENAUD", "DUMAS", "LACROIX", "OLIVIER", "PHILIPPE",
    "BOURGEOIS", "PIERRE", "BENOÎT", "REY", "LECLERC", "PAYET", "ROLLAND", "LECLERCQ", "GUILLAUME", "LECOMTE",
    "LOPEZ", "JEAN", "DUPUY", "GUILLOT", "HUBERT", "BERGER", "CARPENTIER", "SANCHEZ", "DUPUIS", "MOULIN",
    "LOUIS", "DESCHAMPS", "HUET", "VASSEUR", "PEREZ", "BOUCHER", "FLEURY", "ROYER", "KLEIN", "JACQUET",
    "ADAM", "PARIS", "POIRIER", "MARTY", "AUBRY", "GUYOT", "CARRÉ", "CHARLES", "RENAULT", "CHARPENTIER",
    "MÉNARD", "MAILLARD", "BARON", "BERTIN", "BAILLY", "HERVÉ", "SCHNEIDER", "FERNANDEZ", "LE GALL", "COLLET",
    "LÉGER", "BOUVIER", "JULIEN", "PRÉVOST", "MILLET", "PERROT", "DANIEL", "LE ROUX", "COUSIN", "GERMAIN",
    "BRETON", "BESSON", "LANGLOIS", "RÉMY", "LE GOFF", "PELLETIER", "LÉVÊQUE", "PERRIER", "LEBLANC", "BARRÉ",
    "LEBRUN", "MARCHAL", "WEBER", "MALLET", "HAMON", "BOULANGER", "JACOB", "MONNIER", "MICHAUD", "RODRIGUEZ",
    "GUICHARD", "GILLET", "ÉTIENNE", "GRONDIN", "POULAIN", "TESSIER", "CHEVALLIER", "COLLIN", "CHAUVIN", "DA SILVA",
    "BOUCHET", "GAY", "LEMAÎTRE", "BÉNARD", "MARÉCHAL", "HUMBERT", "REYNAUD", "ANTOINE", "HOARAU", "PERRET",
    "BARTHÉLEMY", "CORDIER", "PICHON", "LEJEUNE", "GILBERT", "LAMY", "DELAUNAY", "PASQUIER", "CARLIER", "LAPORTE",
    "N'DIAYE", "DIALLO", "TRAORÉ", "KONÉ", "BEN ALI", "EL AMRANI", "NGUYEN", "TRAN", "D'ORMESSON", "DE LA FONTAINE",
    "O'NEILL", "DESCARTES", "LAVOISIER", "PLATON", "MOZART", "CÉSAIRE", "N'GUESSAN", "MBAPPÉ", "SAINT-JUST", "DUCHÊNE",
];

#[rustfmt::skip]
const SUBJECTS: &[&str] = &[
    "Mathématiques", "Français", "Histoire-Géographie", "Anglais", "Espagnol", "Allemand", "Physique-Chimie",
    "SVT", "Éducation Physique et Sportive", "Technologie", "Arts Plastiques", "Education Musicale",
    "Philosophie", "Sciences Économiques et Sociales", "Documentation", "Latin", "Italien", "NSI",
];

const ACADEMIES: &[&str] = &[
    "ac-paris.fr",
    "ac-lyon.fr",
    "ac-creteil.fr",
    "ac-versailles.fr",
    "ac-lille.fr",
    "ac-reunion.fr",
];

/// One teacher's cells, kept to repeat them on a duplicate line.
struct Person {
    civility: &'static str,
    first: &'static str,
    last: String,
    mobile: String,
    email: String,
    postal: String,
}

/// Picks from a list ordered by frequency: low indexes far more often, so
/// common names (MARTIN, Marie) give many homonyms and numbered logins.
fn skewed<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    let u: f64 = rng.gen();
    let i = ((u * u) * items.len() as f64) as usize;
    &items[i.min(items.len() - 1)]
}

/// `LEFÈVRE-DURAND` → `Lefèvre-Durand`: some exports are not in capitals.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut start = true;
    for c in name.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = matches!(c, '-' | ' ' | '\'');
    }
    out
}

/// `n` in capital letters (A, B, …, Z, BA…): a suffix for the rare teacher
/// whose name draws keep colliding (keys keep letters only).
fn letter_suffix(mut n: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(char::from(b'A' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    letters.iter().rev().collect()
}

/// A teacher whose sync key was never drawn before, with contact cells
/// filled as often, and written as variously, as in real exports.
fn new_person(rng: &mut StdRng, keys: &mut HashSet<SyncKey>) -> Person {
    new_person_within(rng, keys, 16)
}

/// [`new_person`], giving up redrawing names after `attempts` collisions (a
/// letter suffix makes the key new): millions of people stay fast to draw.
fn new_person_within(rng: &mut StdRng, keys: &mut HashSet<SyncKey>, attempts: usize) -> Person {
    let mut attempt = 0;
    let (first, male, last) = loop {
        let &(first, male) = skewed(rng, FIRST_NAMES);
        let mut last = if rng.gen_bool(0.3) {
            (*skewed(rng, LAST_NAMES)).to_string()
        } else {
            format!("{}-{}", skewed(rng, LAST_NAMES), skewed(rng, LAST_NAMES))
        };
        if attempt >= attempts {
            last = format!("{last}-{}", letter_suffix(keys.len()));
        }
        let key = SyncKey::derive(Profile::Enseignant, first, &last, None, None);
        if keys.insert(key) {
            break (first, male, last);
        }
        attempt += 1;
    };
    let civility = match (male, rng.gen_range(0..10)) {
        (true, 0..=6) => "Monsieur",
        (true, 7 | 8) => "M.",
        (true, _) => "M",
        (false, 0..=6) => "Madame",
        (false, 7 | 8) => "Mme",
        (false, _) => "Mademoiselle",
    };
    let shown_last = if rng.gen_bool(0.15) {
        title_case(&last)
    } else {
        last.clone()
    };
    let mobile = if rng.gen_bool(0.7) {
        let prefix = if rng.gen_bool(0.8) { 6 } else { 7 };
        // Metropolitan blocks only: 0639 and 069x are overseas numbers, 070x–074x unallocated.
        let mut n: u32 = if prefix == 6 {
            rng.gen_range(10_000_000..90_000_000)
        } else {
            rng.gen_range(50_000_000..90_000_000)
        };
        if prefix == 6 && n / 1_000_000 == 39 {
            n -= 10_000_000;
        }
        let digits = format!("0{prefix}{n:08}");
        // The ways people write a number: bare, international, dotted, spaced.
        let pairs: Vec<&str> = (0..5).map(|k| &digits[2 * k..2 * k + 2]).collect();
        match rng.gen_range(0..4) {
            0 => pairs.concat(),
            1 => format!("+33 {} {}", &digits[1..2], pairs[1..].join(" ")),
            2 => pairs.join("."),
            _ => pairs.join(" "),
        }
    } else {
        String::new()
    };
    let email = if rng.gen_bool(0.6) {
        let academy = ACADEMIES[rng.gen_range(0..ACADEMIES.len())];
        format!(
            "{}.{}@{academy}",
            domain::text::login_part(first),
            domain::text::login_part(&last).replace('-', "")
        )
    } else {
        String::new()
    };
    let postal = if rng.gen_bool(0.8) {
        let code = format!("{:02}{:03}", rng.gen_range(1..96), rng.gen_range(0..1000));
        // Excel drops the leading 0 of some codes: the engine pads them back.
        if code.starts_with('0') && rng.gen_bool(0.2) {
            code[1..].to_string()
        } else {
            code
        }
    } else {
        String::new()
    };
    Person {
        civility,
        first,
        last: shown_last,
        mobile,
        email,
        postal,
    }
}

/// A teachers' file as Excel writes it (UTF-8 with BOM, `;`, CRLF), with the
/// guide's headers. Deterministic: seeded RNG.
fn generate_csv(rows: usize) -> Result<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut keys: HashSet<SyncKey> = HashSet::with_capacity(rows);
    generate_csv_with(&mut rng, &mut keys, rows)
}

/// [`generate_csv`] drawing from a given generator and avoiding (then adding)
/// the keys already drawn: several files of distinct people.
fn generate_csv_with(rng: &mut StdRng, keys: &mut HashSet<SyncKey>, rows: usize) -> Result<Vec<u8>> {
    use std::fmt::Write as _;
    let mut people: Vec<Person> = Vec::with_capacity(rows);
    let mut text = String::with_capacity(rows * 110 + 200);
    text.push('\u{FEFF}');
    text.push_str("Civilité enseignant;Nom enseignant;Prénom enseignant;Matière enseignant;Telephone portable enseignant;Email enseignant;Code postal enseignant\r\n");
    for _ in 0..rows {
        let subject = SUBJECTS[rng.gen_range(0..SUBJECTS.len())];
        // A teacher of two subjects appears twice: the second line is merged.
        let person = if !people.is_empty() && rng.gen_bool(DUPLICATE_SHARE) {
            &people[rng.gen_range(0..people.len())]
        } else {
            let p = new_person(rng, keys);
            people.push(p);
            &people[people.len() - 1]
        };
        writeln!(
            text,
            "{};{};{};{subject};{};{};{}\r",
            person.civility, person.last, person.first, person.mobile, person.email, person.postal
        )
        .context("génération du fichier")?;
    }
    Ok(text.into_bytes())
}

// ---------------------------------------------------------------------------
// Baseline: a bare CSV read

/// The floor of any CSV import: splitting the same bytes into records with the
/// `csv` crate, nothing decoded or checked. Best of three: the measure is so
/// short that a single scheduler hiccup would distort it.
fn csv_baseline(bytes: &[u8]) -> Result<Figure> {
    let mut best: Option<(Duration, usize)> = None;
    for _ in 0..3 {
        let start = Instant::now();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .has_headers(true)
            .flexible(true)
            .from_reader(bytes);
        let mut record = csv::ByteRecord::new();
        let mut count = 0usize;
        while reader
            .read_byte_record(&mut record)
            .context("lecture csv de référence")?
        {
            count += 1;
        }
        let elapsed = start.elapsed();
        if best.is_none_or(|(b, _)| elapsed < b) {
            best = Some((elapsed, count));
        }
    }
    let (elapsed, count) = best.context("aucune mesure csv")?;
    Ok(Figure::new(CSV_BASELINE, "-", count, elapsed))
}

// ---------------------------------------------------------------------------
// The engine: plan and apply on any backend

/// The file and the import choices shared by every backend.
struct Bench<'a> {
    bytes: &'a [u8],
    uai: Uai,
    /// Who imports: the command line's operator, as `annuaire import` runs.
    operator: app::Actor,
    request: ImportRequest,
    /// One PHC string reused for every account of the raw baselines.
    secret_hash: String,
    /// The file is bigger than an upload may be: the limits were raised.
    limits_raised: bool,
}

impl<'a> Bench<'a> {
    fn new(bytes: &'a [u8], rows: usize) -> Result<Bench<'a>> {
        Bench::at(bytes, rows, BENCH_UAI)
    }

    /// A file imported into another establishment than the demo one.
    fn at(bytes: &'a [u8], rows: usize, uai: &str) -> Result<Bench<'a>> {
        let uai = Uai::parse(uai)?;
        let mut request = ImportRequest::new(Profile::Enseignant, Some(uai.clone()));
        request.file_name = "bench.csv".to_string();
        request.actor = "bench".to_string();
        // Big runs must not be refused by the upload limits.
        let limits_raised = bytes.len() > request.file.limits.max_bytes || rows > request.file.limits.max_rows;
        request.file.limits.max_bytes = request.file.limits.max_bytes.max(bytes.len());
        request.file.limits.max_rows = request.file.limits.max_rows.max(rows);
        let mut rng = StdRng::seed_from_u64(SEED);
        let secret_hash = password::hash("bench-secret", SecretOrigin::Generated, &password::salt(&mut rng))?;
        Ok(Bench {
            bytes,
            uai,
            operator: app::Actor::operator("bench".to_string()),
            request,
            secret_hash,
            limits_raised,
        })
    }

    /// Lazily built tables (phone metadata…) are paid once per process, not per
    /// row: a small file first keeps them out of the throughput.
    fn warm_up(&self) -> Result<()> {
        let end = self
            .bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(1_000)
            .map_or(self.bytes.len(), |(i, _)| i + 1);
        service::check_file(&self.bytes[..end], &self.request, Utc::now().date_naive())?;
        Ok(())
    }

    fn establishment(&self) -> Establishment {
        Establishment {
            uai: self.uai.clone(),
            name: "Établissement de mesure".to_string(),
        }
    }
}

/// When an import reached each of its stages, as it reports them to its
/// [`Progress`]: the benchmark drives the use cases the doors call and reads
/// where the time went from here.
struct Stages {
    start: Instant,
    reached: std::sync::Mutex<Vec<(Stage, Instant)>>,
}

impl Stages {
    fn new() -> Stages {
        Stages {
            start: Instant::now(),
            reached: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn at(&self, stage: Stage) -> Result<Instant> {
        let reached = self
            .reached
            .lock()
            .map_err(|_| anyhow::anyhow!("relevé des étapes illisible"))?;
        reached
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, t)| *t)
            .with_context(|| format!("l'import n'a pas atteint l'étape {stage:?}"))
    }

    /// From `from` (the start when `None`) to `to`.
    fn between(&self, from: Option<Stage>, to: Stage) -> Result<Duration> {
        let from = match from {
            Some(stage) => self.at(stage)?,
            None => self.start,
        };
        Ok(self.at(to)?.saturating_duration_since(from))
    }
}

impl Progress for Stages {
    fn step(&self, _: Operation, _: usize, _: usize) {}

    fn stage(&self, stage: Stage) {
        if let Ok(mut reached) = self.reached.lock() {
            reached.push((stage, Instant::now()));
        }
    }
}

/// Stage times of one plan.
struct PlanTimes {
    check_file: Duration,
    lookup: Duration,
    snapshot: Duration,
    plan: Duration,
}

/// The preview the wizard's steps 3 and 4 show (`app::imports::preview`):
/// decode → parse → map → validate (check_file), lookup, the snapshot
/// (without locks, as a preview reads), then the plan.
async fn timed_plan<D: Directory>(d: &D, bench: &Bench<'_>) -> Result<(Plan, PlanTimes)> {
    let stages = Stages::new();
    let outcome =
        app::imports::preview_observed(d, &bench.operator, bench.bytes, &bench.request, &SystemClock, &stages).await?;
    let times = PlanTimes {
        check_file: stages.between(None, Stage::Checked)?,
        lookup: stages.between(Some(Stage::Checked), Stage::LookedUp)?,
        snapshot: stages.between(Some(Stage::LookedUp), Stage::Snapshot)?,
        plan: stages.between(Some(Stage::Snapshot), Stage::Planned)?,
    };
    let plan = outcome.plan;
    if let Some(rejection) = &plan.rejection {
        let first: Vec<String> = plan
            .conflicts
            .iter()
            .take(3)
            .map(|c| format!("ligne {} : {}", c.line, c.message))
            .collect();
        bail!(
            "le fichier généré est refusé ({}) : {}",
            rejection.message(),
            first.join(" ; ")
        );
    }
    Ok((plan, times))
}

/// Total, pure part and snapshot; with `detail`, the pure part split in two.
fn plan_figures(label: &str, backend: &str, rows: usize, t: &PlanTimes, csv_rate: f64, detail: bool) -> Vec<Figure> {
    let pure = t.check_file + t.lookup + t.plan;
    let mut figures = vec![
        Figure::new(format!("{label}: total"), backend, rows, pure + t.snapshot),
        Figure::new(format!("{label}: pure (check_file+lookup+plan)"), "-", rows, pure),
    ];
    if detail {
        figures.push(Figure::new(format!("{label}:   check_file"), "-", rows, t.check_file));
        figures.push(Figure::new(
            format!("{label}:   lookup_for + plan"),
            "-",
            rows,
            t.lookup + t.plan,
        ));
    }
    figures.push(Figure::new(format!("{label}: snapshot"), backend, rows, t.snapshot));
    figures.into_iter().map(|f| f.against(CSV_BASELINE, csv_rate)).collect()
}

/// The import itself (`app::imports::run`, as the CLI and the web job call
/// it), timed from the hashed passwords to the written changes, plus the
/// commit: the passwords' hashing, the re-plan under the locks and the result
/// file are measured apart (hashing, plan) or not part of "apply".
async fn timed_apply<D: app::Backend>(d: &D, bench: &Bench<'_>) -> Result<Duration> {
    let stages = Stages::new();
    let mut rng = StdRng::seed_from_u64(SEED);
    let (outcome, _) = app::imports::run(
        d,
        &bench.operator,
        bench.bytes,
        &bench.request,
        &SystemClock,
        &mut rng,
        &stages,
    )
    .await;
    let outcome = outcome?;
    if outcome.report.status != Status::Imported {
        bail!("l'import mesuré n'a pas été appliqué : {:?}", outcome.report.rejection);
    }
    let apply = stages.between(Some(Stage::Hashed), Stage::Written)?
        + stages.between(Some(Stage::ResultKept), Stage::Committed)?;
    // As the doors do, after the import has answered.
    d.checkpoint().await?;
    Ok(apply)
}

/// Plan into an empty directory, apply it, then plan the same file again
/// against the now full directory (every line unchanged).
async fn measure_engine<D: app::Backend>(
    d: &D,
    backend: &str,
    bench: &Bench<'_>,
    table: &mut Table,
    csv_rate: f64,
) -> Result<(Plan, Figure)> {
    d.add_establishment(&bench.establishment(), Utc::now()).await?;
    let (plan, times) = timed_plan(d, bench).await?;
    for (i, mut f) in plan_figures("plan", backend, plan.rows, &times, csv_rate, true)
        .into_iter()
        .enumerate()
    {
        if i == 0 && bench.limits_raised {
            let limits = domain::decode::Limits::default();
            f = f.note(format!(
                "file limits raised for the bench only ({} rows / {} MiB per upload otherwise)",
                limits.max_rows,
                limits.max_bytes >> 20
            ));
        }
        table.push(f);
    }
    eprintln!("  {backend} : apply de {} comptes…", plan.creates.len());
    let apply = Figure::new(
        "apply (no hashing)",
        backend,
        plan.creates.len(),
        timed_apply(d, bench).await?,
    );

    let (replan, times) = timed_plan(d, bench).await?;
    if replan.unchanged.len() != plan.creates.len() {
        eprintln!(
            "  attention : la réimportation donne {} inchangés pour {} créés",
            replan.unchanged.len(),
            plan.creates.len()
        );
    }
    drop(replan);
    for f in plan_figures("re-plan, all unchanged", backend, plan.rows, &times, csv_rate, false) {
        table.push(f);
    }
    Ok((plan, apply))
}

// ---------------------------------------------------------------------------
// Raw baselines: the same rows written with no engine in between

/// Every column value precomputed, so the raw baselines time only the database.
struct RawUser {
    id: i64,
    sync_key: String,
    civility: Option<&'static str>,
    last_name: String,
    first_name: String,
    last_name_fold: String,
    first_name_fold: String,
    subject: Option<String>,
    postal_code: Option<String>,
    mobile: Option<String>,
    email: Option<String>,
    login: String,
}

/// The users, memberships and group memberships a plan creates, with ids
/// decided up front (1, 2, …) so that every backend can insert them blindly.
struct RawData {
    profile: &'static str,
    password_hash: String,
    now: DateTime<Utc>,
    users: Vec<RawUser>,
    groups: Vec<(i64, GroupRef)>,
    memberships: Vec<(i64, String, String)>,
    group_members: Vec<(i64, i64)>,
}

impl RawData {
    fn of(plan: &Plan, password_hash: &str) -> RawData {
        let mut group_ids: HashMap<&GroupRef, i64> = HashMap::new();
        let mut groups = Vec::new();
        let mut users = Vec::with_capacity(plan.creates.len());
        let mut memberships = Vec::with_capacity(plan.creates.len());
        let mut group_members = Vec::with_capacity(plan.creates.len());
        for (c, id) in plan.creates.iter().zip(1i64..) {
            let a = &c.attrs;
            users.push(RawUser {
                id,
                sync_key: c.key.as_str().to_string(),
                civility: a.civility.map(|c| c.as_str()),
                last_name: a.last_name.clone(),
                first_name: a.first_name.clone(),
                last_name_fold: store::fold_for_search(&a.last_name),
                first_name_fold: store::fold_for_search(&a.first_name),
                subject: a.subject.clone(),
                postal_code: a.postal_code.as_ref().map(|p| p.as_str().to_string()),
                mobile: a.mobile.as_ref().map(|p| p.as_e164().to_string()),
                email: a.email.as_ref().map(|e| e.as_str().to_string()),
                login: c.login.as_str().to_string(),
            });
            for m in &c.memberships {
                memberships.push((id, m.uai.as_str().to_string(), m.role.clone()));
            }
            for g in &c.groups {
                let next = group_ids.len() as i64 + 1;
                let group_id = *group_ids.entry(g).or_insert_with(|| {
                    groups.push((next, g.clone()));
                    next
                });
                group_members.push((group_id, id));
            }
        }
        RawData {
            profile: plan.profile.id(),
            password_hash: password_hash.to_string(),
            now: Utc::now(),
            users,
            groups,
            memberships,
            group_members,
        }
    }
}

/// Raw user inserts alone, then the memberships and group links the engine
/// also writes, each in its own transaction.
struct RawTimes {
    users: Duration,
    links: Duration,
}

fn raw_figures(bulk: &str, backend: &str, users: usize, t: &RawTimes, apply: Figure) -> Vec<Figure> {
    let users_label = format!("raw {bulk} users");
    let users_figure = Figure::new(users_label.clone(), backend, users, t.users);
    let all_label = format!("raw {bulk} users+memberships+groups");
    let all = Figure::new(all_label.clone(), backend, users, t.users + t.links)
        .against(&users_label, users_figure.rows_per_s);
    // The engine writes users, memberships and group links: its baseline is
    // the same rows into the same tables.
    let apply = apply.against(&all_label, all.rows_per_s).note("target ≥ 0.7");
    vec![users_figure, all, apply]
}

/// One row of `users` as the raw baselines and the big directory write it.
pub(crate) struct RawUserColumns<'a> {
    pub id: i64,
    pub sync_key: &'a str,
    pub profile: &'a str,
    pub civility: Option<&'a str>,
    pub last_name: &'a str,
    pub first_name: &'a str,
    pub last_name_fold: &'a str,
    pub first_name_fold: &'a str,
    pub subject: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub mobile: Option<&'a str>,
    pub email: Option<&'a str>,
    pub login: &'a str,
}

/// One multi-row prepared INSERT of CSV teachers' accounts into `users`.
pub(crate) fn sqlite_users_insert<'a>(
    rows: impl IntoIterator<Item = RawUserColumns<'a>>,
    password_hash: &'a str,
    now: DateTime<Utc>,
) -> sqlx::QueryBuilder<'a, sqlx::Sqlite> {
    let mut insert = sqlx::QueryBuilder::new(
        "INSERT INTO users (id, sync_key, profile, source, protected, civility, last_name, first_name, last_name_fold, first_name_fold, subject, postal_code, mobile, email, login, password_hash, must_change_password, created_at, updated_at) ",
    );
    insert.push_values(rows, |mut row, u| {
        row.push_bind(u.id)
            .push_bind(u.sync_key)
            .push_bind(u.profile)
            .push_bind("csv")
            .push_bind(false)
            .push_bind(u.civility)
            .push_bind(u.last_name)
            .push_bind(u.first_name)
            .push_bind(u.last_name_fold)
            .push_bind(u.first_name_fold)
            .push_bind(u.subject)
            .push_bind(u.postal_code)
            .push_bind(u.mobile)
            .push_bind(u.email)
            .push_bind(u.login)
            .push_bind(password_hash)
            .push_bind(true)
            .push_bind(now)
            .push_bind(now);
    });
    insert
}

/// One multi-row INSERT of active memberships: (user id, UAI, role).
pub(crate) fn sqlite_memberships_insert<'a>(
    rows: impl IntoIterator<Item = (i64, &'a str, &'a str)>,
) -> sqlx::QueryBuilder<'a, sqlx::Sqlite> {
    let mut insert = sqlx::QueryBuilder::new("INSERT INTO memberships (user_id, uai, role, active) ");
    insert.push_values(rows, |mut row, (user_id, uai, role)| {
        row.push_bind(user_id).push_bind(uai).push_bind(role).push_bind(true);
    });
    insert
}

/// One multi-row INSERT of group links: (group id, user id).
pub(crate) fn sqlite_group_members_insert<'a>(
    rows: impl IntoIterator<Item = (i64, i64)>,
) -> sqlx::QueryBuilder<'a, sqlx::Sqlite> {
    let mut insert = sqlx::QueryBuilder::new("INSERT INTO group_members (group_id, user_id) ");
    insert.push_values(rows, |mut row, (group_id, user_id)| {
        row.push_bind(group_id).push_bind(user_id);
    });
    insert
}

/// Rows per multi-row INSERT in the raw SQLite baseline, as the engine's own.
const SQLITE_ROWS_PER_INSERT: usize = 400;

/// Multi-row prepared INSERTs in one transaction: SQLite's fastest path
/// through sqlx short of skipping the indexes. One statement per row would
/// time sqlx's hand-over to its SQLite thread rather than SQLite (perf: most
/// of the time in futex wake-ups), so the baseline batches rows as the
/// engine does; full chunks reuse one cached prepared statement.
async fn raw_sqlite(pool: &sqlx::SqlitePool, data: &RawData) -> Result<RawTimes> {
    use sqlx::{QueryBuilder, Sqlite};
    let start = Instant::now();
    let mut tx = pool.begin().await?;
    for chunk in data.users.chunks(SQLITE_ROWS_PER_INSERT) {
        let mut insert = sqlite_users_insert(
            chunk.iter().map(|u| RawUserColumns {
                id: u.id,
                sync_key: &u.sync_key,
                profile: data.profile,
                civility: u.civility,
                last_name: &u.last_name,
                first_name: &u.first_name,
                last_name_fold: &u.last_name_fold,
                first_name_fold: &u.first_name_fold,
                subject: u.subject.as_deref(),
                postal_code: u.postal_code.as_deref(),
                mobile: u.mobile.as_deref(),
                email: u.email.as_deref(),
                login: &u.login,
            }),
            &data.password_hash,
            data.now,
        );
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let users = start.elapsed();

    let start = Instant::now();
    let mut tx = pool.begin().await?;
    for chunk in data.groups.chunks(SQLITE_ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO groups (id, uai, kind, name) ");
        insert.push_values(chunk, |mut row, (id, g)| {
            row.push_bind(*id)
                .push_bind(g.uai.as_str())
                .push_bind(g.kind.id())
                .push_bind(g.name.as_str());
        });
        insert.build().execute(&mut *tx).await?;
    }
    for chunk in data.memberships.chunks(SQLITE_ROWS_PER_INSERT) {
        sqlite_memberships_insert(chunk.iter().map(|(id, uai, role)| (*id, uai.as_str(), role.as_str())))
            .build()
            .execute(&mut *tx)
            .await?;
    }
    for chunk in data.group_members.chunks(SQLITE_ROWS_PER_INSERT) {
        sqlite_group_members_insert(chunk.iter().copied())
            .build()
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(RawTimes {
        users,
        links: start.elapsed(),
    })
}

/// A scratch folder, removed when dropped (also on an early error return).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!("annuaire-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("création de {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover folder in /tmp is no reason to fail the run.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn measure_sqlite(bench: &Bench<'_>, table: &mut Table, csv_rate: f64) -> Result<RawData> {
    let scratch = ScratchDir::new()?;
    let url = scratch.sqlite_url("bench.db");
    let directory = SqliteDirectory::open(&url)
        .await
        .with_context(|| format!("ouverture de {url}"))?;
    let (plan, apply) = measure_engine(&directory, "sqlite", bench, table, csv_rate).await?;
    directory.pool().close().await;

    let raw_data = RawData::of(&plan, &bench.secret_hash);
    drop(plan);
    let url = scratch.sqlite_url("raw.db");
    let raw = SqliteDirectory::open(&url)
        .await
        .with_context(|| format!("ouverture de {url}"))?;
    raw.add_establishment(&bench.establishment(), Utc::now()).await?;
    eprintln!("  sqlite : INSERT brut…");
    let times = raw_sqlite(raw.pool(), &raw_data).await?;
    raw.pool().close().await;
    for f in raw_figures("INSERT", "sqlite", raw_data.users.len(), &times, apply) {
        table.push(f);
    }
    Ok(raw_data)
}

// ---------------------------------------------------------------------------
// PostgreSQL

/// `postgres://u@h:p/db?x` with another database: `postgres://u@h:p/other?x`.
fn with_database(url: &str, database: &str) -> Result<String> {
    let (base, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let authority_start = base.find("://").context("adresse PostgreSQL sans « :// »")? + 3;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    Ok(format!("{}/{database}{query}", &base[..authority_end]))
}

/// The academy feed on a new SQLite file, then (with `--postgres`) on a
/// throw-away PostgreSQL database, always dropped.
async fn academy_measures(
    program: &std::path::Path,
    establishments: usize,
    postgres: Option<&str>,
) -> Result<Vec<Figure>> {
    let program = program.to_path_buf();
    let mut figures = {
        let program = program.clone();
        tokio::task::spawn_blocking(move || academy::measure(&program, establishments, None))
            .await
            .context("mesure du flux académique interrompue")??
    };
    let Some(url) = postgres else { return Ok(figures) };
    let admin = sqlx::PgPool::connect(url)
        .await
        .context("connexion au serveur PostgreSQL de --postgres")?;
    let name = format!("annuaire_bench_{:08x}_academy", rand::random::<u32>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    let database = with_database(url, &name)?;
    let measured = tokio::task::spawn_blocking(move || academy::measure(&program, establishments, Some(&database)))
        .await
        .context("mesure du flux académique interrompue");
    if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
    {
        eprintln!("attention : la base {name} n'a pas pu être supprimée ({e}) : supprimez-la à la main");
    }
    admin.close().await;
    figures.extend(measured??);
    Ok(figures)
}

/// The CAS measures ([`cas`]) on SQLite, and on PostgreSQL with `--postgres`:
/// one core's verify rate first, the baseline of the sign-in rate.
async fn cas_measures(args: &BenchArgs, cores: usize) -> Result<Vec<Figure>> {
    let accounts = args.cas_people.max(args.monday_people).max(1);
    let hash = tokio::task::spawn_blocking(cas::chosen_hash)
        .await
        .context("hachage interrompu")??;
    let baseline = {
        let hash = hash.clone();
        tokio::task::spawn_blocking(move || cas::verify_rate(&hash, 16))
            .await
            .context("mesure de la vérification interrompue")??
    };
    let verify_rate = baseline.rows_per_s;
    let mut figures = vec![baseline];

    let scratch = ScratchDir::new()?;
    let url = scratch.sqlite_url("cas.db");
    let first = SqliteDirectory::open(&url).await?;
    let logins = cas_accounts(&first, accounts).await?;
    sqlx::query("UPDATE users SET password_hash = ?, must_change_password = ?")
        .bind(&hash)
        .bind(false)
        .execute(first.pool())
        .await?;
    let second = SqliteDirectory::open(&url).await?;
    figures.extend(cas_run("sqlite", [first, second], logins, args, verify_rate, cores).await?);

    let Some(url) = &args.postgres else { return Ok(figures) };
    let admin = sqlx::PgPool::connect(url)
        .await
        .context("connexion au serveur PostgreSQL de --postgres")?;
    let name = format!("annuaire_bench_{:08x}_cas", rand::random::<u32>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    let measured = async {
        let database = with_database(url, &name)?;
        let first = PgDirectory::open(&database).await?;
        let logins = cas_accounts(&first, accounts).await?;
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = $2")
            .bind(&hash)
            .bind(false)
            .execute(first.pool())
            .await?;
        let second = PgDirectory::open(&database).await?;
        cas_run("postgres", [first, second], logins, args, verify_rate, cores).await
    }
    .await;
    if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
    {
        eprintln!("attention : la base {name} n'a pas pu être supprimée ({e}) : supprimez-la à la main");
    }
    admin.close().await;
    figures.extend(measured?);
    Ok(figures)
}

/// `n` teachers imported (generated logins), and the two services: the logins.
async fn cas_accounts<D: app::Backend>(d: &D, n: usize) -> Result<Vec<String>> {
    let uai = Uai::parse(BENCH_UAI)?;
    d.add_establishment(
        &Establishment {
            uai: uai.clone(),
            name: "Collège du banc d'essai".into(),
        },
        Utc::now(),
    )
    .await?;
    let file = cas::teachers_file(n);
    let request = ImportRequest::new(Profile::Enseignant, Some(uai));
    let mut rng = StdRng::seed_from_u64(SEED);
    let operator = app::Actor::operator("bench".into());
    let (outcome, _) = app::imports::run(
        d,
        &operator,
        &file,
        &request,
        &SystemClock,
        &mut rng,
        &service::NoProgress,
    )
    .await;
    let outcome = outcome?;
    if outcome.report.status != Status::Imported {
        bail!("import des comptes CAS refusé : {:?}", outcome.report.rejection);
    }
    cas::register_services(d).await?;
    Ok(outcome
        .plan
        .creates
        .iter()
        .map(|c| c.login.as_str().to_string())
        .collect())
}

/// Two servers over the two directories (one database), the clients on threads.
async fn cas_run<D: app::Backend>(
    backend: &'static str,
    directories: [D; 2],
    logins: Vec<String>,
    args: &BenchArgs,
    verify_rate: f64,
    cores: usize,
) -> Result<Vec<Figure>> {
    let [first, second] = directories;
    let one = cas::serve(first).await?;
    let two = cas::serve(second).await?;
    let urls = [one.url.clone(), two.url.clone()];
    let (people, monday) = (args.cas_people, args.monday_people);
    let figures = tokio::task::spawn_blocking(move || {
        cas::measure(
            backend,
            [&urls[0], &urls[1]],
            &logins,
            people,
            monday,
            verify_rate,
            cores,
        )
    })
    .await
    .context("mesure CAS interrompue")??;
    drop((one, two));
    Ok(figures)
}

/// Two throw-away databases in the server the URL names, always dropped.
async fn measure_postgres(
    url: &str,
    bench: &Bench<'_>,
    raw_data: &RawData,
    scale_input: &scale::ScaleInput,
    table: &mut Table,
    csv_rate: f64,
) -> Result<()> {
    let admin = sqlx::PgPool::connect(url)
        .await
        .context("connexion au serveur PostgreSQL de --postgres")?;
    let name = format!("annuaire_bench_{:08x}", rand::random::<u32>());
    let names = [
        name.clone(),
        format!("{name}_raw"),
        format!("{name}_empty"),
        format!("{name}_big"),
    ];
    let mut created = Vec::new();
    let mut outcome = Ok(());
    for n in &names {
        match sqlx::query(&format!("CREATE DATABASE {n}")).execute(&admin).await {
            Ok(_) => created.push(n.clone()),
            Err(e) => {
                outcome = Err(anyhow::Error::new(e).context(format!("CREATE DATABASE {n}")));
                break;
            }
        }
    }
    if outcome.is_ok() {
        outcome = postgres_measures(url, &names, bench, raw_data, table, csv_rate).await;
    }
    if outcome.is_ok() {
        outcome = scale::measure_postgres(url, &names[2..], scale_input, &bench.secret_hash, table).await;
    }
    for n in &created {
        if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
            .execute(&admin)
            .await
        {
            eprintln!("attention : la base {n} n'a pas pu être supprimée ({e}) : supprimez-la à la main");
        }
    }
    admin.close().await;
    outcome
}

async fn postgres_measures(
    url: &str,
    names: &[String; 4],
    bench: &Bench<'_>,
    raw_data: &RawData,
    table: &mut Table,
    csv_rate: f64,
) -> Result<()> {
    let directory = PgDirectory::open(&with_database(url, &names[0])?)
        .await
        .with_context(|| format!("ouverture de la base {}", names[0]))?;
    let result = measure_engine(&directory, "postgres", bench, table, csv_rate).await;
    directory.pool().close().await;
    let (plan, apply) = result?;
    drop(plan);

    let raw = PgDirectory::open(&with_database(url, &names[1])?)
        .await
        .with_context(|| format!("ouverture de la base {}", names[1]))?;
    raw.add_establishment(&bench.establishment(), Utc::now()).await?;
    eprintln!("  postgres : COPY brut…");
    let times = raw_postgres(raw.pool(), raw_data).await;
    raw.pool().close().await;
    for f in raw_figures("COPY", "postgres", raw_data.users.len(), &times?, apply) {
        table.push(f);
    }
    Ok(())
}

/// Formats rows as COPY's CSV (empty unquoted field = NULL), a chunk at a time.
fn copy_chunk<T>(rows: &[T], write: impl Fn(&mut csv::Writer<Vec<u8>>, &T) -> csv::Result<()>) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for row in rows {
        write(&mut writer, row)?;
    }
    writer.into_inner().context("tampon COPY")
}

async fn copy_in<T>(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    rows: &[T],
    write: impl Fn(&mut csv::Writer<Vec<u8>>, &T) -> csv::Result<()>,
) -> Result<()> {
    let mut copy = conn
        .copy_in_raw(statement)
        .await
        .with_context(|| statement.to_string())?;
    for chunk in rows.chunks(COPY_CHUNK) {
        copy.send(copy_chunk(chunk, &write)?).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// COPY, PostgreSQL's bulk path: the ceiling of any insert strategy.
async fn raw_postgres(pool: &sqlx::PgPool, data: &RawData) -> Result<RawTimes> {
    let now = data.now.to_rfc3339();
    let start = Instant::now();
    let mut tx = pool.begin().await?;
    copy_in(
        &mut tx,
        "COPY users (id, sync_key, profile, source, protected, civility, last_name, first_name, last_name_fold, first_name_fold, subject, postal_code, mobile, email, login, password_hash, must_change_password, created_at, updated_at) FROM STDIN WITH (FORMAT csv)",
        &data.users,
        |w, u| {
            let opt = |v: &Option<String>| v.clone().unwrap_or_default();
            w.write_record([
                u.id.to_string(),
                u.sync_key.clone(),
                data.profile.to_string(),
                "csv".to_string(),
                "f".to_string(),
                u.civility.unwrap_or_default().to_string(),
                u.last_name.clone(),
                u.first_name.clone(),
                u.last_name_fold.clone(),
                u.first_name_fold.clone(),
                opt(&u.subject),
                opt(&u.postal_code),
                opt(&u.mobile),
                opt(&u.email),
                u.login.clone(),
                data.password_hash.clone(),
                "t".to_string(),
                now.clone(),
                now.clone(),
            ])
        },
    )
    .await?;
    tx.commit().await?;
    let users = start.elapsed();

    let start = Instant::now();
    let mut tx = pool.begin().await?;
    copy_in(
        &mut tx,
        "COPY groups (id, uai, kind, name) FROM STDIN WITH (FORMAT csv)",
        &data.groups,
        |w, (id, g)| w.write_record([id.to_string().as_str(), g.uai.as_str(), g.kind.id(), g.name.as_str()]),
    )
    .await?;
    copy_in(
        &mut tx,
        "COPY memberships (user_id, uai, role) FROM STDIN WITH (FORMAT csv)",
        &data.memberships,
        |w, (id, uai, role)| w.write_record([id.to_string().as_str(), uai, role]),
    )
    .await?;
    copy_in(
        &mut tx,
        "COPY group_members (group_id, user_id) FROM STDIN WITH (FORMAT csv)",
        &data.group_members,
        |w, (g, u)| w.write_record([g.to_string(), u.to_string()]),
    )
    .await?;
    tx.commit().await?;
    Ok(RawTimes {
        users,
        links: start.elapsed(),
    })
}

// ---------------------------------------------------------------------------
// Hashing

/// Imposed (heavy parameters) and generated (light parameters) secrets:
/// `hash_all` on every core against one core's sequential rate times the
/// number of cores, which tells how well the parallel path scales.
fn measure_hashing(n: usize, cores: usize) -> Result<Vec<Figure>> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut figures = Vec::new();
    for (origin, label) in [
        (SecretOrigin::Chosen, "imposed"),
        (SecretOrigin::Generated, "generated"),
    ] {
        let secrets: Vec<String> = (0..n)
            .map(|i| match origin {
                SecretOrigin::Chosen => format!("Imposé-{i:05}!"),
                SecretOrigin::Generated => password::generate(&mut rng),
            })
            .collect();
        let jobs: Vec<(&str, SecretOrigin, [u8; 16])> = secrets
            .iter()
            .map(|s| (s.as_str(), origin, password::salt(&mut rng)))
            .collect();

        let single = (n / 4).max(1);
        let start = Instant::now();
        for (secret, origin, salt) in &jobs[..single] {
            password::hash(secret, *origin, salt)?;
        }
        let one = Figure::new(format!("hash {label}, sequential"), "1 thread", single, start.elapsed());

        let start = Instant::now();
        let hashes = password::hash_all(&jobs)?;
        if hashes.len() != n {
            bail!("hash_all a rendu {} empreintes pour {n} mots de passe", hashes.len());
        }
        let ideal = one.rows_per_s * cores as f64;
        let all = Figure::new(
            format!("hash {label}, hash_all"),
            format!("rayon, {cores} cores"),
            n,
            start.elapsed(),
        )
        .against(&format!("sequential x {cores} cores"), ideal);
        figures.push(one);
        figures.push(all);
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_file_is_clean_and_mostly_distinct() {
        let bytes = generate_csv(2_000).unwrap_or_default();
        let bench = Bench::new(&bytes, 2_000);
        let Ok(bench) = bench else { panic!("bench") };
        let (_, checked) =
            service::check_file(&bytes, &bench.request, Utc::now().date_naive()).unwrap_or_else(|e| panic!("{e}"));
        assert!(checked.conflict_rows.is_empty(), "{:?}", checked.conflict_rows.first());
        let keys: HashSet<&SyncKey> = checked.rows.iter().map(|r| &r.key).collect();
        assert!(keys.len() >= 1_950 && keys.len() < 2_000, "{}", keys.len());
    }

    #[test]
    fn database_in_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "x").unwrap_or_default(),
            "postgres://postgres@127.0.0.1:55432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x").unwrap_or_default(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x").unwrap_or_default(),
            "postgres://h:5432/x"
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(1_234_567.4), "1 234 567");
        assert_eq!(group_thousands(999.0), "999");
    }
}
