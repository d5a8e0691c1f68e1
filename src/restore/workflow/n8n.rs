//! The request to n8n: the body n8n accepts, and what it refused (settings
//! members dropped only when safe).
use super::*;

/// The body of `POST /api/v1/workflows` for a canonical workflow: only
/// [`POST_FIELDS`].
pub fn post_body(w: &Object, new_name: &str) -> std::result::Result<Object, String> {
    let mut body = Object::new();
    body.insert("name", Json::String(new_name.to_string()));
    match w.get("nodes") {
        Some(n @ Json::Array(_)) => body.insert("nodes", n.clone()),
        _ => return Err("its object in the backup has no nodes array".into()),
    };
    let or_empty = |v: Option<&Json>| match v {
        None | Some(Json::Null) => Json::Object(Object::new()),
        Some(v) => v.clone(),
    };
    body.insert("connections", or_empty(w.get("connections")));
    body.insert("settings", or_empty(w.get("settings")));
    match w.get("staticData") {
        None | Some(Json::Null) => {}
        Some(s) => {
            body.insert("staticData", s.clone());
        }
    }
    Ok(body)
}

/// What a 400 message of n8n's schema validation is about.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Rejection {
    /// `request/body/settings must NOT have additional properties`.
    SettingsKey,
    /// `request/body/settings/KEY must be equal to one of the allowed values...`.
    SettingsValue(String),
    Other,
}

pub(super) fn classify(message: &str) -> Rejection {
    let m = message.trim();
    if m.starts_with("request/body/settings must NOT have additional properties") {
        return Rejection::SettingsKey;
    }
    if let Some(rest) = m.strip_prefix("request/body/settings/") {
        if let Some((key, tail)) = rest.split_once(' ') {
            if !key.contains('/') && tail.starts_with("must be equal to one of the allowed values")
            {
                return Rejection::SettingsValue(key.to_string());
            }
        }
    }
    Rejection::Other
}

/// The settings keys to try without, in order, for a target that refuses
/// some settings key (see the module documentation).
pub(super) fn settings_candidates(settings: &Object) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = settings
        .keys()
        .filter(|k| !N8N_SETTINGS_KEYS.contains(&k.as_str()))
        .map(|k| {
            (
                k.clone(),
                "n8n 1.123 does not know this setting (a newer n8n wrote it), and the target \
                 refuses it: a setting n8n does not know cannot take effect there"
                    .to_string(),
            )
        })
        .collect();
    for k in RECORDING_SETTINGS {
        if settings.contains_key(k) {
            out.push((
                k.to_string(),
                "the target n8n refuses this setting (an older n8n); it only governs what n8n \
                 records or exposes about runs, not what the workflow does"
                    .to_string(),
            ));
        }
    }
    out
}

/// Trials of the settings-key search: each candidate alone, then growing
/// prefixes of the list.
pub(super) fn trials(n: usize) -> Vec<Vec<usize>> {
    let mut t: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    for len in 2..=n {
        t.push((0..len).collect());
    }
    t
}

/// The search for the settings keys a target refuses (its message does not
/// name them): candidates with why each is safe to drop, the trials left,
/// and the trial being sent (indexes into the candidates).
pub(super) struct SettingsSearch {
    pub(super) candidates: Vec<(String, String)>,
    pub(super) left: std::vec::IntoIter<Vec<usize>>,
    pub(super) current: Vec<usize>,
    /// n8n's message that started it.
    pub(super) message: String,
}

impl SettingsSearch {
    pub(super) fn new(settings: &Object, message: String) -> SettingsSearch {
        let candidates = settings_candidates(settings);
        let left = trials(candidates.len()).into_iter();
        SettingsSearch {
            candidates,
            left,
            current: Vec::new(),
            message,
        }
    }

    /// The current trial's keys, as dropped members.
    pub(super) fn dropped(&self) -> impl Iterator<Item = (&str, Dropped)> + '_ {
        self.current.iter().map(|&i| {
            let (key, reason) = &self.candidates[i];
            (
                key.as_str(),
                Dropped {
                    field: format!("settings.{key}"),
                    reason: reason.clone(),
                    n8n_message: self.message.clone(),
                },
            )
        })
    }
}

/// Creates the workflow, dropping refused members where that is safe.
/// Returns the created workflow and what was dropped, or why it failed.
pub(super) async fn create(
    api: &N8nApi,
    body: Object,
    new_name: &str,
) -> std::result::Result<(Json, Vec<Dropped>), String> {
    let base = api.base_url();
    let mut settings = match body.get("settings") {
        Some(Json::Object(s)) => s.clone(),
        _ => Object::new(),
    };
    let mut dropped: Vec<Dropped> = Vec::new();
    let mut search: Option<SettingsSearch> = None;
    for _ in 0..MAX_ATTEMPTS {
        let mut b = body.clone();
        if body.get("settings").is_some_and(Json::is_object) {
            let mut trial = settings.clone();
            if let Some(s) = &search {
                for (key, _) in s.dropped() {
                    trial.remove(key);
                }
            }
            b.insert("settings", Json::Object(trial));
        }
        let message = match api.create_workflow(&Json::Object(b)).await {
            Ok(created) => {
                if let Some(s) = &search {
                    dropped.extend(s.dropped().map(|(_, d)| d));
                }
                return Ok((created, dropped));
            }
            Err(CreateFailure::Refused {
                status: 400,
                message,
            }) => message,
            Err(CreateFailure::Refused { status, message }) => {
                return Err(format!("n8n at {base} refused it ({status}): {message}"))
            }
            Err(CreateFailure::Failed(e)) => return Err(e.to_string()),
            Err(CreateFailure::NoAnswer(e)) => {
                return Err(format!(
                    "{e}; the workflow may or may not have been created: look in n8n for a \
                     workflow named {new_name:?} before trying again"
                ))
            }
        };
        let rejection = classify(&message);
        if rejection != Rejection::SettingsKey {
            // A trial that got past the settings check fixed it: keep it.
            if let Some(s) = search.take() {
                for (key, d) in s.dropped() {
                    settings.remove(key);
                    dropped.push(d);
                }
            }
        }
        match rejection {
            Rejection::SettingsValue(key)
                if settings.get(&key).and_then(Json::as_str) == Some("DEFAULT") =>
            {
                settings.remove(&key);
                dropped.push(Dropped {
                    field: format!("settings.{key}"),
                    reason: "its value \"DEFAULT\" (written by an older n8n) means the instance's \
                             default, which is what an absent setting means"
                        .into(),
                    n8n_message: message,
                });
            }
            Rejection::SettingsKey => {
                let s =
                    search.get_or_insert_with(|| SettingsSearch::new(&settings, message.clone()));
                match s.left.next() {
                    Some(next) => s.current = next,
                    None => {
                        let tried: Vec<&str> = s.candidates.iter().map(|c| c.0.as_str()).collect();
                        let kept: Vec<&str> = settings
                            .keys()
                            .map(String::as_str)
                            .filter(|k| !tried.contains(k))
                            .collect();
                        return Err(format!(
                            "n8n at {base} refused it: {message}. n8n-ark tried without the \
                             settings that are safe to drop ({}) and n8n still refuses; the \
                             others ({}) change how or when the workflow runs, so it was not \
                             restored: restore it with --out, remove the setting the target does \
                             not know, and import it",
                            if tried.is_empty() {
                                "none here".to_string()
                            } else {
                                tried.join(", ")
                            },
                            kept.join(", ")
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "n8n at {base} refused it: {message}{} (not retried: dropping that would \
                     change what the workflow does; restore it with --out and import it after \
                     checking)",
                    node_named(&body, &message)
                ))
            }
        }
    }
    Err(format!(
        "n8n at {base} kept refusing it after {MAX_ATTEMPTS} attempts"
    ))
}

/// For a message about `request/body/nodes/N...`: ` (node N is "Name", type T)`.
pub(super) fn node_named(body: &Object, message: &str) -> String {
    let Some(rest) = message.trim().strip_prefix("request/body/nodes/") else {
        return String::new();
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(i) = digits.parse::<usize>() else {
        return String::new();
    };
    match body.get("nodes").and_then(|n| n.get_index(i)) {
        Some(n) => format!(
            " (node {i} is {:?}, type {})",
            n.get("name").and_then(Json::as_str).unwrap_or(""),
            n.get("type").and_then(Json::as_str).unwrap_or("?")
        ),
        None => String::new(),
    }
}
