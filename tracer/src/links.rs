//! The node's interfaces, kept live from netlink: a dump at start, then RTNLGRP_LINK multicast.
//! A pod that starts shows up here as a new link within milliseconds; no polling.

use futures::{StreamExt, TryStreamExt, channel::mpsc::UnboundedReceiver};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
};
use rtnetlink::{Handle, MulticastGroup};

/// What happened to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// It exists with this name (new, renamed, or changed state).
    Present { index: u32, name: String },
    /// It is gone.
    Removed { index: u32 },
}

pub type LinkMessages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, netlink_sys::SocketAddr)>;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("opening a netlink socket failed: {0}")]
    Socket(#[from] std::io::Error),
    #[error("listing interfaces over netlink failed: {0}")]
    Dump(#[from] rtnetlink::Error),
}

/// Subscribes to link changes (before the dump, so that nothing falls between the two).
pub fn subscribe() -> Result<(Handle, LinkMessages), LinkError> {
    let (conn, handle, messages) = rtnetlink::new_multicast_connection(&[MulticastGroup::Link])?;
    tokio::spawn(conn);
    Ok((handle, messages))
}

/// Every interface that exists now.
pub async fn dump(handle: &Handle) -> Result<Vec<LinkChange>, LinkError> {
    let links: Vec<LinkMessage> = handle.link().get().execute().try_collect().await?;
    Ok(links.iter().filter_map(present).collect())
}

fn present(msg: &LinkMessage) -> Option<LinkChange> {
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    Some(LinkChange::Present { index: msg.header.index, name })
}

/// Turns one multicast message into a change, if it is about a link.
pub fn change(msg: &NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkChange> {
    match &msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => present(link),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
            Some(LinkChange::Removed { index: link.header.index })
        }
        _ => None,
    }
}

/// Next change from the multicast stream; `None` when the socket closed.
pub async fn next(messages: &mut LinkMessages) -> Option<Option<LinkChange>> {
    messages.next().await.map(|(msg, _)| change(&msg))
}
