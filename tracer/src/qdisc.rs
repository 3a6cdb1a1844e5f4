//! The clsact qdiscs vethtrace added itself (on an interface that had none), removed again when
//! it is done — but only when no filter is left on them: another program may have attached one
//! since, and deleting the qdisc would take it away. A clsact qdisc that was there before
//! vethtrace is never touched.

use futures::TryStreamExt as _;
use netlink_packet_route::tc::{TcAttribute, TcHandle};

#[derive(Debug, thiserror::Error)]
pub(crate) enum QdiscError {
    #[error("cannot open a netlink socket to remove clsact qdiscs: {0}")]
    Socket(#[from] std::io::Error),
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
}

/// Removes the clsact qdisc of each interface in `ifindexes` that has no filter left on ingress
/// or egress. Interfaces that are gone (and their qdiscs with them) are skipped.
pub(crate) fn remove_unused_clsact(ifindexes: &[u32]) -> Result<(), QdiscError> {
    if ifindexes.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let mut first_error = None;
        for &ifindex in ifindexes {
            let Ok(index) = i32::try_from(ifindex) else { continue };
            if let Err(e) = remove_if_unused(&handle, index).await
                && !is_gone(&e)
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    })
}

async fn remove_if_unused(handle: &rtnetlink::Handle, index: i32) -> Result<(), rtnetlink::Error> {
    let filters = handle.traffic_filter(index);
    for get in [filters.clone().get().ingress(), filters.clone().get().egress()] {
        if get.execute().try_next().await?.is_some() {
            return Ok(());
        }
    }
    let mut del = handle.clone().qdisc().del(index);
    let msg = del.message_mut();
    msg.header.parent = TcHandle::CLSACT;
    msg.header.handle = TcHandle { major: 0xffff, minor: 0 };
    // The kernel refuses the request unless the qdisc there is a clsact.
    msg.attributes.push(TcAttribute::Kind("clsact".to_owned()));
    del.execute().await
}

/// The interface or its qdisc has gone already: nothing to remove.
fn is_gone(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m)
        if m.raw_code().abs() == libc::ENODEV || m.raw_code().abs() == libc::ENOENT || m.raw_code().abs() == libc::EINVAL)
}
