//! The event types, by their names as deliveries carry them (`type`).

pub const STREAM_LIVE: &str = "stream.live";
pub const STREAM_ENDED: &str = "stream.ended";
pub const STREAM_ERROR: &str = "stream.error";
pub const STREAM_PROCESSING_CHANGED: &str = "stream.processing_changed";
pub const RECORDING_READY: &str = "recording.ready";
pub const REPLAY_CLIP_READY: &str = "replay_clip.ready";
pub const MOTION_CLIP_CREATED: &str = "motion_clip.created";
pub const THUMBNAIL_CREATED: &str = "thumbnail.created";
/// Sent by `SendTestWebhook` to one endpoint; never subscribed to.
pub const WEBHOOK_TEST: &str = "webhook.test";

/// Every type an endpoint may take.
pub const ALL: &[&str] = &[
    STREAM_LIVE,
    STREAM_ENDED,
    STREAM_ERROR,
    STREAM_PROCESSING_CHANGED,
    RECORDING_READY,
    REPLAY_CLIP_READY,
    MOTION_CLIP_CREATED,
    THUMBNAIL_CREATED,
];

/// Taken only when named: one per thumbnail interval of every stream.
pub const OPT_IN: &[&str] = &[THUMBNAIL_CREATED];

/// The types an endpoint takes when it is given `names`: every type but
/// the opt-in ones when there are none. Fails with the first unknown name.
pub fn resolve(names: &[String]) -> Result<Vec<String>, String> {
    if names.is_empty() {
        return Ok(ALL
            .iter()
            .filter(|t| !OPT_IN.contains(t))
            .map(|t| t.to_string())
            .collect());
    }
    let mut types: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !ALL.contains(&name.as_str()) {
            return Err(name.chars().take(64).collect());
        }
        if !types.contains(name) {
            types.push(name.clone());
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_names_means_all_but_the_opt_in_ones() {
        let types = resolve(&[]).unwrap();
        assert!(types.iter().any(|t| t == RECORDING_READY));
        assert!(!types.iter().any(|t| t == THUMBNAIL_CREATED));
        assert_eq!(types.len(), ALL.len() - OPT_IN.len());
    }

    #[test]
    fn names_are_checked_and_deduplicated() {
        let named = vec![THUMBNAIL_CREATED.to_string(), THUMBNAIL_CREATED.to_string()];
        assert_eq!(
            resolve(&named).unwrap(),
            vec![THUMBNAIL_CREATED.to_string()]
        );
        assert_eq!(
            resolve(&["stream.nope".to_string()]).unwrap_err(),
            "stream.nope"
        );
        assert!(resolve(&[WEBHOOK_TEST.to_string()]).is_err());
    }
}
