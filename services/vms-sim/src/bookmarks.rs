//! A web page laid out like the VMS client's Bookmark Log, so a demo or an
//! end-to-end test can see plates arrive as bookmarks (a "Bookmark" rule
//! action names the bookmark after the event caption, VMS notes §1.3).

use crate::cameras::find_camera;
use crate::config::SimCamera;
use crate::events::RecordedEvent;
use crate::timestamp::format_utc;

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Camera names of an event; an id no longer known is shown as is.
fn camera_names(event: &RecordedEvent, cameras: &[SimCamera]) -> String {
    event
        .resolved_camera_ids
        .iter()
        .map(|id| {
            find_camera(cameras, id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page: events whose caption contains `query` (case-insensitive), newest first.
pub fn render(events: &[RecordedEvent], cameras: &[SimCamera], query: &str) -> String {
    let needle = query.trim().to_lowercase();
    let mut rows = String::new();
    for event in events
        .iter()
        .rev()
        .filter(|e| needle.is_empty() || e.caption.to_lowercase().contains(&needle))
    {
        let start = event.timestamp_ms.unwrap_or(event.received_at_ms);
        rows.push_str(&format!(
            "<tr><td class=\"name\">{}</td><td class=\"camera\">{}</td><td>{}</td><td>10s</td><td>{}</td><td>System Event</td><td>anpr</td></tr>\n",
            escape_html(&event.caption),
            escape_html(&camera_names(event, cameras)),
            format_utc(start),
            format_utc(event.received_at_ms),
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Bookmark Log</title>\n\
<style>body{{font-family:sans-serif;background:#1e2328;color:#d0d4d8}}table{{border-collapse:collapse;width:100%}}\
th,td{{padding:4px 8px;border-bottom:1px solid #3a4046;text-align:left}}th{{color:#8a949c}}</style></head>\n\
<body><h1>Bookmark Log</h1>\n\
<form method=\"get\" action=\"/_fake/bookmarks\"><input type=\"search\" name=\"q\" placeholder=\"Search\" value=\"{}\"><button type=\"submit\">Search</button></form>\n\
<table id=\"bookmarks\"><thead><tr><th>Name</th><th>Camera</th><th>Start time</th><th>Length</th><th>Created</th><th>Creator</th><th>Tags</th></tr></thead>\n<tbody>\n{rows}</tbody></table></body></html>\n",
        escape_html(query)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{fixture_cameras, GATE1_ID};

    fn event(caption: &str) -> RecordedEvent {
        RecordedEvent {
            api: "v4".into(),
            method: "POST".into(),
            source: "ANPR".into(),
            caption: caption.into(),
            description: String::new(),
            camera_refs: vec![GATE1_ID.into()],
            resolved_camera_ids: vec![GATE1_ID.into()],
            state: None,
            timestamp_ms: Some(1_718_552_561_000),
            received_at_ms: 1_718_552_562_000,
            auth_method: "bearer".into(),
            user: "admin".into(),
        }
    }

    #[test]
    fn filters_and_escapes() {
        let events = vec![event("AB123CD"), event("<b>XY</b>")];
        let page = render(&events, &fixture_cameras(), "ab123");
        assert!(page.contains("<td class=\"name\">AB123CD</td>"));
        assert!(page.contains("Gate 1"));
        assert!(page.contains("2024-06-16 15:42:41"));
        assert!(!page.contains("XY"));
        let all = render(&events, &fixture_cameras(), "");
        assert!(all.contains("&lt;b&gt;XY&lt;/b&gt;"));
        assert!(!all.contains("<b>XY"));
        let hostile = render(&events, &fixture_cameras(), "\"><script>");
        assert!(hostile.contains("value=\"&quot;&gt;&lt;script&gt;\""));
    }
}
