//! The reaper's clean-up over netlink: vethtrace's own bpf filters, found by program id, and the
//! clsact qdiscs vethtrace added itself (on an interface that had none), removed again when it is
//! done — but only when no filter is left on them: another program may have attached one since,
//! and deleting the qdisc would take it away. A clsact qdisc that was there before vethtrace is
//! never touched, and neither is a filter running anyone else's program.

use std::collections::BTreeSet;

use aya::programs::{Link as _, tc::SchedClassifierLink};
use futures::TryStreamExt as _;
use netlink_packet_route::tc::{TcAttribute, TcFilterBpfOption, TcHandle, TcMessage, TcOption};

#[derive(Debug, thiserror::Error)]
pub(crate) enum QdiscError {
    #[error("cannot open a netlink socket to remove clsact qdiscs: {0}")]
    Socket(#[from] std::io::Error),
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("removing a filter: {0}")]
    Detach(#[from] aya::programs::ProgramError),
}

/// Removes every bpf filter on `interfaces` that runs one of `programs`, then the clsact qdiscs
/// of `qdiscs` that are left with no filter.
pub(crate) fn clean_up(interfaces: &[u32], programs: &BTreeSet<u32>, qdiscs: &[u32]) -> Result<(), QdiscError> {
    if (interfaces.is_empty() || programs.is_empty()) && qdiscs.is_empty() {
        return Ok(());
    }
    on_netlink(|handle| async move {
        let mut first_error = None;
        for &ifindex in interfaces.iter().filter(|_| !programs.is_empty()) {
            for msg in filters_of(&handle, ifindex).await? {
                if runs_one_of(&msg, programs)
                    && let Err(e) = detach(ifindex, &msg)
                {
                    first_error.get_or_insert(e);
                }
            }
        }
        for &ifindex in qdiscs {
            if let Err(e) = remove_if_unused(&handle, ifindex).await
                && !is_gone(&e)
            {
                first_error.get_or_insert(e.into());
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

/// Detaches the filter `msg` describes; an interface that has gone took it with it.
fn detach(ifindex: u32, msg: &TcMessage) -> Result<(), QdiscError> {
    let header = &msg.header;
    let link = SchedClassifierLink::attached(
        ifindex,
        u32::from(header.parent).into(),
        (header.info >> 16) as u16,
        u32::from(header.handle).into(),
        None,
    );
    match link {
        Ok(link) => match link.detach() {
            Err(e) if if_exists(ifindex) => Err(e.into()),
            _ => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

fn if_exists(ifindex: u32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has the IF_NAMESIZE bytes if_indextoname writes at most.
    !unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null()
}

/// The ingress and egress filters on `ifindex` (none when it has gone).
async fn filters_of(handle: &rtnetlink::Handle, ifindex: u32) -> Result<Vec<TcMessage>, rtnetlink::Error> {
    let Ok(index) = i32::try_from(ifindex) else { return Ok(Vec::new()) };
    let filters = handle.traffic_filter(index);
    let mut found = Vec::new();
    for get in [filters.clone().get().ingress(), filters.clone().get().egress()] {
        match get.execute().try_collect::<Vec<TcMessage>>().await {
            Ok(msgs) => found.extend(msgs),
            Err(e) if is_gone(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// A bpf filter whose program is one of `programs`.
fn runs_one_of(msg: &TcMessage, programs: &BTreeSet<u32>) -> bool {
    msg.attributes.iter().any(|a| match a {
        TcAttribute::Options(opts) => opts.iter().any(|o| matches!(o, TcOption::Bpf(TcFilterBpfOption::ProgId(id)) if programs.contains(id))),
        _ => false,
    })
}

/// Runs `f` with a netlink handle on a runtime of its own (the reaper has none).
fn on_netlink<T, F, Fut>(f: F) -> Result<T, QdiscError>
where
    F: FnOnce(rtnetlink::Handle) -> Fut,
    Fut: Future<Output = Result<T, QdiscError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        f(handle).await
    })
}

/// Removes the clsact qdisc of `ifindex` when no filter is left on its ingress or egress.
async fn remove_if_unused(handle: &rtnetlink::Handle, ifindex: u32) -> Result<(), rtnetlink::Error> {
    let Ok(index) = i32::try_from(ifindex) else { return Ok(()) };
    if !filters_of(handle, ifindex).await?.is_empty() {
        return Ok(());
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
