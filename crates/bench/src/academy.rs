//! An academy's AAF feed, generated with the real files' shape (structures
//! named by jointure, pupils with classes and persons in charge, parents with
//! their children, teachers with functions and classes), run through the real
//! `annuaire aaf import` command: the first import, the same feed again
//! (everything unchanged) and a 1 % delta (pupils changing class). Wall time
//! and peak resident memory of each run, on SQLite and PostgreSQL.
//!
//! Full size (issue 13): 1,000 establishments of 400 pupils, 600 parents and
//! 60 staff each (`--academy-establishments 1000`).

use super::end_to_end::run_measured;
use super::{Figure, ScratchDir};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Per establishment, as in an academy: 400 pupils in classes of 25, their
/// 600 persons in charge (families of two pupils and three adults), 60 staff.
const PUPILS: usize = 400;
const CLASS_SIZE: usize = 25;
const STAFF: usize = 60;

const FIRST: [&str; 16] = [
    "Léa", "Hugo", "Chloé", "Lucas", "Emma", "Nathan", "Inès", "Louis", "Jade", "Gabriel", "Zoé", "Adam", "Manon",
    "Raphaël", "Camille", "Noé",
];
const LAST: [&str; 16] = [
    "MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU", "SIMON",
    "LAURENT", "LEFÈVRE", "MICHEL", "GARCIA", "DAVID",
];

/// A valid UAI for the n-th establishment (7 digits and their check letter).
fn uai(n: usize) -> String {
    const LETTERS: &[u8; 23] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    let number = 750_000 + n;
    format!("{number:07}{}", char::from(LETTERS[number % 23]))
}

/// A name from a number: 16 × 16 × a suffix, so that logins spread.
fn name(n: usize) -> (String, String) {
    let last = format!(
        "{}{}",
        LAST[n % 16],
        if n >= 256 {
            format!("-{}", n / 256)
        } else {
            String::new()
        }
    );
    (FIRST[(n / 16) % 16].to_string(), last)
}

fn attr(out: &mut String, name: &str, values: &[impl AsRef<str>]) {
    let _ = write!(out, "<attr name=\"{name}\">");
    for v in values {
        let _ = write!(out, "<value>{}</value>", v.as_ref());
    }
    out.push_str("</attr>");
}

fn request(out: &mut String, category: &str, id: &str, attrs: impl FnOnce(&mut String)) {
    let kind = if category == "EtabEducNat" {
        "categorieStructure"
    } else {
        "categoriePersonne"
    };
    let _ = write!(
        out,
        "<addRequest><operationalAttributes><attr name=\"{kind}\"><value>{category}</value></attr></operationalAttributes><identifier><id>{id}</id></identifier><attributes>"
    );
    attrs(out);
    out.push_str("</attributes></addRequest>\n");
}

/// Writes one file per kind, one establishment's requests at a time.
fn write_feed(dir: &Path, establishments: usize) -> Result<usize> {
    let open = |kind: &str| -> Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(format!("ENT_BENCH_Complet_20261202_{kind}_0000.xml"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).with_context(|| path.display().to_string())?);
        std::io::Write::write_all(&mut f, b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ficAlimMENESR>\n")?;
        Ok(f)
    };
    let mut files = [
        open("EtabEducNat")?,
        open("Eleve")?,
        open("PersRelEleve")?,
        open("PersEducNat")?,
    ];
    let mut accounts = 0;
    let mut buf = String::new();
    for e in 0..establishments {
        let jointure = (10_000 + e).to_string();
        let [structures, pupils, parents, staff] = &mut files;
        buf.clear();
        request(&mut buf, "EtabEducNat", &jointure, |o| {
            attr(o, "ENTStructureJointure", &[&jointure]);
            attr(o, "ENTStructureUAI", &[uai(e)]);
            attr(o, "ENTStructureNomCourant", &[format!("CLG${e}$VILLE")]);
            attr(o, "ENTStructureTypeStruct", &["COLLEGE"]);
        });
        std::io::Write::write_all(structures, buf.as_bytes())?;

        buf.clear();
        let base = e * PUPILS;
        for p in 0..PUPILS {
            let id = format!("E{}", base + p);
            let family = (base + p) / 2;
            let (first, last) = name(base + p);
            request(&mut buf, "Eleve", &id, |o| {
                attr(o, "ENTPersonJointure", &[&id]);
                attr(o, "sn", &[&last]);
                attr(o, "givenName", &[first]);
                attr(
                    o,
                    "ENTPersonDateNaissance",
                    &[format!("{:02}/{:02}/2012", 1 + p % 28, 1 + p % 12)],
                );
                attr(o, "ENTEleveINE", &[format!("{:09}AB", base + p)]);
                attr(o, "ENTPersonStructRattach", &[&jointure]);
                attr(o, "ENTEleveClasses", &[format!("{jointure}$C{}", p / CLASS_SIZE)]);
                attr(
                    o,
                    "ENTElevePersRelEleve",
                    &(0..3)
                        .map(|k| format!("R{}${}$1$1$0$1", family * 3 + k, [10, 20, 39][k]))
                        .collect::<Vec<_>>(),
                );
            });
        }
        std::io::Write::write_all(pupils, buf.as_bytes())?;

        buf.clear();
        for f in base / 2..(base + PUPILS) / 2 {
            for k in 0..3 {
                let id = format!("R{}", f * 3 + k);
                let (first, last) = name(f * 3 + k + 7);
                request(&mut buf, "PersRelEleve", &id, |o| {
                    attr(o, "ENTPersonJointure", &[&id]);
                    attr(o, "sn", &[last]);
                    attr(o, "givenName", &[first]);
                    attr(o, "mail", &[format!("{}@exemple.fr", id.to_lowercase())]);
                    attr(
                        o,
                        "ENTAuxPersRelEleveEleve",
                        &[format!("E{}", 2 * f), format!("E{}", 2 * f + 1)],
                    );
                });
            }
        }
        std::io::Write::write_all(parents, buf.as_bytes())?;

        buf.clear();
        for s in 0..STAFF {
            let id = format!("P{}", e * STAFF + s);
            let (first, last) = name(e * STAFF + s + 3);
            request(&mut buf, "PersEducNat", &id, |o| {
                attr(o, "ENTPersonJointure", &[&id]);
                attr(o, "sn", &[last]);
                attr(o, "givenName", &[first]);
                let function = if s < 45 {
                    format!("{jointure}$ENS$ENSEIGNEMENT$L0202$LETTRES MODERNES")
                } else {
                    format!("{jointure}$ADM$ADMINISTRATION$-$SANS OBJET")
                };
                attr(o, "ENTPersonFonctions", &[function]);
                attr(
                    o,
                    "ENTAuxEnsClasses",
                    &[format!("{jointure}$C{}", s % (PUPILS / CLASS_SIZE))],
                );
            });
        }
        std::io::Write::write_all(staff, buf.as_bytes())?;
        accounts += PUPILS + PUPILS / 2 * 3 + STAFF;
    }
    for mut f in files {
        std::io::Write::write_all(&mut f, b"</ficAlimMENESR>\n")?;
        std::io::Write::flush(&mut f)?;
    }
    Ok(accounts)
}

/// A delta moving 1 % of the pupils to another class.
fn write_delta(dir: &Path, establishments: usize) -> Result<()> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ficAlimMENESR>\n");
    for n in (0..establishments * PUPILS).step_by(100) {
        let e = n / PUPILS;
        let _ = writeln!(
            out,
            "<modifyRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>Eleve</value></attr></operationalAttributes><identifier><id>E{n}</id></identifier><modifications><modification name=\"ENTEleveClasses\" operation=\"replace\"><value>{}$C{}</value></modification></modifications></modifyRequest>",
            10_000 + e,
            (n % PUPILS / CLASS_SIZE + 1) % (PUPILS / CLASS_SIZE)
        );
    }
    out.push_str("</ficAlimMENESR>\n");
    let path = dir.join("ENT_BENCH_Delta_20261203_Eleve_0000.xml");
    std::fs::write(&path, out).with_context(|| path.display().to_string())
}

/// The three runs on one database: the PostgreSQL URL given, else a new SQLite file.
pub fn measure(program: &Path, establishments: usize, postgres: Option<&str>) -> Result<Vec<Figure>> {
    let scratch = ScratchDir::new()?;
    let complet: PathBuf = scratch.0.join("complet");
    let delta: PathBuf = scratch.0.join("delta");
    std::fs::create_dir_all(&complet)?;
    std::fs::create_dir_all(&delta)?;
    let accounts = write_feed(&complet, establishments)?;
    write_delta(&delta, establishments)?;
    let (backend, url) = match postgres {
        Some(url) => ("postgres", url.to_string()),
        None => ("sqlite", scratch.sqlite_url("academy.db")),
    };
    let mut figures = Vec::new();
    for (label, folder, rows) in [
        ("academy feed: first Complet import", &complet, accounts),
        ("academy feed: same Complet again (unchanged)", &complet, accounts),
        (
            "academy feed: 1 % delta (class changes)",
            &delta,
            establishments * PUPILS / 100,
        ),
    ] {
        let args = [
            "--database".to_string(),
            url.clone(),
            "aaf".into(),
            "import".into(),
            folder.display().to_string(),
            "--report".into(),
            "json".into(),
        ];
        let (elapsed, peak, report) = run_measured(program, &args, &scratch.0)?;
        let count = |k: &str| report[k].as_u64().unwrap_or_default();
        figures.push(Figure::new(label, backend, rows, elapsed).note(format!(
            "{establishments} establishments; peak RSS {} MiB; created {}, updated {}, unchanged {}",
            peak >> 20,
            count("created"),
            count("updated"),
            count("unchanged")
        )));
    }
    Ok(figures)
}
