//! Names of created workflows: the name template and its placeholders.
use super::*;

/// The name of a workflow created in n8n, from a template with placeholders:
/// `{name}` (the workflow's name in the backup), `{id}` (its id there),
/// `{date}` (the day the backup finished, `YYYY-MM-DD`, UTC), `{time}`
/// (`HH:MM`, UTC), `{backup}` (the backup's id); `{{` and `}}` stand for
/// braces. Names are cut to n8n's 128 characters by shortening `{name}`
/// (ending it with `…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    pub(super) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Text(String),
    Name,
    Id,
    Date,
    Time,
    Backup,
}

impl Default for NameTemplate {
    fn default() -> Self {
        NameTemplate::parse(DEFAULT_NAME_TEMPLATE).expect("the default template parses")
    }
}

impl NameTemplate {
    pub fn parse(template: &str) -> std::result::Result<NameTemplate, String> {
        if template.trim().is_empty() {
            return Err("the name template is empty (e.g. \"{name} (restored {date})\")".into());
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut key = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => key.push(c),
                            None => {
                                return Err(format!(
                                    "the name template {template:?} has a `{{` without its `}}` \
                                     (write `{{{{` for a brace)"
                                ))
                            }
                        }
                    }
                    let part = match key.as_str() {
                        "name" => Part::Name,
                        "id" => Part::Id,
                        "date" => Part::Date,
                        "time" => Part::Time,
                        "backup" => Part::Backup,
                        other => {
                            return Err(format!(
                                "the name template {template:?} has an unknown placeholder \
                                 {{{other}}}: use {{name}}, {{id}}, {{date}}, {{time}} or {{backup}}"
                            ))
                        }
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                '}' => {
                    return Err(format!(
                        "the name template {template:?} has a `}}` without its `{{` \
                         (write `}}}}` for a brace)"
                    ))
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(NameTemplate { parts })
    }

    /// The name for workflow `name` (`id`) of backup `backup_id`, which
    /// finished at `finished_ms`; at most [`MAX_NAME_CHARS`] characters.
    pub fn render(&self, name: &str, id: &str, backup_id: &str, finished_ms: i64) -> String {
        let (date, time) = date_time(finished_ms);
        let fixed = |name: &str| -> String {
            let mut out = String::new();
            for p in &self.parts {
                match p {
                    Part::Text(t) => out.push_str(t),
                    Part::Name => out.push_str(name),
                    Part::Id => out.push_str(id),
                    Part::Date => out.push_str(&date),
                    Part::Time => out.push_str(&time),
                    Part::Backup => out.push_str(backup_id),
                }
            }
            out
        };
        let full = fixed(name);
        if full.chars().count() <= MAX_NAME_CHARS {
            return full;
        }
        let names = self.parts.iter().filter(|p| **p == Part::Name).count();
        let rest = fixed("").chars().count();
        if names > 0 && rest < MAX_NAME_CHARS {
            // Each {name} gets an equal share, ending in an ellipsis.
            let share = (MAX_NAME_CHARS - rest) / names;
            if share >= 2 {
                let short: String = name.chars().take(share - 1).collect::<String>() + "…";
                return fixed(&short);
            }
        }
        full.chars().take(MAX_NAME_CHARS).collect()
    }
}

/// `YYYY-MM-DD` and `HH:MM` (UTC) of a time in ms since the epoch.
pub(super) fn date_time(ms: i64) -> (String, String) {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => (
            t.format("%Y-%m-%d").to_string(),
            t.format("%H:%M").to_string(),
        ),
        None => ("unknown-date".into(), "00:00".into()),
    }
}

pub(super) fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}
