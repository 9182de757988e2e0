//! The picture challenge against a simple OCR: Debian's `tesseract`
//! (`tesseract-ocr`, installed by scripts/test) reads a batch of pictures from
//! the API as one line of digits 1-9. A person reads them; it must get most
//! of them wrong. The figure is printed.

use base64::Engine as _;

use crate::support::app::TestApp;
use crate::support::pictures::{self, SECRET};

const PICTURES: usize = 30;
/// At most this share read exactly.
const MAX_READ: f64 = 0.2;

fn require_tesseract() {
    let version = std::process::Command::new("tesseract")
        .arg("--version")
        .output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "OCR TEST CANNOT RUN: no `tesseract` on PATH ({version:?}). \
         `apt-get install tesseract-ocr` (scripts/test does)."
    );
}

/// What tesseract reads in `png`: one line, digits 1-9 only.
async fn ocr(png: &std::path::Path) -> String {
    let out = tokio::process::Command::new("tesseract")
        .arg(png)
        .args(["-", "--psm", "7", "-c", "tessedit_char_whitelist=123456789"])
        .output()
        .await
        .expect("run tesseract");
    assert!(out.status.success(), "tesseract: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

#[tokio::test]
async fn a_plain_ocr_reads_few_pictures() {
    require_tesseract();
    let app = TestApp::builder().env("SECRET_KEY", SECRET).start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut exact, mut in_place) = (0, 0);
    for n in 0..PICTURES {
        let c = app.get("/api/auth/challenge?kind=image").await;
        assert_eq!(c.status, 200, "{}", c.raw);
        let id = c.body["id"].as_str().unwrap();
        let image = c.body["image"].as_str().unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(image.strip_prefix("data:image/png;base64,").unwrap())
            .expect("base64");
        let path = dir.path().join(format!("{n}.png"));
        std::fs::write(&path, png).unwrap();
        let truth = pictures::digits(&app.db, SECRET, id).await.unwrap();
        let read = ocr(&path).await;
        exact += usize::from(read == truth);
        in_place += truth
            .chars()
            .zip(read.chars())
            .filter(|(a, b)| a == b)
            .count();
    }
    println!(
        "OCR: tesseract (--psm 7, digits 1-9) read {exact} of {PICTURES} pictures exactly \
         ({:.0} %), {in_place} of {} digits in place",
        100.0 * exact as f64 / PICTURES as f64,
        PICTURES * 5
    );
    assert!(
        exact as f64 <= MAX_READ * PICTURES as f64,
        "a plain OCR read {exact} of {PICTURES} pictures"
    );
}
