//! The challenge on the pages (see `crate::challenge`). With JavaScript,
//! `static/app.js` fetches a proof of work as soon as a form that sends a code
//! is shown, solves it in a Web Worker (`static/pow.js`) and posts
//! `challenge_id` + `challenge_nonce` with the send: nobody notices. Without
//! JavaScript, a page that needs a challenge (after a 428, or always with
//! `CHALLENGE=always`) shows a picture in a `<noscript>` and posts
//! `challenge_id` + `challenge_answer`. The script shows that picture too when
//! its worker cannot run.

use serde::Serialize;

use super::flows::PageForm;
use super::view::Page;
use crate::challenge::Solution;
use crate::config::ChallengeMode;
use crate::error::ApiError;

/// A picture as the template shows it.
#[derive(Serialize)]
pub struct Picture {
    id: String,
    /// `data:image/png;base64,…`
    image: String,
}

impl PageForm {
    /// The challenge the form answered: the worker's nonce or the typed
    /// digits. Nothing when it carried neither (an empty answer box).
    fn solution(&self) -> Option<Solution> {
        let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let (nonce, answer) = (given(&self.challenge_nonce), given(&self.challenge_answer));
        if nonce.is_none() && answer.is_none() {
            return None;
        }
        Some(Solution {
            id: self.challenge_id.trim().to_string(),
            nonce,
            answer,
        })
    }

    /// Digits were typed from a picture (to tell a wrong answer from none).
    pub fn answered_picture(&self) -> bool {
        !self.challenge_answer.trim().is_empty()
    }
}

impl Page {
    /// Whether the form's challenge was solved, using it up, as the API's
    /// `send-code` redeems `"challenge"`.
    pub async fn redeem(&self, form: &PageForm) -> Result<bool, ApiError> {
        match form.solution() {
            Some(solution) => self.state.challenges.redeem(&solution).await,
            None => Ok(false),
        }
    }

    /// The worker's address for `data-challenge`, when challenges are on.
    pub fn challenge_worker(&self) -> Option<String> {
        (self.state.settings.challenge.mode != ChallengeMode::Off)
            .then(|| format!("/static/pow.js?v={}", env!("CARGO_PKG_VERSION")))
    }

    /// A new picture for a form that sends a code: after a 428 (`needed`),
    /// and on every such form with `CHALLENGE=always`. Nothing when drawing
    /// or storing it failed: the page still shows, and the send says 428.
    pub async fn picture(&self, needed: bool) -> Option<Picture> {
        let always = self.state.settings.challenge.mode == ChallengeMode::Always;
        if !(needed || always) {
            return None;
        }
        match self.state.challenges.issue_image().await {
            Ok(c) => Some(Picture {
                id: c.id,
                image: c.image,
            }),
            Err(e) => {
                tracing::error!(error = ?e, "drawing a picture challenge for a page");
                None
            }
        }
    }
}
