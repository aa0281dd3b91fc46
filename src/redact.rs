//! What may reach a log or a message: URIs with their credentials
//! (`user:password@`) and their query and fragment (tokens, SRT
//! passphrases) replaced by `***`, wherever they appear, including inside
//! text we did not write (GStreamer's error and debug messages quote the
//! URI they failed on, in their own escaping). A leaf: used by the
//! pipeline's bus watcher, the GStreamer helpers and the pull task.

/// A URI with any `user:password@` part and its query and fragment
/// replaced.
pub fn uri(uri: &str) -> String {
    let (base, hidden) = match uri.find(['?', '#']) {
        Some(at) => (&uri[..at], "?***"),
        None => (uri, ""),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    format!("{base}{hidden}")
}

/// `text` with every URI in it (a scheme, `://`, up to the next white
/// space or quote) redacted as [`uri`] does.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&uri(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_query_strings() {
        assert_eq!(
            uri("http://cdn.example.com/live.m3u8?token=abc#t=1"),
            "http://cdn.example.com/live.m3u8?***"
        );
        assert_eq!(
            uri("srt://u:p@h:9000?passphrase=secret"),
            "srt://***@h:9000?***"
        );
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            uri("rtsp://user:pw@cam.local:554/live"),
            "rtsp://***@cam.local:554/live"
        );
        assert_eq!(uri("file:///tmp/a.ts"), "file:///tmp/a.ts");
    }

    #[test]
    fn redacts_uris_inside_messages() {
        // GStreamer's own message, as a probe of the server found it.
        assert_eq!(
            text("No element accepted URI 'rtsp://SECRET%2523@1.1.1.1:554/x'"),
            "No element accepted URI 'rtsp://***@1.1.1.1:554/x'"
        );
        assert_eq!(
            text("gstsrtobject.c(1234): srt://1.1.1.1:9?passphrase=hunter22xx failed; retry srt://h:1?streamid=x"),
            "gstsrtobject.c(1234): srt://1.1.1.1:9?*** failed; retry srt://h:1?***"
        );
        assert_eq!(
            text("Could not open \"http://u:p@h/a?t=1\"."),
            "Could not open \"http://***@h/a?***\"."
        );
        assert_eq!(text("no uri here: a::b"), "no uri here: a::b");
    }
}
