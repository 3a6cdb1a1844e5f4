//! The head every kind's line starts with, written here once for every kind and format: the
//! time, the interface and the pod.

use std::io;

use super::Place;
use crate::{
    output::{
        key, put_number,
        write::{put, put_hms_micros, put_json_str, put_left, put_rfc3339, put_u64},
    },
    pods::Pod,
};

/// `HH:MM:SS.uuuuuu iface [namespace/pod]` (the name padded to 15), what every text line
/// starts with.
pub(super) fn put_text(out: &mut Vec<u8>, place: &Place<'_>) {
    put_hms_micros(out, place.wall_ns);
    out.push(b' ');
    put_text_place(out, place);
}

/// `iface [namespace/pod]`: the text head without the time (a pcapng block has its own).
pub(super) fn put_text_place(out: &mut Vec<u8>, place: &Place<'_>) {
    put_left(out, &place.iface, 15);
    if let Some(pod) = &place.pod {
        put(out, " [");
        put(out, &pod.namespace);
        out.push(b'/');
        put(out, &pod.name);
        out.push(b']');
    }
}

/// The head every JSON object starts with, whatever its kind (README order), without the
/// closing `}`: `{"kind":…,"time":…,"ts_ns":…,"iface":…,"ifindex":…` and the pod when known.
pub(super) fn put_json(out: &mut Vec<u8>, kind: &str, place: &Place<'_>) -> io::Result<()> {
    // `kind` is one of the project's own words: nothing to escape.
    put(out, "{\"kind\":\"");
    put(out, kind);
    put(out, "\",\"time\":\"");
    put_rfc3339(out, place.wall_ns);
    put(out, "\",\"ts_ns\":");
    put_u64(out, place.ts_ns);
    key!(out, "iface");
    put_json_str(out, &place.iface)?;
    put_number!(out, "ifindex", u64::from(place.ifindex));
    put_json_pod(out, place.pod.as_deref())
}

/// `,"pod_namespace":…,"pod_name":…[,"pod_uid":…]` when the pod is known.
fn put_json_pod(out: &mut Vec<u8>, pod: Option<&Pod>) -> io::Result<()> {
    let Some(pod) = pod else { return Ok(()) };
    key!(out, "pod_namespace");
    put_json_str(out, &pod.namespace)?;
    key!(out, "pod_name");
    put_json_str(out, &pod.name)?;
    if let Some(uid) = &pod.uid {
        key!(out, "pod_uid");
        put_json_str(out, uid)?;
    }
    Ok(())
}
